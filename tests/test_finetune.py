"""A fine-tuned model as a model source (`model tuned = finetune(base, on=node, ...)`), with a
tiny model built in the test: training lowers the loss on its rows, the training step's
fingerprint follows its rows and settings, an unchanged re-run trains nothing, and a run
killed at the training step restarts cleanly with identical outputs."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from recipe.api import load
from recipe.runtime import ModelRuntime

import forked
from conftest import read_jsonl, write_jsonl

RECIPE = '''recipe ft
model base = causal_lm("{lm}", dtype="fp32")
model tuned = finetune(base, on=seed, epochs={epochs}, lr={lr}, lora={lora}, max_tokens=64, batch_rows=2)
source raw = read("{data}", format="alpaca")
seed = raw | limit({n_seed})
scored = raw
  | score(metric="perplexity", model=tuned, column="ppl_tuned", chat_template=false)
  | score(metric="perplexity", model=base, column="ppl_base", chat_template=false)
write scored to "scored.jsonl"
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from test_runtime import _tiny_lm
    root = tmp_path_factory.mktemp("ft")
    _tiny_lm(root / "lm")
    # a pattern the untrained model cannot know: each instruction's words shifted by 7
    rows = []
    for i in range(30):
        words = [(i * 5 + j) % 50 for j in range(4)]
        rows.append({"instruction": " ".join(f"w{w}" for w in words),
                     "output": " ".join(f"w{(w + 7) % 50}" for w in words)})
    return root, write_jsonl(root / "d.jsonl", rows)


def recipe(setup, tmp_path, epochs=6, lora="false", n_seed=12, name="ft.recipe", lr=0.01) -> Path:
    root, data = setup
    f = tmp_path / name
    f.write_text(RECIPE.format(lm=root / "lm", data=data, epochs=epochs, lora=lora, n_seed=n_seed, lr=lr))
    return f


def run(f, tmp_path, models, out="o"):
    return load(str(f)).run(out=tmp_path / out, cache_dir=tmp_path / "c", runtime=ModelRuntime(models))


@pytest.mark.parametrize("lora", ["false", "true"])
def test_training_lowers_the_loss_and_an_unchanged_rerun_trains_nothing(setup, tmp_path, lora):
    # LoRA trains few weights: more steps, a higher rate
    f = recipe(setup, tmp_path, epochs=6 if lora == "false" else 30, lora=lora, lr=0.01 if lora == "false" else 0.05)
    res = run(f, tmp_path, tmp_path / "models")
    node = next(n for n in res.manifest["nodes"] if n["name"] == "tuned/finetune")
    st = node["stats"]
    assert node["rows_in"] == node["rows_out"] == 12 and st["rows"] == 12
    # full fine-tuning learns the pattern fast; LoRA's few weights on a random model, slowly
    assert st["loss_after"] < (0.8 if lora == "false" else 0.97) * st["loss_before"], st
    rows = read_jsonl(tmp_path / "o" / "scored.jsonl")
    seed = rows[:12]  # limit(12) takes the first rows
    assert np.mean([r["ppl_tuned"] for r in seed]) < np.mean([r["ppl_base"] for r in seed])
    weights = list((tmp_path / "models" / "finetuned").iterdir())
    assert len(weights) == 1 and list(weights[0].glob("*.safetensors"))
    # `recipe cache --models` says what the weights were made from, and when a run loaded them
    from recipe.runtime.weights_store import entries
    (entry,) = entries(tmp_path / "models")
    assert entry.kind == "fine-tuned" and f"{setup[0] / 'lm'} fine-tuned on 12 rows (batch_rows=2, epochs=" in entry.made_from
    assert (entry.path / ".used").exists()
    again = run(f, tmp_path, tmp_path / "models", out="o2")
    assert all(n["cached"] for n in again.manifest["nodes"])
    assert (tmp_path / "o2" / "scored.jsonl").read_bytes() == (tmp_path / "o" / "scored.jsonl").read_bytes()


def test_the_fingerprint_follows_rows_and_settings(setup, tmp_path):
    def fps(**kw):
        plan = load(str(recipe(setup, tmp_path, name=f"{len(kw)}{sorted(kw.items())}.recipe", **kw))).plan()
        return {s.name: s.fingerprint for s in plan.steps}
    base = fps()
    assert fps() == base
    for change in ({"epochs": 7}, {"n_seed": 11}, {"lora": "true"}):
        got = fps(**change)
        assert got["tuned/finetune"] != base["tuned/finetune"], change
        assert got["scored/score"] != base["scored/score"], change  # the tuned model's scores
        assert got["seed"] == base["seed"] or "n_seed" in change  # upstream of training: unchanged


def test_a_run_killed_at_training_restarts_cleanly(setup, tmp_path):
    f = recipe(setup, tmp_path, epochs=3)

    def cli(out, cache, fault=None):
        env = dict(os.environ)
        if fault:
            env["RECIPE_FAULT_INJECT"] = fault
        return forked.run(["run", str(f), "--out", str(out), "--cache-dir", str(cache), "--model-cache",
                           str(Path(cache) / "models"), "--quiet"], env)
    ref = cli(tmp_path / "ref", tmp_path / "c-ref")
    assert ref.returncode == 0, ref.stderr
    killed = cli(tmp_path / "o", tmp_path / "c", "step:tuned/finetune:before_commit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = cli(tmp_path / "o", tmp_path / "c")
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "o" / "scored.jsonl").read_bytes() == (tmp_path / "ref" / "scored.jsonl").read_bytes()
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    node = next(n for n in man["nodes"] if n["name"] == "tuned/finetune")
    assert not node["cached"] and node["stats"].get("reused")  # weights saved before the kill


def test_a_model_cache_without_the_trained_weights_trains_again(setup, tmp_path):
    """The step cache and the model cache live apart: a run against a model cache that lacks
    the weights a cached training step made (deleted, or another --model-cache) trains again
    (and the plan says why) instead of failing where the tuned model is loaded."""
    import shutil
    from recipe.cli import plan_text
    f = recipe(setup, tmp_path, epochs=2)
    first = run(f, tmp_path, tmp_path / "models")
    shutil.rmtree(tmp_path / "models" / "finetuned")
    from recipe.engine.store import Store
    store = Store(tmp_path / "c")
    try:
        text = plan_text(load(str(f)).plan(), store, weights_dir=tmp_path / "models")
    finally:
        store.close()
    assert "[its trained weights are not in the model cache]" in text and "[cached]" in text
    again = run(f, tmp_path, tmp_path / "models", out="o2")
    steps = {n["name"]: n for n in again.manifest["nodes"]}
    assert not steps["tuned/finetune"]["cached"] and steps["seed"]["cached"]
    assert {s["name"]: s["why"] for s in again.steps}["tuned/finetune"] == "its trained weights are not in the model cache"
    assert (tmp_path / "o2" / "scored.jsonl").read_bytes() == (tmp_path / "o" / "scored.jsonl").read_bytes()
    assert first.manifest["nodes"] and list((tmp_path / "models" / "finetuned").iterdir())

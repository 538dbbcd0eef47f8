"""`recipe eval` with a tiny model built in the test: it writes the documented eval.json
(base, selection, random subsets, pool) and prints the table with a verdict; fine-tuning on
rows that share the eval set's pattern lowers the eval loss below the untrained base's."""
from __future__ import annotations

import json

import pytest

from recipe.cli import main

from conftest import write_jsonl

RECIPE = '''recipe pick
source raw = read("{pool}", format="alpaca")
picked = raw | filter(contains(instruction, "w1")) | limit(8)
write picked to "picked.jsonl"
'''


def shifted(i: int, shift: int) -> dict:
    words = [(i * 5 + j) % 50 for j in range(4)]
    return {"instruction": " ".join(f"w{w}" for w in words), "output": " ".join(f"w{(w + shift) % 50}" for w in words)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from test_runtime import _tiny_lm
    root = tmp_path_factory.mktemp("eval")
    _tiny_lm(root / "lm")
    pool = write_jsonl(root / "pool.jsonl", [shifted(i, 7 if i % 2 else 3) for i in range(40)])
    ev = write_jsonl(root / "eval.jsonl", [shifted(i, 7) for i in range(40, 52)])
    f = root / "pick.recipe"
    f.write_text(RECIPE.format(pool=pool))
    return root, f, ev


def test_eval_writes_eval_json_and_a_verdict(setup, tmp_path, capsys):
    root, f, ev = setup
    rc = main(["eval", str(f), "--eval", str(ev), "--base", str(root / "lm"), "--seeds", "3", "--pool",
               "--epochs", "4", "--lr", "0.01", "--full", "--max-tokens", "64", "--out", str(tmp_path / "e"),
               "--cache-dir", str(tmp_path / "c"), "--model-cache", str(tmp_path / "m"), "--quiet"])
    assert rc == 0
    rep = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert set(rep) >= {"base", "selection", "random", "pool", "verdict"}
    assert [r["seed"] for r in rep["random"]] == [0, 1, 2]
    n = rep["selection"]["rows"]
    assert 0 < n <= 8 and all(r["rows"] == n for r in rep["random"]) and rep["pool"]["rows"] == 40
    for r in [rep["selection"], rep["pool"], *rep["random"]]:
        assert r["tokens"] > 0 and r["train_seconds"] >= 0 and r["eval_loss"] > 0
        assert r["eval_loss"] < rep["base"]["eval_loss"]  # training on the pattern helps
    v = rep["verdict"]
    assert v["random_sd"] >= 0 and v["text"]
    out = capsys.readouterr().out
    assert "selection" in out and "random (seed 2)" in out and "verdict: " in out
    # a second eval of the same recipe trains nothing again: every model comes from the weight cache
    main(["eval", str(f), "--eval", str(ev), "--base", str(root / "lm"), "--seeds", "3", "--epochs", "4",
          "--lr", "0.01", "--full", "--max-tokens", "64", "--out", str(tmp_path / "e2"), "--cache-dir",
          str(tmp_path / "c"), "--model-cache", str(tmp_path / "m"), "--quiet"])
    again = json.loads((tmp_path / "e2" / "eval.json").read_text())
    assert again["selection"]["reused"] and all(r["reused"] for r in again["random"])
    assert again["selection"]["eval_loss"] == rep["selection"]["eval_loss"]


def test_eval_with_a_judge_reports_win_rates(setup, tmp_path):
    root, f, ev = setup
    main(["eval", str(f), "--eval", str(ev), "--base", str(root / "lm"), "--seeds", "2", "--judge",
          str(root / "lm"), "--epochs", "1", "--full", "--max-tokens", "64", "--out", str(tmp_path / "e"),
          "--cache-dir", str(tmp_path / "c"), "--model-cache", str(tmp_path / "m"), "--quiet"])
    rep = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert rep["base"]["win_rate_vs_base"] == 0.5
    for r in [rep["selection"], *rep["random"]]:
        assert 0.0 <= r["win_rate_vs_base"] <= 1.0


def test_verdict_says_how_sure_it_is():
    from recipe.evaluate import verdict
    rep = {"selection": {"eval_loss": 1.0}, "random": [{"eval_loss": x} for x in (1.5, 1.6, 1.4)]}
    v = verdict(rep)
    assert v["z"] == pytest.approx(-5.0) and v["text"].startswith("the selection trains a better model")
    assert "than random rows, clearly (against 3 random subsets): loss -0.5000" in v["text"]
    assert "only 3 random runs" in v["text"]
    pool = verdict({**rep, "selection": {"eval_loss": 1.25}, "matched": "pool, training seeds vary"})
    assert "than the pool as it was, probably (against 3 trainings on the pool)" in pool["text"]
    assert "only 3 runs" in pool["text"]
    same = verdict({"selection": {"eval_loss": 1.52}, "random": rep["random"]})
    assert same["text"].startswith("no measurable difference")
    one = verdict({"selection": {"eval_loss": 1.0}, "random": rep["random"][:1]})
    assert one["z"] is None and "no spread" in one["text"] and "better" not in one["text"]


def test_random_subsets_match_the_tokens_of_a_budgeted_selection(setup, tmp_path):
    """When the recipe selects up to a token budget, each random subset holds about the
    selection's tokens (never more; short of it by less than one pool row), not its row count."""
    root, _, ev = setup
    pool = root / "pool.jsonl"
    f = tmp_path / "budget.recipe"
    f.write_text(f'''recipe budget
source raw = read("{pool}", format="alpaca")
picked = raw | score(metric="length", on=instruction) | select(method="topk", by=length, budget_tokens=60)
write picked to "picked.jsonl"
''')
    main(["eval", str(f), "--eval", str(ev), "--base", str(root / "lm"), "--seeds", "2", "--epochs", "1",
          "--full", "--max-tokens", "64", "--out", str(tmp_path / "e"), "--cache-dir", str(tmp_path / "c"),
          "--model-cache", str(tmp_path / "m"), "--quiet"])
    rep = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert rep["matched"] == "tokens"
    budget = rep["selection"]["tokens"]
    for r in rep["random"]:
        assert budget - 40 < r["tokens"] <= budget, (r, budget)  # a pool row is under 40 tokens here


def test_random_by_tokens_never_passes_the_budget():
    from recipe.evaluate import random_by_tokens
    toks = [5, 9, 3, 12, 7, 1, 4]
    for seed in range(5):
        got = random_by_tokens(toks, 20, seed)
        assert sum(toks[i] for i in got) <= 20 and got == sorted(set(got))
        # nothing left out would still fit
        assert all(sum(toks[i] for i in got) + toks[j] > 20 for j in range(len(toks)) if j not in got)


def test_a_recipe_that_keeps_every_row_is_weighed_against_the_pool_under_training_seeds(setup, tmp_path, capsys):
    """A rewriting recipe keeps every row: random subsets of its size would be the pool, all
    alike (no spread). The pool is trained under `--seeds` training seeds instead, each a
    different model, and the verdict and table say so."""
    root, _, ev = setup
    f = tmp_path / "rewrite.recipe"
    f.write_text(f'recipe rewrite\nsource raw = read("{root / "pool.jsonl"}", format="alpaca")\n'
                 'out = raw | derive(instruction=upper(instruction))\nwrite out to "out.jsonl"\n')
    main(["eval", str(f), "--eval", str(ev), "--base", str(root / "lm"), "--seeds", "3", "--epochs", "1",
          "--full", "--max-tokens", "64", "--out", str(tmp_path / "e"), "--cache-dir", str(tmp_path / "c"),
          "--model-cache", str(tmp_path / "m"), "--quiet"])
    rep = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert rep["matched"] == "pool, training seeds vary"
    assert rep["selection"]["rows"] == 40 and all(r["rows"] == 40 and not r["reused"] for r in rep["random"])
    assert len({r["eval_loss"] for r in rep["random"]}) > 1 and rep["verdict"]["random_sd"] > 0  # seeds differ
    assert "trainings on the pool" in rep["verdict"]["text"]
    assert "pool (train seed 2)" in capsys.readouterr().out


def test_a_base_or_judge_that_cannot_load_stops_eval_before_the_recipe_runs(setup, tmp_path, capsys):
    root, f, ev = setup
    from test_model_folders import _encoder
    enc = _encoder(tmp_path / "encoder")
    for flags, words in ((["--base", str(enc)], "BertModel"), (["--base", "openai:http://127.0.0.1:9/v1#m"], "weights"),
                         (["--base", str(root / "lm"), "--judge", str(tmp_path / "nowhere")], "model not found")):
        rc = main(["eval", str(f), "--eval", str(ev), *flags, "--out", str(tmp_path / "e"),
                   "--cache-dir", str(tmp_path / "c"), "--model-cache", str(tmp_path / "m"), "--quiet"])
        err = capsys.readouterr().err
        assert rc != 0 and words in err and flags[-2] in err, err
        assert not (tmp_path / "e" / "run").exists()  # the recipe did not run


def test_each_phase_of_eval_tells_its_progress(setup, tmp_path):
    # training, answering, judging and the eval loss each run for minutes on a CPU: each reports
    # its steps or rows to the run's progress (a bar on a terminal, lines in a log)
    from contextlib import contextmanager

    from recipe.api import load
    from recipe.evaluate import evaluate
    root, f, ev = setup
    seen: dict[str, list] = {}

    class Recorder:
        @contextmanager
        def progress(self, label):
            yield lambda done, total: seen.setdefault(label, []).append((done, total))

    logs: list[str] = []
    evaluate(load(str(f)), {}, {}, str(ev), tmp_path / "e", seeds=1, base=str(root / "lm"), judge=str(root / "lm"),
             cache_dir=str(tmp_path / "c"), model_cache=tmp_path / "m", log=logs.append, reporter=Recorder(),
             settings={"epochs": 1, "lora": False, "max_tokens": 64})
    assert set(seen) == {"base answers", "eval loss (base)", "training on the selection",
                         "eval loss (the selection)", "answers (the selection)", "judging (the selection)",
                         "training on random subset 0", "eval loss (random subset 0)", "answers (random subset 0)",
                         "judging (random subset 0)"}
    for label, calls in seen.items():
        done, total = calls[-1]
        assert done == total > 0, (label, calls)
    # each eval pair judged in both orders, in one call (progress counts the distinct prompts to compute)
    assert 12 < seen["judging (the selection)"][-1][1] <= 2 * 12
    assert "loss of the 12 reference answers under the base model" in logs

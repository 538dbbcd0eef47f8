"""`recipe plan NEW --against OLD`: golden text, JSON and markdown for pairs of recipes that
differ in params, expressions, steps added and removed, model, and input data; against a git
revision; with the step cache's status; and a code change."""
from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from recipe.api import load
from recipe.cli import main
from recipe.review import compare

CASES = Path(__file__).parent / "golden" / "plan_against"
SUFFIX = {"text": "txt", "json": "json", "markdown": "md"}


def _plan(capsys, cwd: Path, *args) -> str:
    here = os.getcwd()
    os.chdir(cwd)
    try:
        assert main(["plan", *args]) == 0
    finally:
        os.chdir(here)
    return capsys.readouterr().out


@pytest.mark.parametrize("fmt", list(SUFFIX))
@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()))
def test_golden_plan_against(capsys, case, fmt, update_golden, tmp_path):
    got = _plan(capsys, CASES / case, "new.recipe", "--against", "old.recipe", "--format", fmt,
                "--cache-dir", str(tmp_path / "no-cache"))
    expected = CASES / case / f"expected.{SUFFIX[fmt]}"
    if update_golden:
        expected.write_text(got)
    assert expected.exists(), f"{expected} is missing: write it with --update-golden and review it"
    assert got == expected.read_text()


def test_against_a_git_revision_and_a_new_file(capsys, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "d.jsonl").write_text((CASES.parent / "data.jsonl").read_text())
    rec = repo / "r.recipe"
    rec.write_text('recipe t\nsource raw = read("d.jsonl")\nx = raw | limit(n=5)\nwrite x to "x.jsonl"\n')
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    rec.write_text('recipe t\nsource raw = read("d.jsonl")\nx = raw | limit(n=7)\nwrite x to "x.jsonl"\n')
    out = _plan(capsys, tmp_path, str(rec), "--against", "git:HEAD", "--cache-dir", str(tmp_path / "c"))
    assert out.startswith("against HEAD:r.recipe: 1 changed, 1 unchanged")
    assert "n: 5 -> 7" in out
    other = repo / "new.recipe"
    other.write_text(rec.read_text())
    out = _plan(capsys, tmp_path, str(other), "--against", "git:HEAD", "--cache-dir", str(tmp_path / "c"))
    assert "not there: the recipe is new" in out and out.count("new  ") >= 2
    assert main(["plan", str(rec), "--against", "git:no-such-branch"]) == 1
    assert "no git revision `no-such-branch`" in capsys.readouterr().err
    # a folder or a file that is not text: one line naming it (a folder was a traceback)
    (tmp_path / "bin.recipe").write_bytes(b"\xff\xfe")
    for bad, says in ((repo, "is a directory"), (tmp_path / "bin.recipe", "is not UTF-8 text")):
        assert main(["plan", str(rec), "--against", str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: --against {bad}: ") and says in err and err.count("\n") == 1, err


def test_cache_status_says_what_will_run(capsys, tmp_path, monkeypatch):
    case = CASES / "input"
    monkeypatch.chdir(case)  # as a user would: plan and run from the same folder
    load("old.recipe").run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    out = _plan(capsys, case, "new.recipe", "--against", "old.recipe", "--cache-dir", str(tmp_path / "c"))
    assert "input data changed" in out and "[input file changed]" in out
    assert "will run" in out.splitlines()[0]
    load("new.recipe").run(out=tmp_path / "o2", cache_dir=tmp_path / "c")
    out = _plan(capsys, case, "new.recipe", "--against", "old.recipe", "--cache-dir", str(tmp_path / "c"))
    assert out.count("[cached]") == 3 and "0 step(s) will run" in out


def test_a_code_change_is_named():
    plan = load(str(CASES / "input" / "new.recipe")).plan()
    old = dataclasses.replace(plan, steps=[dataclasses.replace(s, parts={**s.parts, "code": "x"}, fingerprint="f" + s.name)
                                           if s.op == "dedupe" else s for s in plan.steps])
    got = {c.name: c for c in compare(old, plan)}
    assert got["x/dedupe"].status == "changed" and got["x/dedupe"].how == ["code changed (a new version of the operator or its algorithms)"]


def test_estimates_rows_and_seconds_from_the_last_run(tmp_path, monkeypatch):
    from recipe.engine.store import Store
    from recipe.estimate import estimate, fmt
    monkeypatch.chdir(tmp_path)
    rows = (CASES.parent / "data.jsonl").read_text().splitlines(keepends=True)
    Path("small.jsonl").write_text("".join(rows[:6]))
    Path("big.jsonl").write_text("".join(rows * 10))  # 120 rows, 10 copies of each
    text = ('recipe t\nsource raw = read("{f}")\nx = raw | dedupe(method="exact") | limit(n=50)\n'
            'write x to "x.jsonl"\n')
    load(text.format(f="small.jsonl")).run(out="o", cache_dir="c")
    plan = load(text.format(f="big.jsonl")).plan()
    store = Store("c")
    try:
        est = estimate(plan, store)
    finally:
        store.close()
    assert est["raw"].rows_out == 120                     # lines of the new file
    assert est["x/dedupe"].rows_in == 120 and est["x/dedupe"].rows_out == 120  # kept 6 of 6 last time
    assert est["x/limit"].rows_out == 50                  # limit's arithmetic
    assert all(e.seconds is not None and e.seconds >= 0 for e in est.values())
    assert "measured" in est["x/limit"].basis and fmt(est["x/limit"]).startswith("~120 -> ~50 rows")


def test_a_mix_is_estimated_at_the_rows_it_would_draw(tmp_path):
    """`mix` draws k rows (fewer where an input is short), or without k as many as the
    weights allow: not the sum of its inputs (the plan said 9,590 -> 9,590 for k=600)."""
    from recipe.estimate import estimate
    (tmp_path / "a.jsonl").write_text("".join(f'{{"instruction": "a{i}", "output": "x"}}\n' for i in range(30)))
    (tmp_path / "b.jsonl").write_text("".join(f'{{"instruction": "b{i}", "output": "y"}}\n' for i in range(10)))
    src = (f'recipe t\nsource a = read("{tmp_path / "a.jsonl"}")\nsource b = read("{tmp_path / "b.jsonl"}")\n'
           'm = mix(a, b, weights=[0.5, 0.5]{k})\nwrite m to "m.jsonl"\n')
    rows = {k: estimate(load(src.format(k=k)).plan(), None)["m"].rows_out for k in ("", ", k=12", ", k=30")}
    assert rows == {"": 20, ", k=12": 12, ", k=30": 25}  # b has 10: 15 + 10 of 30 asked


def test_source_rows_are_counted_from_parquet_metadata_and_csv_records(tmp_path):
    """Before a first read: Parquet's row count from its metadata, CSV/TSV records (a quoted
    line break is not a row; a headerless file's first line is one), a JSON array's elements."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from recipe.estimate import estimate
    pq.write_table(pa.table({"instruction": ["a", "b", "c"], "output": ["x", "y", "z"]}), tmp_path / "p.parquet")
    (tmp_path / "c.csv").write_text('instruction,output\n"two\nlines",x\nb,y\n')
    (tmp_path / "h.tsv").write_text("a\tx\nb\ty\nc\tz\n")
    (tmp_path / "j.json").write_text('[{"instruction": "a", "output": "x"}]')
    r = load(f'recipe t\nsource p = read("{tmp_path / "p.parquet"}")\nsource c = read("{tmp_path / "c.csv"}")\n'
             f'source h = read("{tmp_path / "h.tsv"}", format="alpaca", columns=["instruction", "output"])\n'
             f'source j = read("{tmp_path / "j.json"}")\n'
             'write p to "p.jsonl"\nwrite c to "c.jsonl"\nwrite h to "h.jsonl"\nwrite j to "j.jsonl"\n')
    est = estimate(r.plan(), None)
    assert {k: est[k].rows_out for k in "pchj"} == {"p": 3, "c": 2, "h": 3, "j": 1}


def test_a_model_steps_estimate_never_borrows_a_rate_measured_without_a_model():
    # a `score` by word count ran before; an IFD `score` by a model must not look free
    from types import SimpleNamespace
    from recipe.estimate import _rates
    words = {"parts": {"op": "score", "models": []}, "rows_in": 12_000, "seconds": 0.1, "usage": None}
    ifd = SimpleNamespace(op="score", parts={"op": "score", "models": ["lm@1"]})
    assert _rates(ifd, [words]) == (None, "no measured rate for this operator with a model in this cache")
    judged = {"parts": {"op": "score", "models": ["judge@2"]}, "rows_in": 10, "seconds": 5.0,
              "usage": {"seconds": 4.0, "computed": 20, "requests": 20, "tokens": 900, "load_seconds": 0.5}}
    rate, basis = _rates(ifd, [words, judged])
    assert basis == "measured: this operator with other models"
    assert rate["per_call"] == 0.2 and rate["requests"] == 2 and rate["load"] == 0.5
    plain = SimpleNamespace(op="score", parts={"op": "score", "models": []})
    rate, basis = _rates(plain, [judged, words])  # and a model-less step takes the model-less run's rate
    assert basis == "measured: this operator" and rate["requests"] == 0 and abs(rate["other"] - 0.1 / 12_000) < 1e-12


def test_a_score_is_estimated_from_runs_of_its_own_metric_first():
    # the same model counts tokens (no forward pass) and scores IFD (two per row): neither's rate is the other's
    from types import SimpleNamespace
    from recipe.estimate import _rates

    def run(metric, seconds, calls):
        return {"parts": {"op": "score", "models": ["lm@1"], "args": {"metric": metric}}, "rows_in": 10,
                "seconds": seconds, "usage": {"seconds": seconds, "computed": calls, "requests": calls, "tokens": 0}}
    history = [run("ifd", 20.0, 20), run("tokens", 0.1, 10)]
    for metric, per_call, requests in (("ifd", 1.0, 2), ("tokens", 0.01, 1)):
        step = SimpleNamespace(op="score", parts={"op": "score", "models": ["lm@1"], "args": {"metric": metric}})
        rate, _ = _rates(step, history)
        assert (rate["per_call"], rate["requests"]) == (per_call, requests), metric


def test_a_steps_fixed_cost_is_not_spread_over_the_rows_of_a_larger_run():
    # a read's start (a connection, imports) is most of a small read: runs of two sizes
    # separate it from the per-row cost, so 1M rows are not 1M times a small read's share
    from types import SimpleNamespace
    from recipe.estimate import _fit, _rates

    def run(rows, seconds):
        return {"parts": {"op": "read", "models": []}, "rows_out": rows, "rows_in": 0, "seconds": seconds, "usage": None}
    step = SimpleNamespace(op="read", parts={"op": "read", "models": []})
    rate, _ = _rates(step, [run(100, 1.0 + 100 * 2e-5), run(10_000, 1.0 + 10_000 * 2e-5), run(2_000, 1.04)])
    assert abs(rate["fixed"] - 1.0) < 1e-9 and abs(rate["other"] - 2e-5) < 1e-12
    # one size only: no fixed cost can be told apart, every second is per row (an upper bound)
    rate, _ = _rates(step, [run(80, 1.2), run(80, 0.4)])
    assert rate["fixed"] == 0 and rate["other"] == 1.6 / 160
    assert _fit([10, 20], [3.0, 1.0]) == (0.0, 0.05)  # bigger and faster: the largest run's rate


def test_rates_are_fitted_over_every_run_of_a_step_not_only_its_latest(tmp_path, monkeypatch):
    # a trial on a few rows, then a larger run: both are runs of the read, so the plan of a
    # still larger one separates the read's start from its cost per row
    from recipe.engine.store import Store
    monkeypatch.chdir(tmp_path)
    rows = (CASES.parent / "data.jsonl").read_text().splitlines(keepends=True)
    Path("a.jsonl").write_text("".join(rows[:3]))
    Path("b.jsonl").write_text("".join(rows * 5))
    text = 'recipe t\nsource raw = read("{f}")\nx = raw | filter(length(instruction) > 0)\nwrite x to "x.jsonl"\n'
    for f in ("a.jsonl", "b.jsonl"):
        load(text.format(f=f)).run(out="o", cache_dir="c")
    store = Store("c")
    try:
        runs, latest = store.runs(), store.history()
    finally:
        store.close()
    assert sorted(r["rows_out"] for r in runs if r["parts"]["op"] == "read") == [3, 60]
    assert [r["rows_out"] for r in latest if r["parts"]["op"] == "read"] == [60]

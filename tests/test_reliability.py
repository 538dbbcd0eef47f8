"""Crash and resume, hostile input and recipes: nothing is lost, nothing is reached."""
import json
import os
import signal
import time
from pathlib import Path

import pytest

from recipe.api import load
from recipe.diagnostics import RecipeError

import forked
from conftest import alpaca_rows, write_jsonl

RECIPE = '''recipe crash

model lm = causal_lm("{lm}", dtype="fp32")

source raw = read("{data}")

clean = raw
  | filter(length(response) > 40)
  | dedupe(method="minhash", threshold=0.9)
  | score(metric="perplexity", model=lm, chat_template=false)

top = clean | select(method="topk", by=perplexity, k=10)

write top to "top.jsonl"
write clean to "clean.jsonl" (format="alpaca")
'''


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory):
    from test_runtime import _tiny_lm
    root = tmp_path_factory.mktemp("crash")
    _tiny_lm(root / "lm")
    rows = alpaca_rows(60, dup_every=7)
    for i, r in enumerate(rows):  # words the tiny model's vocabulary knows
        r["output"] = " ".join(f"w{(i * 3 + j) % 60}" for j in range(8 + i % 5)) + " " + r["output"]
    data = write_jsonl(root / "d.jsonl", rows)
    f = root / "crash.recipe"
    f.write_text(RECIPE.format(lm=root / "lm", data=data))
    return root, f


def _run(f, out, cache, fault=None):
    env = dict(os.environ)
    if fault:
        env["RECIPE_FAULT_INJECT"] = fault
    # each run's model results live with its step cache: a killed run must compute them itself
    return forked.run(["run", str(f), "--out", str(out), "--cache-dir", str(cache),
                       "--model-cache", str(Path(cache) / "models"), "--quiet"], env)


def _outputs(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.json"}


POINTS = ["step:raw:before_commit", "step:clean/dedupe:after_commit", "model:loglik:after_cache",
          "step:clean/score:before_commit", "step:top:before_commit", "write:clean.jsonl", "write:set_aside.jsonl"]


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_resume_gives_identical_bytes(crash_setup, point, tmp_path):
    root, f = crash_setup
    ref = root / "ref"
    if not ref.exists():
        p = _run(f, ref, root / "ref-cache")
        assert p.returncode == 0, p.stderr
    killed = _run(f, tmp_path / "o", tmp_path / "c", fault=point)
    assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
    # nothing half-written is visible under a final name
    for p in (tmp_path / "o").glob("*.jsonl"):
        assert p.read_bytes() == (ref / p.name).read_bytes()
    resumed = _run(f, tmp_path / "o", tmp_path / "c")
    assert resumed.returncode == 0, resumed.stderr
    assert _outputs(tmp_path / "o") == _outputs(ref)
    assert not list((tmp_path / "o").glob(".*.tmp-*"))
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    if point.endswith("after_commit") or point.startswith("write:"):
        assert man["nodes"][0]["cached"]  # finished steps were reused


def test_kill_at_a_random_moment(crash_setup, tmp_path):
    root, f = crash_setup
    ref = root / "ref"
    if not ref.exists():
        assert _run(f, ref, root / "ref-cache").returncode == 0
    proc = forked.Run(["run", str(f), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "--quiet"])
    time.sleep(1.0)  # a forked run starts without its imports (a fresh process spent 2-3 s on them)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _run(f, tmp_path / "o", tmp_path / "c").returncode == 0
    assert _outputs(tmp_path / "o") == _outputs(ref)


def test_concurrent_runs_on_one_cache_are_refused(crash_setup, tmp_path):
    root, f = crash_setup
    # the first run holds the lock while it works
    first = forked.Run(["run", str(f), "--out", str(tmp_path / "a"), "--cache-dir", str(tmp_path / "c"), "--quiet"])
    deadline = time.time() + 30
    while not (tmp_path / "c" / "lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    second = _run(f, tmp_path / "b", tmp_path / "c")
    first.wait()
    assert first.returncode == 0
    if second.returncode != 0:  # it overlapped: a clear message, no traceback
        assert "in use by a running" in second.stderr and "Traceback" not in second.stderr
    else:  # the first had already finished: the second is a full cache hit
        assert _outputs(tmp_path / "b") == _outputs(tmp_path / "a")


def test_huge_record_and_deep_expressions(tmp_path):
    from recipe.io import readers
    p = tmp_path / "big.jsonl"
    with open(p, "w") as fh:
        fh.write(json.dumps({"instruction": "a", "output": "b"}) + "\n")
        fh.write(json.dumps({"instruction": "x" * (readers.MAX_RECORD_BYTES + 10), "output": "y"}) + "\n")
    out = list(readers.iter_rows("s", [p], None, log=lambda *_: None))
    assert out[0][1] is not None and "larger than" in out[1][2]
    deep = "(" * 200 + "1" + ")" * 200
    with pytest.raises(RecipeError) as e:
        load(f'recipe t\nsource raw = read("x")\na = raw | filter({deep} > 0)\nwrite a to "o.jsonl"\n')
    assert e.value.diagnostics[0].code == "E0107"
    for n in (700, 5000):  # long chains: refused by the checker or by the parser, never a crash
        wide = " + ".join(["length(response)"] * n)
        try:
            diags = load(f'recipe t\nsource raw = read("{p}")\na = raw | filter({wide} > 0)\nwrite a to "o.jsonl"\n').diagnose().diagnostics
        except RecipeError as e:
            diags = e.diagnostics
        assert any(d.code == "E0107" for d in diags)


def test_yaml_alias_bomb_is_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh")) + "recipe: t\n"
    from recipe.frontend import parse_yaml
    with pytest.raises(RecipeError) as e:
        parse_yaml(bomb, "bomb.yaml")
    assert "expands to more than" in e.value.diagnostics[0].message


def test_engine_database_cannot_reach_files(tmp_path):
    import duckdb
    from recipe.engine.store import Store
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    s = Store(tmp_path / "c")
    try:
        for q in (f"SELECT * FROM read_csv('{secret}')", f"COPY (SELECT 1) TO '{tmp_path}/x.csv'",
                  "SET enable_external_access = true"):
            with pytest.raises(duckdb.Error):
                s.con.execute(q)
    finally:
        s.close()
    assert not (tmp_path / "x.csv").exists()


def test_full_disk_gives_a_clear_error_and_no_partial_file(tmp_path, monkeypatch):
    import errno
    from recipe.diagnostics import UserError
    from recipe.engine import run as engine_run

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(engine_run.os, "fsync", full)
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(5))
    with pytest.raises(UserError, match="No space left on device"):
        load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "o.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert list((tmp_path / "o").iterdir()) == []  # neither the sink nor its temporary file


def test_a_broken_local_model_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "nonsense"}')
    # files `check` looks for are there (it cannot tell), so the failure is the runtime's
    (bad / "model.safetensors").write_bytes(b"not safetensors")
    (bad / "tokenizer.json").write_text("{}")
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(3))
    f = tmp_path / "t.recipe"
    f.write_text(f'recipe t\nmodel lm = causal_lm("{bad}")\nsource raw = read("{data}")\n'
                 f'a = raw | score(metric="perplexity", model=lm)\nwrite a to "a.jsonl"\n')
    env = {k: v for k, v in os.environ.items() if k != "RECIPE_DEBUG"}
    p = forked.run(["run", str(f), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "--quiet"], env)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "step `a` (score) failed" in p.stderr and "finished steps are cached" in p.stderr

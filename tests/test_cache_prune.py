"""`recipe cache [--prune]`: stale steps are listed and removed, every step a latest run reads
through is kept, the file shrinks, and what is kept is still served from the cache with the
same bytes, on both engines."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from recipe.api import load
from recipe.cli import main
from recipe.engine.prune import inspect

from conftest import alpaca_rows, write_jsonl

RECIPE = '''recipe t
source raw = read("{data}")
x = raw | filter(length(instruction) > {n}) | dedupe(method="exact", on=instruction)
write x to "x.jsonl"
'''


def run(tmp_path, text, out, engine="duckdb"):
    res = load(text).run(out=tmp_path / out, cache_dir=tmp_path / "cache", engine=engine)
    return res, (tmp_path / out / "x.jsonl").read_bytes()


def why(res) -> dict:
    return {s["name"]: s["why"] for s in res.steps}


@pytest.fixture
def files(tmp_path):
    small = write_jsonl(tmp_path / "small.jsonl", alpaca_rows(40, dup_every=5))
    # a larger input, so that dropping its read step frees whole blocks of the file
    big = write_jsonl(tmp_path / "big.jsonl", [{**r, "output": r["output"] * 100} for r in alpaca_rows(3000)])
    return small, big


def test_prune_removes_stale_steps_keeps_latest_and_serves_them_unchanged(tmp_path, files, capsys):
    small, big = files
    a, b = RECIPE.format(data=small, n=20), RECIPE.format(data=small, n=35)
    _, bytes_a = run(tmp_path, a, "a")
    _, bytes_b = run(tmp_path, b, "b")
    rep = inspect(tmp_path / "cache")
    assert sorted((s.name, s.keep) for s in rep.steps) == [
        ("raw", True), ("x/dedupe", False), ("x/dedupe", True), ("x/filter", False), ("x/filter", True)]
    assert main(["cache", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "2 not any step name's latest run" in capsys.readouterr().out
    assert len(inspect(tmp_path / "cache", prune=True).removed) == 2
    assert inspect(tmp_path / "cache").removed == []
    res, again_b = run(tmp_path, b, "b2")
    assert set(why(res).values()) == {"cached"} and again_b == bytes_b
    res, again_a = run(tmp_path, a, "a2")  # a's own steps were pruned: they run again, same bytes
    w = why(res)
    assert w["raw"] == "cached" and w["x/filter"] != "cached" and w["x/dedupe"] != "cached" and again_a == bytes_a

    # a read of another file makes the big read stale: pruning gives its space back
    run(tmp_path, RECIPE.format(data=big, n=20), "big")
    run(tmp_path, a, "a3")
    before = (tmp_path / "cache" / "cache.duckdb").stat().st_size
    rep = inspect(tmp_path / "cache", prune=True)
    assert {s.name for s in rep.removed} == {"raw", "x/filter", "x/dedupe"}
    after = (tmp_path / "cache" / "cache.duckdb").stat().st_size
    # a cache that only ever held `a`'s steps, for scale: the pruned file is about its size
    load(a).run(out=tmp_path / "alone", cache_dir=tmp_path / "alone_cache")
    alone = (tmp_path / "alone_cache" / "cache.duckdb").stat().st_size
    assert before - after > big.stat().st_size / 2 and after < alone * 1.5
    assert rep.bytes_after < rep.bytes_before
    res, again_a = run(tmp_path, a, "a4")
    assert set(why(res).values()) == {"cached"} and again_a == bytes_a


def test_a_latest_step_keeps_the_older_steps_it_reads_through(tmp_path, files):
    small, big = files
    p = RECIPE.format(data=small, n=20)
    # another recipe in the same project whose source has the same name, and no `x`
    q = f'recipe q\nsource raw = read("{big}")\ny = raw | filter(length(response) > 5)\nwrite y to "y.jsonl"\n'
    _, bytes_p = run(tmp_path, p, "p")
    load(q).run(out=tmp_path / "q", cache_dir=tmp_path / "cache")
    rep = inspect(tmp_path / "cache", prune=True)
    # p's `raw` is no name's latest (q's is) but p's x/filter, the latest `x/filter`, reads it
    assert rep.removed == [] and sum(s.name == "raw" for s in rep.steps) == 2
    res, again = run(tmp_path, p, "p2")
    assert set(why(res).values()) == {"cached"} and again == bytes_p


def test_tables_a_killed_run_left_are_removed(tmp_path, files):
    small, _ = files
    run(tmp_path, RECIPE.format(data=small, n=20), "a")
    con = duckdb.connect(str(tmp_path / "cache" / "cache.duckdb"))
    con.execute("CREATE TABLE t_0123456789abcdef01234567__rows AS SELECT 1 AS x")
    con.close()
    assert inspect(tmp_path / "cache").orphans == 1
    assert inspect(tmp_path / "cache", prune=True).orphans == 1
    assert inspect(tmp_path / "cache").orphans == 0


def test_a_cache_in_use_is_not_pruned(tmp_path, files):
    from recipe.diagnostics import UserError
    from recipe.engine.store import Store
    run(tmp_path, RECIPE.format(data=files[0], n=20), "a")
    s = Store(tmp_path / "cache")
    try:
        with pytest.raises(UserError, match="in use"):
            inspect(tmp_path / "cache", prune=True)
    finally:
        s.close()
    assert main(["cache", "--cache-dir", str(tmp_path / "nowhere")]) == 1


def test_prune_on_the_ray_engine_keeps_view_bases(tmp_path, files, monkeypatch):
    pytest.importorskip("ray")
    from conftest import stop_ray
    monkeypatch.setenv("RECIPE_RAY_BLOCK_ROWS", "7")
    small, _ = files
    a, b = RECIPE.format(data=small, n=20), RECIPE.format(data=small, n=35)
    try:
        run(tmp_path, a, "a", engine="ray")
        _, bytes_b = run(tmp_path, b, "b", engine="ray")
        rep = inspect(tmp_path / "cache", prune=True)
        assert sorted(s.name for s in rep.removed) == ["x/dedupe", "x/filter"]
        assert not list((tmp_path / "cache" / "ray").glob("t_*/*.tmp-*"))
        res, again = run(tmp_path, b, "b2", engine="ray")
        assert set(why(res).values()) == {"cached"} and again == bytes_b
        # the filter's blocks are views of the read's: the read is kept while they are
        kept = {s.fp[:24] for s in inspect(tmp_path / "cache").steps}
        assert len(kept) == 3 and all(Path(tmp_path / "cache" / "ray" / f"t_{fp}").is_dir() for fp in kept)
    finally:
        stop_ray()


def test_the_listing_says_where_the_model_cache_is_and_its_size(tmp_path, files, monkeypatch, capsys):
    models = tmp_path / "models"
    (models / "results").mkdir(parents=True)
    (models / "results" / "x.bin").write_bytes(b"0" * 2_500_000)
    monkeypatch.setenv("RECIPE_CACHE_HOME", str(models))
    run(tmp_path, RECIPE.format(data=files[0], n=20), "a")
    assert main(["cache", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert f"model cache (shared by every project): {models}, 2.5 MB; `recipe cache --models` lists" in out


# ---- the model cache's weights ---------------------------------------------------------------

def test_model_cache_weights_are_listed_and_those_unused_for_days_removed(tmp_path, capsys):
    """`recipe cache --models`: each weight folder with what it was made from and when a run
    last loaded it; `--prune --older-than DAYS` removes the folders unused that long and old
    leftovers of killed runs, and keeps the rest and the results."""
    import os
    import time
    from recipe.runtime import weights_store as ws
    root = tmp_path / "models"
    now = time.time()
    folders = {"dequantised/a": 40, "finetuned/b": 2, "finetuned/c": 31, "finetuned/d.tmp42": 3}
    for rel, days in folders.items():
        p = root / rel
        p.mkdir(parents=True)
        (p / "model.safetensors").write_bytes(b"w" * 1000)
        if rel != "finetuned/c":  # c: a folder from before recipe described its folders
            ws.describe(p, f"made {rel}")
        ws.mark_used(p)
        for f in [p / ".used", p]:
            if f.exists():
                os.utime(f, (now - days * 86400, now - days * 86400))
    (root / "emb").mkdir()
    ws.mark_used(tmp_path)  # not a folder of the model cache: never written to
    assert not (tmp_path / ".used").exists()
    assert main(["cache", "--models", "--model-cache", str(root)]) == 0
    out = capsys.readouterr().out
    assert "dequantised/a  made dequantised/a" in out and "finetuned/c  (made before recipe recorded what from)" in out
    assert "3 weight folder(s)" in out and "d.tmp42" in out
    assert main(["cache", "--models", "--model-cache", str(root), "--prune", "--older-than", "30"]) == 0
    out = capsys.readouterr().out
    assert "removed 2 weight folder(s) unused for 30+ days" in out and "1 folder(s) left by killed runs" in out
    assert sorted(str(p.relative_to(root)) for p in root.glob("*/*")) == ["finetuned/b"]
    assert (root / "emb").is_dir()

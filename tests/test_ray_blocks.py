"""Ray's block tasks run here without Ray (they are plain functions over Parquet files): a
filter that keeps a whole block links it instead of encoding it again, and gives what the
full path gives."""
import os

import pyarrow as pa
import pytest
import pyarrow.parquet as pq

from recipe.engine.ray_blocks import sql_block
from recipe.ir import Binary, Call, Column, Lit


def block(path, n=6):
    pq.write_table(pa.table({"_id": [f"s:{i}" for i in range(n)], "instruction": [f"write {'x' * i}" for i in range(n)],
                             "response": ["yes"] * n, "_row": list(range(n))}), path)
    return str(path)


def run(tmp_path, name, cond, src):
    out, aside = tmp_path / f"{name}.parquet", tmp_path / f"{name}-aside.parquet"
    kept = sql_block(src, str(out), str(aside), "filter", (cond, "too short"), {})
    return kept, out, pq.read_table(aside)


def test_a_filter_that_keeps_every_row_links_the_block(tmp_path):
    src = block(tmp_path / "src.parquet")
    every = Binary(">=", Call("length", (Column("instruction"),)), Lit(5))
    kept, out, aside = run(tmp_path, "every", every, src)
    assert kept == 6 and aside.num_rows == 0
    assert os.stat(out).st_ino == os.stat(src).st_ino  # the same file, not a copy
    some = Binary(">=", Call("length", (Column("instruction"),)), Lit(8))
    kept, out2, aside = run(tmp_path, "some", some, src)
    assert kept == 4 and aside.column("_id").to_pylist() == ["s:0", "s:1"]
    assert aside.column("reason").to_pylist() == ["too short"] * 2
    assert os.stat(out2).st_ino != os.stat(src).st_ino
    assert pq.read_table(out2).column("_id").to_pylist() == [f"s:{i}" for i in range(2, 6)]
    # a whole block linked reads back as the full path would have written it
    assert pq.read_table(out).equals(pq.read_table(src))


def test_a_condition_on_a_column_the_block_lacks_takes_the_full_path(tmp_path):
    src = block(tmp_path / "src.parquet")
    # `conversation` is computed from `messages` (absent here): the filter's own error, not a link
    cond = Binary(">=", Call("length", (Column("conversation"),)), Lit(0))
    with pytest.raises(Exception, match="messages|conversation"):
        run(tmp_path, "conv", cond, src)
    assert not (tmp_path / "conv.parquet").exists()


def test_a_row_dropping_paste_writes_a_view_that_reads_as_the_kept_rows(tmp_path):
    """A step that only drops rows stores positions in its input's block, not the rows; a
    view of a view points at the base; every reader sees the kept rows, and the SQL that
    `recipe explain` reads a Ray cache with gives the same rows."""
    import duckdb
    import numpy as np
    from recipe.engine.ray_blocks import block_rows, block_schema, paste_block, read_block
    from recipe.engine.ray_store import _block_sql
    (tmp_path / "t_a").mkdir()
    (tmp_path / "t_b").mkdir()
    (tmp_path / "t_c").mkdir()
    src = block(tmp_path / "t_a" / "00000000.parquet", n=8)
    keep = np.array([1, 0, 1, 1, 0, 1, 1, 0], dtype=bool)
    out = str(tmp_path / "t_b" / "00000000.parquet")
    assert paste_block(src, out, str(tmp_path / "aside1.parquet"), keep, None, "dropped") == 5
    assert pq.read_schema(out).names == ["__pos"]  # no rows copied
    assert read_block(out).equals(pq.read_table(src).filter(pa.array(keep)))
    assert block_rows(out) == 5 and block_schema(out) == pq.read_schema(src)
    assert pq.read_table(tmp_path / "aside1.parquet").column("_id").to_pylist() == ["s:1", "s:4", "s:7"]
    again = str(tmp_path / "t_c" / "00000000.parquet")
    paste_block(out, again, str(tmp_path / "aside2.parquet"), np.array([0, 1, 1, 0, 1], dtype=bool), None, "x")
    assert read_block(again, ["_id", "_row"]).column("_id").to_pylist() == ["s:2", "s:3", "s:6"]
    assert pq.read_schema(again).metadata[b"recipe.view_of"] == b"t_a/00000000.parquet"  # the base, not the view
    assert duckdb.sql(_block_sql(again)).to_arrow_table().to_pylist() == read_block(again).to_pylist()


def test_a_read_task_writes_the_blocks_its_scratch_database_would(tmp_path, monkeypatch):
    """Fast-path spans go straight from Arrow into blocks; the blocks (types, conversations,
    `_row`) equal those of the scratch-database path, which a span the fast path cannot take
    still uses."""
    import json
    from recipe.engine import ray_read
    from recipe.engine.ray_blocks import read_block
    f = tmp_path / "d.jsonl"
    rows = [{"instruction": f"q{i}", "input": "ctx" if i % 3 else "", "output": f"a{i}", "n": i} for i in range(50)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    size = f.stat().st_size
    piece = ("span", str(f), "alpaca", (0, size, 1, 0))
    direct = ray_read.read_piece(piece, {"format": "alpaca"}, "raw", 3, str(tmp_path / "w1"), 16)
    monkeypatch.setattr(ray_read, "direct_blocks", lambda *a: None)
    scratch = ray_read.read_piece(piece, {"format": "alpaca"}, "raw", 3, str(tmp_path / "w2"), 16)
    assert direct[:2] == scratch[:2] and direct[0] == 50
    names = sorted(p.name for p in (tmp_path / "w1" / "000003").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "w2" / "000003").iterdir())
    for name in names:
        a, b = pq.read_table(tmp_path / "w1" / "000003" / name), pq.read_table(tmp_path / "w2" / "000003" / name)
        assert a.equals(b), name
    # each text stored once: the conversation is a flag on disk, rebuilt on reading
    path = str(tmp_path / "w1" / "000003" / "b00000000.parquet")
    stored = pq.read_table(path).to_pylist()[1]
    assert stored["messages"] is None and stored["__two_turns"] is True
    first = read_block(path).to_pylist()[1]
    assert first["messages"] == [{"role": "user", "content": "q1\n\nctx"}, {"role": "assistant", "content": "a1"}]
    assert first["_row"] == (3 << ray_read.FILE_ROWS) + 1 and "__two_turns" not in first
    assert read_block(path, ["instruction", "messages"]).column_names == ["instruction", "messages"]


def test_conversations_stored_once_read_back_unchanged(tmp_path):
    """A block's two-turn conversations are stored as a flag and rebuilt; every other
    conversation (more turns, other roles or texts, none) is stored as it is; whole reads,
    column reads, views and the SQL of `recipe explain` all see the rows written."""
    import duckdb
    import numpy as np
    from recipe.engine.ray_blocks import paste_block, read_block, write_atomic
    from recipe.engine.ray_store import _block_sql
    msg = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))

    def conv(*turns):
        return [{"role": r, "content": c} for r, c in turns]
    rows = [("a", "x", conv(("user", "a"), ("assistant", "x"))),
            ("b", "y", conv(("user", "b"), ("assistant", "y"), ("user", "more"))),
            ("c", "z", conv(("assistant", "z"), ("user", "c"))),
            ("d", "w", None),
            ("e", "v", conv(("user", "e"), ("assistant", "other"))),
            (None, "u", conv(("user", None), ("assistant", "u"))),
            ("f", "t", conv(("user", "f"), ("assistant", "t")))]
    tbl = pa.table({"_id": [f"s:{i}" for i in range(len(rows))], "messages": pa.array([r[2] for r in rows], msg),
                    "instruction": [r[0] for r in rows], "response": [r[1] for r in rows],
                    "_row": list(range(len(rows)))})
    (tmp_path / "t_a").mkdir()
    (tmp_path / "t_b").mkdir()
    src = str(tmp_path / "t_a" / "00000000.parquet")
    write_atomic(tbl, src)
    assert pq.read_table(src).column("__two_turns").to_pylist() == [True, False, False, False, False, False, True]
    assert read_block(src).equals(tbl)
    assert read_block(src, ["messages", "_id"]).equals(tbl.select(["messages", "_id"]))
    view = str(tmp_path / "t_b" / "00000000.parquet")
    keep = np.array([1, 1, 0, 1, 0, 1, 1], dtype=bool)
    paste_block(src, view, str(tmp_path / "aside.parquet"), keep, None, "x")
    assert read_block(view).equals(tbl.filter(pa.array(keep)))
    for f, want in ((src, tbl), (view, tbl.filter(pa.array(keep)))):
        assert duckdb.sql(_block_sql(f)).to_arrow_table().to_pylist() == want.to_pylist()


def test_a_ray_client_server_that_fails_to_start_once_is_tried_again(monkeypatch):
    import ray
    from recipe.engine import ray_store
    calls = []

    def init(**kw):
        calls.append(kw["address"])
        if len(calls) == 1:  # what the head's proxier says when the server it starts for a client fails
            raise ConnectionError("Initialization failure from server:\nRuntimeError: Starting Ray client server failed.")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray_store.time, "sleep", lambda s: None)
    monkeypatch.setattr(ray_store, "_reachable", lambda address: None)  # no head here: its port answers nothing
    ray_store.start_ray("ray://127.0.0.1:1")
    assert calls == ["ray://127.0.0.1:1"] * 2

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

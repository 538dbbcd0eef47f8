"""How the Ray engine's blocks sit on disk; every read and write of a block goes through here.

A block is a Parquet file of a step's rows, with two savings the DuckDB engine makes too:
- a row whose conversation is just its instruction and response (every Alpaca row) stores
  `messages` as null and a true `__two_turns` flag; reads rebuild it (`read_block`), so
  each text is written and read once, not twice;
- a step that only drops rows writes a view instead of copying the rows it keeps: a small file
  of their positions in a base block (`write_view`; a view of a view points at the base), as
  the DuckDB engine stores a mask.
Files are written under a temporary name and renamed, so a retried task writes the same files.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..io.arrow_alpaca import TWO

VIEW_OF = b"recipe.view_of"  # a view block's metadata: its base block, relative to the cache
CONVERSATION = ("messages", "instruction", "response")


def _resolve(src: str) -> tuple[str, np.ndarray | None, pa.Schema]:
    """(the file holding the rows, the view's positions in it or None, that file's schema)."""
    schema = pq.read_schema(src)
    meta = schema.metadata or {}
    if VIEW_OF not in meta:
        return src, None, schema
    base = str(Path(src).parent.parent / meta[VIEW_OF].decode())
    return base, pq.read_table(src).column(0).to_numpy(), pq.read_schema(base)


def read_block(src: str, columns: list[str] | None = None) -> pa.Table:
    """A block's rows (only `columns`, when given): a view's resolved, conversations rebuilt."""
    path, pos, schema = _resolve(src)
    want = list(columns) if columns is not None else [c for c in schema.names if c != TWO]
    rebuild = TWO in schema.names and "messages" in want
    tbl = pq.read_table(path, columns=list(dict.fromkeys(want + (list(CONVERSATION) + [TWO] if rebuild else []))))
    if pos is not None:
        tbl = tbl.take(pa.array(pos, pa.int64()))
    if rebuild:
        tbl = tbl.set_column(tbl.column_names.index("messages"), "messages", _rebuilt(tbl))
    return tbl.select(want)


def block_schema(src: str) -> pa.Schema:
    schema = _resolve(src)[2]
    return schema.remove(schema.get_field_index(TWO)) if TWO in schema.names else schema


def block_rows(src: str) -> int:
    return pq.ParquetFile(src).metadata.num_rows  # a view has a row per position


def write_view(src: str, keep: np.ndarray, out: str) -> int:
    """`out` as the rows of block `src` where `keep` is true: positions in `src`'s base
    block (a view of a view is a view of the base), no rows copied."""
    base, pos, _ = _resolve(src)
    pos = np.flatnonzero(keep) if pos is None else pos[keep]
    rel = os.path.relpath(base, Path(out).parent.parent)
    tbl = pa.table({"__pos": pa.array(pos, pa.int64())}).replace_schema_metadata({VIEW_OF: rel.encode()})
    _write(tbl, out)
    return len(pos)


def write_atomic(tbl: pa.Table, path: str) -> None:
    """A block of rows (two-turn conversations stored as the flag) or any other table."""
    _write(_compact(tbl), path)


def _write(tbl: pa.Table, path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    pq.write_table(tbl, tmp)
    os.replace(tmp, path)


def link_atomic(src: str, path: str) -> None:
    """`path` as the same file as `src` (a hard link; a copy across file systems): for a
    block that a step passes through unchanged, instead of encoding it again."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, path)


def _compact(tbl: pa.Table) -> pa.Table:
    """Rows whose conversation is [user: instruction, assistant: response] get null
    `messages` and the flag (appended last); a table that has the flag already (the read's
    fast path), or no such row, is written as it is."""
    if TWO in tbl.column_names or not set(CONVERSATION) <= set(tbl.column_names) or not tbl.num_rows:
        return tbl
    two = two_turns(tbl)
    if not two.any():
        return tbl
    m = tbl.column("messages").combine_chunks()
    tbl = tbl.set_column(tbl.column_names.index("messages"), "messages",
                         pc.if_else(pa.array(~two), m, pa.nulls(len(two), m.type)))
    return tbl.append_column(TWO, pa.array(two))


def two_turns(tbl: pa.Table) -> np.ndarray:
    """Which rows' conversation is exactly [user: instruction, assistant: response] (what
    the DuckDB engine's TWO_TURNS compares)."""
    m = tbl.column("messages").combine_chunks()
    lens = pc.fill_null(pc.list_value_length(m), 0).to_numpy(zero_copy_only=False)
    ok = lens == 2
    if not ok.any():
        return ok
    flat = pc.list_flatten(m)  # null lists hold no turns: each row's turns start at its lens' sum
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    first = pa.array(np.where(ok, starts, 0))
    second = pa.array(np.where(ok, starts + 1, 0))
    roles, contents = pc.struct_field(flat, "role"), pc.struct_field(flat, "content")

    def same(a, b) -> np.ndarray:
        return pc.fill_null(pc.equal(a, b), False).to_numpy(zero_copy_only=False)
    return (ok & same(roles.take(first), "user") & same(roles.take(second), "assistant")
            & same(contents.take(first), tbl.column("instruction").combine_chunks())
            & same(contents.take(second), tbl.column("response").combine_chunks()))


def _rebuilt(tbl: pa.Table) -> pa.Array:
    """`messages` with each flagged row's two turns built from its instruction and response."""
    m = tbl.column("messages").combine_chunks()
    two = pc.fill_null(tbl.column(TWO).combine_chunks(), False)
    return pc.if_else(two, two_turn_lists(tbl.column("instruction"), tbl.column("response"), m.type), m)


def two_turn_lists(instruction, response, typ: pa.DataType) -> pa.Array:
    """[user: instruction, assistant: response] for every row, as `typ`."""
    n = len(instruction)
    turns = np.empty(2 * n, dtype=np.int64)
    turns[0::2], turns[1::2] = np.arange(n), np.arange(n, 2 * n)
    contents = pa.concat_arrays([pa.chunked_array(instruction).combine_chunks().cast(pa.string()),
                                 pa.chunked_array(response).combine_chunks().cast(pa.string())]).take(pa.array(turns))
    roles = pa.array(np.tile(np.array(["user", "assistant"], dtype=object), n), pa.string())
    return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)),
                                    pa.StructArray.from_arrays([roles, contents], ["role", "content"])).cast(typ)

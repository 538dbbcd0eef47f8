"""What a Ray worker does to one block of a step's table (engine/ray_table.py sends it).

A block is one Parquet file of rows in the table's order, the engine's `_row` column last, or
a view of another step's block (`ray_block_io.py`: every read and write goes through it).
Each function reads its input block, writes its output block and its set-aside block under
names the driver chose (written to a temporary name, then renamed: a task that Ray retries
after its worker died writes the same files again), and returns small counts.

Row expressions (filter, derive) run through the DuckDB engine's own `Output` on a private
in-memory connection, so the SQL that decides a row is the same on both engines; moves by
position (keep, add columns, concatenate) are Arrow alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .ray_block_io import (VIEW_OF, block_rows, block_schema, link_atomic, read_block, write_atomic,  # noqa: F401
                           write_view)

ROW = "_row"
ASIDE_SCHEMA = pa.schema([("_id", pa.string()), ("reason", pa.string()), ("raw", pa.string())])


def aside_table(ids, reasons, raw=None) -> pa.Table:
    n = len(ids)
    return pa.table({"_id": pa.array(ids, pa.string()), "reason": pa.array(reasons, pa.string()),
                     "raw": pa.array(raw if raw is not None else [None] * n, pa.string())}, schema=ASIDE_SCHEMA)


def _connect():
    import duckdb
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_external_access = false")  # as the DuckDB engine: rows come as Arrow only
    from .sql import register_functions
    register_functions(con)
    return con


def sql_block(src: str, out: str, aside: str, how: str, args: tuple, params: dict, fault: str | None = None) -> int:
    """`filter` (cond, reason, null_reason) or `derive` (columns, cast) on one block, by the DuckDB
    engine's Output; returns the rows written. A filter that keeps every row of a block
    (found reading only its condition's columns) links the block instead."""
    from ..faults import fault_once
    fault_once("ray:worker", fault, Path(out).parent.parent / f".killed-{Path(out).parent.name}")
    if how == "filter" and _keeps_whole(src, *args, params=params):
        link_atomic(src, out)
        write_atomic(aside_table([], []), aside)
        return block_rows(src)
    con = _connect()
    try:
        res, gone = _run(con, read_block(src), how, args, params)
        write_atomic(res, out)
        write_atomic(gone, aside)
        return res.num_rows
    finally:
        con.close()


def _run(con, tbl: pa.Table, how: str, args: tuple, params: dict) -> tuple[pa.Table, pa.Table]:
    """(the step's rows, the rows it set aside) of `how` over a table, on `con`."""
    from .duck import DuckOutput, DuckTable
    from .tables import ASIDE_DDL, arrow_of
    con.register("s", tbl)  # read in place, not copied into a table
    con.execute(f"CREATE TABLE a {ASIDE_DDL}")
    o = DuckOutput(con, "o", "a", params)
    getattr(o, how)(DuckTable(con, "s"), *args)
    res = _row_last(arrow_of(con.execute("SELECT * FROM o")))
    return res, con.execute("SELECT _id, reason, raw FROM a").to_arrow_table().cast(ASIDE_SCHEMA)


def _keeps_whole(src: str, cond, reason: str, null_reason: str | None = None, *, params: dict) -> bool:
    """Whether a filter gives a block back as it is: its condition holds on every row (only
    the columns it names are read), and its output has the block's own schema (the filter
    run on an empty copy)."""
    import duckdb
    from ..syntax import base_column, expr_columns
    from .duck import table_types
    from .sql import condition_sql
    schema = block_schema(src)
    conds = cond if isinstance(cond, tuple) else (cond,)
    need = sorted({base_column(c.name, schema.names) for e in conds for c in expr_columns(e)})
    if not need or not set(need) <= set(schema.names):
        return False
    con = _connect()
    try:
        if not _run(con, schema.empty_table(), "filter", (cond, reason, null_reason), params)[0].schema.equals(schema):
            return False
        con.register("p", read_block(src, need))
        types = table_types(con, "p")
        parts = [condition_sql(e, params, types) for e in conds]
        sql = " AND ".join(f"({s})" for s, _ in parts)
        try:
            return con.execute(f"SELECT count(*) FROM p WHERE NOT coalesce({sql}, false)",
                               [b for _, bs in parts for b in bs]).fetchone()[0] == 0
        except duckdb.Error:  # the translation needs a column the condition does not name: the full path
            return False
    finally:
        con.close()


def paste_block(src: str, out: str, aside: str, keep: np.ndarray | None, why: list | None, default: str,
                extra: pa.Table | None = None, row_base: int | None = None, schema: pa.Schema | None = None,
                fault: str | None = None) -> int:
    """The rows of a block where `keep` is true (all when None), with `extra`'s columns
    appended (a same-named column is replaced and moves to the end, as in the DuckDB
    engine), renumbered from `row_base` when given and conformed to `schema` when given
    (concatenation: missing columns null, in the output's column order); the other rows
    set aside with `why[i]` or `default`."""
    from ..faults import fault_once
    fault_once("ray:worker", fault, Path(out).parent.parent / f".killed-{Path(out).parent.name}")
    if keep is None and extra is None and row_base is None and schema is None:
        link_atomic(src, out)  # the block passes through unchanged
        write_atomic(aside_table([], []), aside)
        return block_rows(src)
    if extra is None and row_base is None and schema is None:  # rows dropped, nothing else
        mask = np.asarray(keep, dtype=bool)
        gone = np.flatnonzero(~mask)
        ids = read_block(src, ["_id"]).column(0).take(pa.array(gone, pa.int64())).to_pylist() if len(gone) else []
        write_atomic(aside_table(ids, [(why[i] if why is not None and why[i] is not None else default) for i in gone]),
                     aside)
        return write_view(src, mask, out)
    tbl = read_block(src)
    n = tbl.num_rows
    if extra is not None:
        for c in extra.column_names:
            if c in tbl.column_names:
                tbl = tbl.drop_columns([c])
        rows = tbl.column(ROW)
        tbl = tbl.drop_columns([ROW])
        for c in extra.column_names:
            tbl = tbl.append_column(c, extra.column(c))
        tbl = tbl.append_column(ROW, rows)
    mask = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    kept = tbl.filter(pa.array(mask)) if not mask.all() else tbl
    if row_base is not None:
        kept = kept.set_column(kept.column_names.index(ROW), ROW,
                               pa.array(np.arange(row_base, row_base + kept.num_rows, dtype=np.int64)))
    if schema is not None:
        kept = conform(kept, schema)
    write_atomic(kept, out)
    gone = np.flatnonzero(~mask)
    ids = tbl.column("_id").take(pa.array(gone, pa.int64())).to_pylist() if len(gone) else []
    write_atomic(aside_table(ids, [(why[i] if why is not None and why[i] is not None else default) for i in gone]), aside)
    return kept.num_rows


def take_block(src: str, aside: str, keep: np.ndarray, why: list | None, default: str, positions: np.ndarray) -> pa.Table:
    """A re-ranking keep's share of one block: the rows at `positions` (returned, for the
    driver to put in rank order) and the rows not kept, set aside."""
    tbl = read_block(src)
    gone = np.flatnonzero(~np.asarray(keep, dtype=bool))
    ids = tbl.column("_id").take(pa.array(gone, pa.int64())).to_pylist() if len(gone) else []
    write_atomic(aside_table(ids, [(why[i] if why is not None and why[i] is not None else default) for i in gone]), aside)
    return tbl.take(pa.array(positions, pa.int64()))


def conform(tbl: pa.Table, schema: pa.Schema) -> pa.Table:
    """`tbl` with `schema`'s columns, in its order: missing ones null, others converted
    (`widen.converted`)."""
    from .widen import column_in, converted
    cols = []
    for f in schema:
        col = column_in(tbl, f.name)  # in any case, as the schema was unified
        cols.append(converted(col, f.type) if col is not None else pa.nulls(tbl.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _row_last(tbl: pa.Table) -> pa.Table:
    if tbl.column_names[-1] == ROW:
        return tbl
    r = tbl.column(ROW)
    return tbl.drop_columns([ROW]).append_column(ROW, r)


def apply_block(fn, src: str, cols: list[str], args: tuple):
    """A kernel's row-local function on one block's columns (Table.map_blocks)."""
    return fn(read_block(src, cols), *args)


SHARE_BYTES = 1 << 20  # arrays this large reach a global step's pieces through the object store


class Shared:
    """An argument of a global step's piece that is in the object store (`ray_map`)."""

    def __init__(self, ref):
        self.ref = ref


def apply_args(fn, args: tuple):
    """One piece of a global step (KernelContext.pmap)."""
    import ray
    return fn(*(ray.get(v.ref) if isinstance(v, Shared) else v for v in args))


# ---- exact dedupe: a hash shuffle --------------------------------------------------------
def key_block(src: str, on: str, keep: str, parts: int) -> list[pa.Table] | pa.Table:
    """Map side: each row's `_row`, `_id`, a hash of its normalised key (as the DuckDB
    engine's `distinct`) and its rank value, split into `parts` partitions by the hash (no
    text leaves the worker)."""
    from ..table import keyed_block, source_column
    from .duck import _rank_cols
    from .sql import text_sql
    # only the columns the key and the rank read (not every text of the block)
    need = {source_column(on), ROW, "_id"} | ({keep.split(":", 1)[1]} if ":" in keep else set())
    tbl = read_block(src, [c for c in block_schema(src).names if c in need])
    con = _connect()
    try:
        con.register("s", tbl)
        con.register("k", keyed_block(tbl.select([source_column(on), ROW]), on))
        text = text_sql(on)
        t = con.execute(f"SELECT __r, __id, __hi, __lo{', __len' if keep == 'longest' else ', __v' if ':' in keep else ''}, "
                        f"__lo % {int(parts)} AS __p FROM (SELECT s.{ROW} AS __r, s._id AS __id, "
                        f"k.__hi, k.__lo{_rank_cols(keep, text)} FROM s POSITIONAL JOIN k)").to_arrow_table()
    finally:
        con.close()
    ids = t.column("__p").to_numpy(zero_copy_only=False)
    t = t.drop_columns(["__p"])
    if parts == 1:  # one return value: the table itself
        return t
    return [t.filter(pa.array(ids == p)) for p in range(parts)]


def winners(on: str, keep: str, *parts: pa.Table) -> pa.Table:
    """Reduce side: one partition's rows -> (`__r`, `__keep`, `__why`), the first row of
    each key (by `keep`'s order, ties to the earlier row) kept, as the DuckDB engine decides."""
    tbl = pa.concat_tables(parts)
    if keep == "first":
        rank = "__r"
    elif keep == "longest":
        rank = "__len DESC, __r"
    else:
        rank = f"__v {'DESC' if keep.startswith('max:') else 'ASC'} NULLS LAST, __r"
    from ..table import empty_key
    ehi, elo = empty_key()
    con = _connect()
    try:
        con.register("p", tbl)
        return con.execute(f"SELECT __r, __n = 1 AS __keep, CASE WHEN __n > 1 THEN 'duplicate of ' || __win || ? END "
                           f"AS __why, __e AS __empty FROM (SELECT __r, (__hi = ?::UBIGINT AND __lo = ?::UBIGINT) AS __e, "
                           f"first_value(__id) OVER (PARTITION BY __hi, __lo ORDER BY {rank}) AS __win, "
                           f"row_number() OVER (PARTITION BY __hi, __lo ORDER BY {rank}) AS __n FROM p) ORDER BY __r",
                           [f" (exact on {on})", ehi, elo]).to_arrow_table()
    finally:
        con.close()


def block_name(i: int) -> str:
    return f"{i:08d}.parquet"


def files_of(d: Path) -> list[str]:
    return sorted(str(p) for p in Path(d).glob("*.parquet"))

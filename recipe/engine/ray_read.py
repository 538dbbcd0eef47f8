"""The Ray engine's read step. Each file of a folder (or glob), each byte span of one large
JSON-lines file, or each run of row groups of one large Parquet file, is read by its own task
with the DuckDB engine's reader into Parquet blocks: on a cluster the read spreads over the
workers (the files must be where the workers can read them, as the cache directory must). An
`id=` column, same-named files in two folders, a file the fast path does not read, or pieces
whose columns come out different are read on the driver instead: there the one reader sees
every row, which checking ids across files and widening one piece's columns by another's need."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from . import ray_blocks as rb

FILE_ROWS = 40  # a piece's rows number `_row` from its index << FILE_ROWS: increasing, not dense
SPAN_BYTES = 128 << 20


class _Ctx:
    """What the reader asks of a KernelContext, inside a task."""

    def __init__(self):
        self.info: dict = {}

    def progress(self, done, total) -> None:
        pass


def scratch_connection(path: Path | None, spill: Path):
    """A DuckDB database for one read, on disk at `path` or in memory (None); either spills
    to `spill` past its memory limit."""
    import duckdb
    from .tables import ASIDE_DDL
    if path is not None:
        path.unlink(missing_ok=True)
    con = duckdb.connect(str(path) if path is not None else ":memory:")
    con.execute("SET temp_directory = ?", [str(spill)])
    con.execute("SET memory_limit = ?", [os.environ.get("RECIPE_DUCKDB_MEMORY") or "1GB"])
    con.execute("SET preserve_insertion_order = true")
    con.execute(f"CREATE TABLE a {ASIDE_DDL}")
    return con


def read_on_driver(store, fp: str, ctx, source: str, args: dict, log) -> None:
    """The DuckDB engine's reader (same rows, ids and set-aside reasons) into a scratch
    database, then cut into blocks."""
    from .read import read_source
    scratch = store.dir / f"scratch_{fp[:24]}.duckdb"
    con = scratch_connection(scratch, store.dir / "spill")
    try:
        read_source(con, "t", "a", ctx, source, args, log)
        _blocks(con, store._t(fp), "", 0, store.block_rows, keep_empty=True)
        rb.write_atomic(con.execute("SELECT _id, reason, raw FROM a").to_arrow_table().cast(rb.ASIDE_SCHEMA),
                        str(store._a(fp) / "0000-00000000.parquet"))
    finally:
        con.close()
        scratch.unlink(missing_ok=True)
        shutil.rmtree(store.dir / "spill", ignore_errors=True)


def _blocks(con, outdir: Path, prefix: str, row_base: int, block_rows: int, keep_empty: bool) -> tuple[int, pa.Schema]:
    """Table `t` as blocks `<prefix><i>.parquet`, `_row` shifted by `row_base`."""
    from .tables import arrow_batches, arrow_of
    n, i = 0, 0
    for tbl in arrow_batches(con.execute("SELECT * FROM t"), block_rows):
        if row_base:
            at = tbl.column_names.index(rb.ROW)
            tbl = tbl.set_column(at, rb.ROW, pc.add(tbl.column(at), pa.scalar(row_base, pa.int64())))
        rb.write_atomic(tbl, str(outdir / f"{prefix}{rb.block_name(i)}"))
        n, i = n + tbl.num_rows, i + 1
    empty = arrow_of(con.execute("SELECT * FROM t LIMIT 0"))
    if i == 0 and keep_empty:
        rb.write_atomic(empty, str(outdir / f"{prefix}{rb.block_name(0)}"))
    return n, empty.schema


def spans(path: Path, pieces: int) -> list[tuple[int, int]]:
    """About `pieces` byte ranges of a file, each ending where a line does."""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, pieces):
            fh.seek(max(size * k // pieces, cuts[-1]))
            if fh.tell() > 0:
                fh.seek(fh.tell() - 1)  # a cut just after a newline stays there
            fh.readline()
            cuts.append(min(fh.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def count_span(path: str, start: int, end: int) -> tuple[int, int]:
    """(lines, rows) in bytes [start, end): rows are the non-blank lines, as readers count."""
    from ..io.arrow_alpaca import Lines, blocks
    lines = rows = 0
    for buf, starts, ends in blocks(Path(path), (start, end)):
        lines += len(ends)
        rows += Lines(buf, starts, ends).rows()
    return lines, rows


def read_piece(piece: tuple, args: dict, source: str, index: int, work: str, block_rows: int):
    """A task: a piece of the source, ("file", path) of a folder or ("span", path, format,
    span) of one file (engine/read.py's `read_range`), into blocks under `work/<index>/` and
    its set-aside records (unreadable ones, then rows the table could not hold) beside them.
    Returns (rows, the table's schema, the reader's log lines)."""
    from .read import read_range, read_source
    d = Path(work) / f"{index:06d}"
    shutil.rmtree(d, ignore_errors=True)  # a retried task starts over
    d.mkdir(parents=True)
    lines: list[str] = []
    if piece[0] == "span" and not isinstance(piece[3][0], list):  # a JSON-lines span
        _, path, fmt, span = piece
        from ..io.arrow_alpaca import chunks
        from ..io.arrow_formats import canon_for
        got = direct_blocks(chunks(Path(path), f"{source}:", canon_for(fmt), span=span),
                            d, index << FILE_ROWS, block_rows)
        if got is not None:
            for k in (0, 1):
                rb.write_atomic(rb.ASIDE_SCHEMA.empty_table(), str(d / f"aside{k}.parquet"))
            return got[0], got[1], lines
        shutil.rmtree(d)
        d.mkdir(parents=True)
    # in memory: a piece is at most a file of a folder or a span; past the memory limit it
    # spills (a database file cost a write and a checkpoint of every row)
    con = scratch_connection(None, d / "spill")
    try:
        if piece[0] == "file":
            rejected = read_source(con, "t", "a", _Ctx(), source, args, lambda m, *a, **k: lines.append(m),
                                   files=[Path(piece[1])], multi=True)
        else:
            _, path, fmt, span = piece
            rejected = read_range(con, "t", "a", _Ctx(), source, Path(path), fmt, span)
        n, schema = _blocks(con, d, "b", index << FILE_ROWS, block_rows, keep_empty=False)
        aside = con.execute("SELECT _id, reason, raw FROM a").to_arrow_table().cast(rb.ASIDE_SCHEMA)
        cut = aside.num_rows - rejected
        rb.write_atomic(aside.slice(0, cut), str(d / "aside0.parquet"))
        rb.write_atomic(aside.slice(cut), str(d / "aside1.parquet"))
    finally:
        con.close()
        shutil.rmtree(d / "spill", ignore_errors=True)
    return n, schema, lines


def direct_blocks(parts, d: Path, row_base: int, block_rows: int) -> tuple[int, pa.Schema] | None:
    """Arrow's fast-path chunks `parts` (`arrow_alpaca.chunks`) straight into blocks
    `b<i>.parquet`, with the columns and types the scratch database gives them; None as
    soon as a chunk needs the reader's rules or brings other columns than the first (the
    caller then reads the piece through the database). It skips the database's insert and
    export (with the conversation flag, a 111k-row span's task took 1.4 s instead of 1.65 s)."""
    schema, names, held, n, i = None, None, [], 0, 0

    def flush(upto: int) -> None:
        nonlocal held, i
        tbl = pa.concat_tables(held)
        while tbl.num_rows >= upto and tbl.num_rows:
            rb.write_atomic(tbl.slice(0, block_rows), str(d / f"b{rb.block_name(i)}"))
            tbl, i = tbl.slice(block_rows), i + 1
        held = [tbl] if tbl.num_rows else []

    for kind, tbl, *_ in parts:
        if kind != "arrow":
            return None
        if schema is None:
            names, schema = tbl.schema, _stored_schema(tbl)
        elif tbl.schema != names:
            return None
        held.append(_stored(tbl, row_base + n, schema))
        n += tbl.num_rows
        if sum(t.num_rows for t in held) >= block_rows:
            flush(block_rows)
    if held:
        flush(1)
    return n, schema if schema is not None else pa.schema([])


def _stored_schema(tbl: pa.Table) -> pa.Schema:
    """The columns and types of a canonical chunk as the scratch database stores and
    exports them (RowWriter, then `SELECT *`)."""
    con = scratch_connection(None, Path(os.devnull))
    try:
        from .tables import RowWriter, arrow_of
        w = RowWriter(con, "t")
        w.add_arrow(tbl.slice(0, 1))
        w.close()
        return arrow_of(con.execute("SELECT * FROM t LIMIT 0")).schema
    finally:
        con.close()


def _stored(tbl: pa.Table, first_row: int, schema: pa.Schema) -> pa.Table:
    """A canonical chunk as a block stores it: `_row` numbered from `first_row`, types cast
    to `schema`, conversations marked as two turns left null with their flag after `_row`
    (ray_block_io.py rebuilds them on reading)."""
    import numpy as np
    from ..io.arrow_alpaca import TWO
    two = tbl.column(TWO) if TWO in tbl.column_names else None
    tbl = tbl.drop_columns([TWO]) if two is not None else tbl
    tbl = tbl.append_column(rb.ROW, pa.array(np.arange(first_row, first_row + tbl.num_rows, dtype=np.int64)))
    tbl = tbl.cast(schema)
    return tbl.append_column(TWO, two) if two is not None else tbl


def pieces_of(store, source: str, args: dict, files: list[Path], log) -> list[tuple] | None:
    """How the read splits into tasks, when the source is larger than `RECIPE_RAY_READ_BYTES`
    (128 MB by default): a folder's files one each; one large JSON-lines file in
    a fast-path format into byte spans of that size,
    counted first (in tasks) so that each span knows its first line and row; one large Parquet
    file of rows in a fast-path format into runs of row groups; else None."""
    if args.get("id") or args.get("head") or len({f.name for f in files}) != len(files):
        return None  # (the first `head` records are a sequence: one task reads them)
    step = int(os.environ.get("RECIPE_RAY_READ_BYTES") or SPAN_BYTES)
    size = sum(f.stat().st_size for f in files)
    if size <= step:  # a task's start-up (a scratch database, Parquet writes) would cost more
        return None
    if len(files) > 1:
        return [("file", str(f)) for f in files]
    from .read import _fast, _fast_parquet
    f = files[0]
    from ..io.readers import is_compressed
    if is_compressed(f):  # a compressed stream cannot be entered midway: read whole
        return None
    if f.suffix.lower() == ".parquet":
        got = _fast_parquet(f, args, source, log)
        return _row_groups(*got, str(f), -(-size // step)) if got is not None else None
    if not (fmt := _fast(f, args, source, log)):
        return None
    cut = spans(f, -(-size // step))
    if len(cut) < 2:
        return None
    counted = store.pmap(count_span, [(str(f), a, b) for a, b in cut])
    out, lineno, idx = [], 1, 0
    for (a, b), (n_lines, n_rows) in zip(cut, counted):
        out.append(("span", str(f), fmt, (a, b, lineno, idx)))
        lineno, idx = lineno + n_lines, idx + n_rows
    return out


def _row_groups(pf, fmt: str, path: str, pieces: int) -> list[tuple] | None:
    """A Parquet file's row groups dealt into about `pieces` runs of consecutive groups, each
    with its first row index (from the file's metadata: nothing is read)."""
    meta = pf.metadata
    n = meta.num_row_groups
    if n < 2:
        return None
    per = -(-n // min(pieces, n))
    out, idx = [], 0
    for g in range(0, n, per):
        groups = list(range(g, min(g + per, n)))
        out.append(("span", path, fmt, (groups, idx)))
        idx += sum(meta.row_group(k).num_rows for k in groups)
    return out if len(out) > 1 else None


def read_in_tasks(store, fp: str, ctx, source: str, args: dict, pieces: list[tuple], log) -> bool:
    """Read the pieces in tasks, one each; False (nothing written) when their tables do not
    share their columns and types, so that the driver reads them together."""
    work = store.dir / f"read_{fp[:24]}"
    shutil.rmtree(work, ignore_errors=True)
    from .ray_table import ray_map
    rows = 0

    def done(result) -> None:  # progress: rows read so far, as each piece finishes
        nonlocal rows
        rows += result[0]
        ctx.progress(rows, None)
    try:
        got = ray_map(read_piece, [(p, args, source, i, str(work), store.block_rows)
                                   for i, p in enumerate(pieces)], on_done=done)
        schemas = {s.remove_metadata() for n, s, _ in got if n}
        if len(schemas) > 1:
            log(f"  {source}: its pieces' columns differ; reading them together on the driver")
            return False
        from .read import collapse_detected
        for m in collapse_detected([m for _, _, lines in got for m in lines]):
            log(m)
        k = 0
        out, aside = store._t(fp), store._a(fp)
        for i in range(len(got)):
            d = work / f"{i:06d}"
            for b in sorted(d.glob("b*.parquet")):
                os.replace(b, out / rb.block_name(k))
                k += 1
            os.replace(d / "aside0.parquet", aside / f"0-{i:06d}.parquet")  # unreadable records, in order,
            os.replace(d / "aside1.parquet", aside / f"1-{i:06d}.parquet")  # then rows the table refused
        if k == 0:  # no rows at all: one empty block with the (shared) columns
            rb.write_atomic(got[0][1].empty_table(), str(out / rb.block_name(0)))
        from .read import format_info
        ctx.info["format"] = format_info(args, [m for _, _, lines in got for m in lines],
                                         [p[2] for p in pieces if p[0] == "span"])
        ctx.info["files"] = len({p[1] for p in pieces})
        from .read import other_branches
        if other_branches([m for _, _, lines in got for m in lines]):
            ctx.info["other branches"] = other_branches([m for _, _, lines in got for m in lines])
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)


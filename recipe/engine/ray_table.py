"""The table interface (recipe/table.py) on Ray: a step's table is a folder of Parquet
blocks under the cache directory, and the work on blocks runs as Ray tasks.

Blocks are named in table order (00000000.parquet, ...) and carry the engine's `_row`
column (increasing in table order); kernels address rows by position, which this module
maps to (block, offset) from the blocks' row counts. Row-local steps (filter, derive, add
columns, keep in order, concatenate) run one task per block; exact dedupe is a hash
shuffle (a map task per block, a reduce task per partition); a kernel that needs whole
columns (dedupe by MinHash, select, fuse pairs) reads the compact columns it asks for on
the driver, which sees the cache directory (shared storage on a cluster).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..table import Output, Table, added_mask, concat_masks, kept_mask
from . import ray_blocks as rb

ROW = rb.ROW
_REMOTE: dict = {}


def remote(fn, **opts):
    """`fn` as a Ray task (made once per function); tasks whose worker dies are retried."""
    import ray
    k = (fn.__name__, tuple(sorted(opts.items())))
    if k not in _REMOTE:
        _REMOTE[k] = ray.remote(max_retries=4, **opts)(fn)
    return _REMOTE[k]


def gather(refs: list, on_done=None) -> list:
    """The tasks' results, in order. Every task has ended before an error is raised (a step's
    cleanup must not pull files from under tasks still running), and a user's error raised
    in a task (bad input named with its file) reaches the user as it was raised.
    `on_done(result)` is called as each task finishes well (for progress)."""
    import ray
    from ..diagnostics import UserError
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1 if on_done else len(pending), fetch_local=False)
        for d in done if on_done else ():
            try:
                r = ray.get(d)
            except Exception:  # raised below, once every task has ended
                continue
            on_done(r)
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as e:
        if isinstance(getattr(e, "cause", None), UserError):
            raise UserError(str(e.cause)) from None
        raise


def ray_map(fn, arglist: list, on_done=None) -> list:
    """KernelContext.pmap on Ray: independent pieces of a global step, one task each. An
    array that several pieces share (MinHash's signatures) goes to the object store once.
    `on_done(result)` as each piece finishes (see `gather`)."""
    import ray
    shared: dict[int, rb.Shared] = {}

    def share(v):
        if isinstance(v, np.ndarray) and v.nbytes >= rb.SHARE_BYTES:
            if id(v) not in shared:
                shared[id(v)] = rb.Shared(ray.put(v))
            return shared[id(v)]
        return v
    return gather([remote(rb.apply_args).remote(fn, tuple(share(v) for v in a)) for a in arglist], on_done)


class RayTable(Table):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.name
        self._files = None
        self._counts = None

    def files(self) -> list[str]:
        if self._files is None:
            self._files = rb.files_of(self.path)
        return self._files

    def block_counts(self) -> list[int]:
        if self._counts is None:
            self._counts = [rb.block_rows(f) for f in self.files()]
        return self._counts

    def schema(self) -> pa.Schema:
        return rb.block_schema(self.files()[0])

    def columns(self) -> list[str]:
        return [c for c in self.schema().names if c != ROW]

    def count(self) -> int:
        return sum(self.block_counts())

    def arrow(self, cols: Sequence[str]) -> pa.Table:
        if not cols:
            return pa.table({"__none": pa.nulls(self.count())})
        parts = [rb.read_block(f, list(cols)) for f in self.files()]
        return pa.concat_tables(parts, promote_options="permissive")

    def batches(self, cols: Sequence[str], size: int = 20_000) -> Iterator[pa.Table]:
        yield from self.range_batches(cols, size, 0, self.count())

    def range_batches(self, cols: Sequence[str], size: int, start: int, stop: int) -> Iterator[pa.Table]:
        """Only the blocks that hold rows start..stop-1 are read; batches of `size` rows across
        block bounds, the last one shorter (a Parquet sink's row groups follow them)."""
        offs = self.offsets()
        buf, n = [], 0
        for f, a, b in zip(self.files(), offs[:-1], offs[1:]):
            if b <= start or a >= stop:
                continue
            t = rb.read_block(f, list(cols) or None)
            buf.append(t.slice(max(start - a, 0), min(stop, b) - max(start, a)))
            n += buf[-1].num_rows
            if n >= size:
                t = pa.concat_tables(buf, promote_options="permissive")
                whole = t.num_rows - t.num_rows % size
                for i in range(0, whole, size):
                    yield t.slice(i, size)
                buf, n = ([t.slice(whole)], t.num_rows - whole) if t.num_rows > whole else ([], 0)
        if n:
            yield pa.concat_tables(buf, promote_options="permissive")

    def map_blocks(self, fn, cols, *args, size: int = 8192):
        """A task per block (reading only `cols`), results fetched in order."""
        import ray
        refs = [remote(rb.apply_block).remote(fn, f, list(cols), args) for f in self.files()]
        for r in refs:
            yield ray.get(r)

    def row_ids(self) -> np.ndarray:
        return self.arrow([ROW]).column(0).to_numpy()

    def minhash_labels(self, on, threshold, ngram, unit, num_perm, seed, pmap=None, progress=None):
        """Distributed: band keys shuffled to reducers, no signature matrix (ray_minhash.py)."""
        from .ray_minhash import minhash_labels
        return minhash_labels(self, on, threshold, ngram, unit, num_perm, seed, progress)

    def offsets(self) -> np.ndarray:
        """The position of each block's first row (and the row count, last)."""
        return np.concatenate([[0], np.cumsum(self.block_counts())]).astype(np.int64)


class RayOutput(Output):
    """Writes the step's blocks into `out` and its set-aside blocks into `aside`; set-aside
    blocks are named by the order of the calls that made them, then by block."""

    def __init__(self, out: Path, aside: Path, params: dict, block_rows: int):
        self.outdir, self.asidedir, self.params, self.block_rows = Path(out), Path(aside), params, block_rows
        self.made = False
        self._seq = itertools.count()
        # the crash tests' fault point, passed on to the workers (they do not share our environment)
        self.fault = os.environ.get("RECIPE_FAULT_INJECT")

    def _make(self) -> None:
        if self.made:
            raise RuntimeError("a kernel built its output twice")
        self.made = True

    def _aside_path(self, seq: int, i: int) -> str:
        return str(self.asidedir / f"{seq:04d}-{i:08d}.parquet")

    def _out_path(self, i: int) -> str:
        return str(self.outdir / rb.block_name(i))

    # ---- row expressions: the DuckDB engine's SQL, one task per block ---------------------
    def _sql(self, src: RayTable, how: str, args: tuple) -> None:
        self._make()
        seq = next(self._seq)
        fn = remote(rb.sql_block)
        gather([fn.remote(f, self._out_path(i), self._aside_path(seq, i), how, args, self.params, self.fault)
                for i, f in enumerate(src.files())])

    def filter(self, src, cond, reason, null_reason=None):
        self._sql(src, "filter", (cond, reason, null_reason))

    def derive(self, src, columns, cast=None):
        self._sql(src, "derive", (columns, cast))

    # ---- moves by position: masks cut at block bounds ------------------------------------
    def _paste(self, src: RayTable, keep: np.ndarray, why: list | None, default: str,
               extra: pa.Table | None = None, renumber_from: int | None = None, schema=None,
               first_block: int = 0) -> int:
        seq = next(self._seq)
        off = src.offsets()
        fn = remote(rb.paste_block)
        refs, base = [], renumber_from
        for i, f in enumerate(src.files()):
            a, b = int(off[i]), int(off[i + 1])
            k = keep[a:b]
            refs.append(fn.remote(f, self._out_path(first_block + i), self._aside_path(seq, first_block + i),
                                  None if k.all() else k, None if why is None else why[a:b], default,
                                  None if extra is None else extra.slice(a, b - a), base, schema, self.fault))
            if base is not None:
                base += int(k.sum())
        return sum(gather(refs))

    def add_columns(self, src, new, drop=None):
        self._make()
        if isinstance(new, pa.RecordBatchReader):  # the driver cuts the columns into the blocks' pieces
            new = new.read_all()
        keep, why = added_mask(src, new, drop)
        self._paste(src, keep, why, "not kept", extra=new.combine_chunks())

    def keep(self, src, positions, reasons):
        self._make()
        n = src.count()
        pos, mask, why, default, in_order = kept_mask(n, positions, reasons)
        if in_order:
            self._paste(src, mask, why, default)
            return
        # a ranking: each block returns its kept rows, the driver puts them in rank order
        seq = next(self._seq)
        off = src.offsets()
        fn = remote(rb.take_block)
        refs = []
        for i, f in enumerate(src.files()):
            a, b = int(off[i]), int(off[i + 1])
            local = np.sort(pos[(pos >= a) & (pos < b)]) - a
            refs.append(fn.remote(f, self._aside_path(seq, i), mask[a:b], None if why is None else why[a:b],
                                  default, local))
        taken = pa.concat_tables(gather(refs), promote_options="permissive")
        # taken holds the kept rows in table order; rank r's row is at index rank_of[r]
        ascending = np.sort(pos)
        taken = taken.take(pa.array(np.searchsorted(ascending, pos), pa.int64()))
        self._write_rows(taken.drop_columns([ROW]))

    def concat(self, srcs, keep=None, reasons=None):
        self._make()
        schema = _union_schema([s.schema() for s in srcs])
        at, block = 0, 0
        for t, (mask, why, default) in zip(srcs, concat_masks(srcs, keep, reasons)):
            at += self._paste(t, mask, why, default, renumber_from=at, schema=schema, first_block=block)
            block += len(t.files())
        if block == 0:  # no blocks at all: an empty table still has its columns
            rb.write_atomic(schema.empty_table(), self._out_path(0))

    def distinct(self, src, on, keep):
        """A hash shuffle: map tasks hash each block's normalised keys into partitions,
        reduce tasks pick each key's first row; the decisions come back as a mask."""
        self._make()
        import ray
        parts = max(1, min(len(src.files()), int(ray.available_resources().get("CPU", 1)) or 1))
        kfn = remote(rb.key_block, num_returns=parts) if parts > 1 else remote(rb.key_block)
        mapped = [kfn.remote(f, on, keep, parts) for f in src.files()]
        if parts == 1:
            mapped = [[m] for m in mapped]
        wfn = remote(rb.winners)
        decided = gather([wfn.remote(on, keep, *[m[p] for m in mapped]) for p in range(parts)])
        d = pa.concat_tables(decided)
        order = np.argsort(d.column("__r").to_numpy(), kind="stable")
        d = d.take(pa.array(order, pa.int64()))
        keep_mask = d.column("__keep").to_numpy(zero_copy_only=False).astype(bool)
        self.empty_keys = int(d.column("__empty").to_numpy(zero_copy_only=False).sum()) if d.num_rows else 0
        self._paste(src, keep_mask, d.column("__why").to_pylist(), "")
        return int(keep_mask.sum())

    # ---- new rows ---------------------------------------------------------------------
    def _write_rows(self, tbl: pa.Table) -> None:
        size = max(1, self.block_rows)
        tbl = tbl.append_column(ROW, pa.array(np.arange(tbl.num_rows, dtype=np.int64)))
        if tbl.num_rows == 0:
            rb.write_atomic(tbl, self._out_path(0))
        for i, s in enumerate(range(0, tbl.num_rows, size)):
            rb.write_atomic(tbl.slice(s, size), self._out_path(i))

    def rows(self, tbl):
        self._make()
        self._write_rows(tbl)

    def set_aside(self, items):
        if items:
            rb.write_atomic(rb.aside_table([i for i, _ in items], [r for _, r in items]),
                            self._aside_path(next(self._seq), 0))


def _union_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """Columns by name in first-seen order (`_row` last), types unified as the DuckDB engine
    does (`widen.py`)."""
    from .widen import unified_schema
    return pa.schema(list(unified_schema(schemas, skip=(ROW,)).items()) + [(ROW, pa.int64())])

"""The table interface: what an operator's kernel may do with rows, whatever engine holds them.

A kernel reads its inputs (`Table`: columns, a row count, whole columns as Arrow, in the
table's order) and builds its output through exactly one call on `Output` (filter by an
expression, add columns, keep rows by position, concatenate, exact distinct, or new rows),
plus any number of `set_aside` calls for rows it creates and then rejects. Rows are
addressed by position, 0..n-1 in the input's order; how an engine keeps that order (DuckDB:
an explicit `_row` column; Ray: block order) is its own business, and so is the accounting:
every input row the output does not keep is set aside with a reason.

An engine implements `Table` and `Output`; the kernel test suite (tests/test_kernels.py)
is what any engine must pass.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa

# An operator's kind tells an engine how it may run it: `relational` steps are expressions
# or row moves the engine runs itself; `map` steps are row-local (model-backed ones too) and
# may run on any partition of the rows; `global` steps need whole columns (dedupe, select,
# fuse pairs) and run where those columns can be gathered or by a distributed algorithm.
KINDS = ("relational", "map", "global")


class Table(ABC):
    """A step's input rows, in a fixed order."""

    name: str = ""

    @abstractmethod
    def columns(self) -> list[str]:
        """Column names, in order (never the engine's own bookkeeping columns)."""

    @abstractmethod
    def count(self) -> int:
        ...

    @abstractmethod
    def arrow(self, cols: Sequence[str]) -> pa.Table:
        """The given columns of every row, in order."""

    def batches(self, cols: Sequence[str], size: int = 20_000) -> Iterator[pa.Table]:
        """The given columns, `size` rows at a time, in order (for kernels that stream)."""
        t = self.arrow(cols)
        for s in range(0, t.num_rows, size):
            yield t.slice(s, size)

    def range_batches(self, cols: Sequence[str], size: int, start: int, stop: int) -> Iterator[pa.Table]:
        """`batches` of the rows at positions start..stop-1 (an engine that can seek overrides it)."""
        at = 0
        for b in self.batches(cols, size):
            lo, hi = max(start - at, 0), min(stop - at, b.num_rows)
            at += b.num_rows
            if hi > lo:
                yield b.slice(lo, hi - lo)
            if at >= stop:
                return

    def rows_between(self, start: int, stop: int) -> Table:
        """The rows at positions start..stop-1, as a table a writer streams (a sink's shard)."""
        return RowRange(self, start, stop)

    def map_blocks(self, fn: Callable, cols: Sequence[str], *args, size: int = 8192) -> Iterator:
        """`fn(block, *args)` for each block of the given columns (an Arrow table of
        consecutive rows), results in table order: row-local work a kernel wants spread over
        the engine's workers (Ray: a task per block; here: threads, which numpy and Arrow
        release the GIL for). `fn` must be a module-level function and its results must not
        depend on where blocks are cut."""
        from concurrent.futures import ThreadPoolExecutor
        import os
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            pending = []
            for b in self.batches(cols, size):
                pending.append(pool.submit(fn, b, *args))
                while len(pending) > 2 * workers:
                    yield pending.pop(0).result()
            for f in pending:
                yield f.result()

    def minhash_labels(self, on: str, threshold: float, ngram: int, unit: str, num_perm: int, seed: int,
                       pmap: Callable = None, progress: Callable = None) -> tuple[np.ndarray, list[int]]:
        """MinHash near-duplicate clusters of a text column: a label per row (the smallest
        position in its cluster) and each text's length. Here: blocks signed on the engine's
        workers (`map_blocks`) into one uint32 matrix (N x num_perm), LSH bands in `pmap`
        pieces (algorithms/minhash.py). An engine may run it distributed (Ray: band keys
        shuffled to reducers, no matrix anywhere); the labels must be these. `progress(done,
        total)` as rows are signed."""
        from .algorithms.minhash import signature_clusters
        n = self.count()
        sig = np.empty((n, num_perm), dtype=np.uint32)
        lengths, at = [], 0
        for s, ln in self.map_blocks(sign_block, [source_column(on)], on, ngram, unit, num_perm, seed):
            sig[at:at + len(s)] = s
            lengths += ln
            at += len(s)
            if progress:
                progress(at, n)
        if at != n:
            raise RuntimeError(f"minhash: {at} signatures for {n} rows")
        return signature_clusters(sig, threshold, pmap=pmap), lengths

    # ---- conveniences every engine gets for free -------------------------------------
    def column(self, name: str) -> list:
        return self.arrow([name]).column(0).to_pylist()

    def ids(self) -> list[str]:
        return self.column("_id")

    def rows(self) -> tuple[list[dict], pa.Schema]:
        """Every row as a dict (in order) and the schema: for kernels that rebuild rows."""
        t = self.arrow(self.columns())
        return t.to_pylist(), t.schema

    def texts(self, column: str) -> list[str]:
        """A text column as Python strings ("" for null); `conversation` is every turn as
        `role: content` lines; other values are rendered as text."""
        if column == "conversation":
            return ["\n".join(f"{m['role']}: {m['content']}" for m in (ms or [])) for ms in self.column("messages")]
        return [("" if v is None else v) for v in as_texts(self.arrow([column]).column(0))]

    def text_batches(self, column: str, size: int = 20_000) -> Iterator[list[str]]:
        """`texts(column)`, `size` rows at a time: for kernels that hold less than a column."""
        for b in self.batches([source_column(column)], size):
            yield block_texts(b, column, arrow=False)

    def text_arrays(self, column: str, size: int = 20_000) -> Iterator:
        """`text_batches`, but a text column comes as Arrow string arrays (null as ""),
        without making Python strings; other columns come as lists of str."""
        for b in self.batches([source_column(column)], size):
            yield block_texts(b, column)

    def strings(self, column: str) -> list[str | None]:
        """A column's values as text (null stays None): grouping keys, shown in reasons."""
        return as_texts(self.arrow([column]).column(0))

    def floats(self, column: str) -> np.ndarray:
        """A column as float64: numbers and numeric text as numbers, anything else NaN."""
        col = self.arrow([column]).column(0)
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
            import pyarrow.compute as pc
            return pc.fill_null(col.cast(pa.float64()), float("nan")).to_numpy(zero_copy_only=False).astype(np.float64)
        out = np.full(len(col), np.nan)
        for i, v in enumerate(col.to_pylist()):
            if isinstance(v, (int, float)):
                out[i] = float(v)
            elif isinstance(v, str):
                try:
                    out[i] = float(v)
                except ValueError:
                    pass
        return out


class RowRange(Table):
    """Consecutive rows of a table (`Table.rows_between`), read through its `range_batches`."""

    def __init__(self, table: Table, start: int, stop: int):
        self.table, self.start, self.stop = table, start, stop
        self.name = table.name

    def columns(self) -> list[str]:
        return self.table.columns()

    def count(self) -> int:
        return max(0, min(self.stop, self.table.count()) - self.start)

    def arrow(self, cols: Sequence[str]) -> pa.Table:
        parts = list(self.batches(cols))
        return pa.concat_tables(parts) if parts else self.table.arrow(cols).slice(0, 0)

    def batches(self, cols: Sequence[str], size: int = 20_000) -> Iterator[pa.Table]:
        yield from self.table.range_batches(cols, size, self.start, self.stop)


def source_column(column: str) -> str:
    """The stored column a text column is read from (`conversation` is built from `messages`)."""
    return "messages" if column == "conversation" else column


def block_texts(block: pa.Table, column: str, arrow: bool = True):
    """A block's texts of `column` (read from `source_column(column)`): an Arrow string
    array (null as "") for a text column when `arrow`, else a list of str; `conversation`
    is every turn as `role: content` lines."""
    col = block.column(0)
    if column == "conversation":
        return ["\n".join(f"{m['role']}: {m['content']}" for m in (ms or [])) for ms in col.to_pylist()]
    if arrow and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        import pyarrow.compute as pc
        return pc.fill_null(col.combine_chunks(), "")
    return [("" if v is None else v) for v in as_texts(col)]


def as_texts(col) -> list[str | None]:
    """An Arrow column's values as text (null stays None): `text_of` each value; in a JSON
    column a text is itself and any other value its JSON text, as row expressions read it."""
    if isinstance(col.type, pa.JsonType):
        return [v if v is None or v[:1] != '"' else json.loads(v) for v in col.to_pylist()]
    return [None if v is None else text_of(v) for v in col.to_pylist()]


def sign_block(block: pa.Table, on: str, ngram: int, unit: str, num_perm: int, seed: int):
    """One block's MinHash signatures and text lengths (`Table.minhash_labels`)."""
    import pyarrow.compute as pc
    from .algorithms.minhash import block_signatures
    texts = block_texts(block, on)
    lengths = pc.utf8_length(texts).to_pylist() if isinstance(texts, pa.Array) else [len(t) for t in texts]
    return block_signatures(texts, ngram, unit, num_perm, seed), lengths


def keyed_block(block: pa.Table, column: str) -> pa.Table:
    """Exact dedupe's keys of a block read as [source_column(column), `_row`] (`map_blocks`):
    (`__r`, `__hi`, `__lo`) = each row's `_row` and the 128-bit hash of its normalised text
    as two 64-bit halves (`normalised_keys`), so only 24 bytes a row leave the worker."""
    from .algorithms.shingles import normalised_keys
    hi, lo = normalised_keys(block_texts(block, column))
    # `_row` copied: a column of DuckDB's batch keeps the whole batch (its texts) alive
    rows = np.array(block.column(1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return pa.table({"__r": rows, "__hi": hi, "__lo": lo})


def empty_key() -> tuple[int, int]:
    """Exact dedupe's key of a text that normalises to nothing (empty or only whitespace)."""
    from .algorithms.shingles import normalised_keys
    hi, lo = normalised_keys([""])
    return int(hi[0]), int(lo[0])


def empty_keys(hi: np.ndarray, lo: np.ndarray) -> int:
    """How many of these keys are `empty_key()`'s."""
    ehi, elo = empty_key()
    return int(((hi == np.uint64(ehi)) & (lo == np.uint64(elo))).sum())


def first_of_keys(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """For rows keyed by 128-bit keys (two uint64 halves), each row's winner: the first
    position with its key. Sorted stably by the high half (one 64-bit sort, half a
    two-key sort's time), by both halves only if some rows share a high half but not the low."""
    n = len(hi)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(hi, kind="stable")
    hs, ls = hi[order], lo[order]
    same_hi = hs[1:] == hs[:-1]
    if np.any(same_hi & (ls[1:] != ls[:-1])):
        order = np.lexsort((lo, hi))  # stable too
        hs, ls = hi[order], lo[order]
        same_hi = hs[1:] == hs[:-1]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ~(same_hi & (ls[1:] == ls[:-1]))
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    winner = np.empty(n, dtype=np.int64)
    winner[order] = order[first]  # stable: a key's first entry in sorted order is its first row
    return winner


def text_of(v) -> str:
    """A value as text: text itself, booleans as true/false, numbers as written, nested
    values as JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


class Output(ABC):
    """One step's output, built by one of the `make` calls below (each on the step's own
    inputs), plus `set_aside` for rows the kernel created and rejected itself."""

    @abstractmethod
    def filter(self, src: Table, cond, reason: str, null_reason: str | None = None) -> None:
        """Rows of `src` where the row expression `cond` is true (null counts as false);
        the others are set aside with `reason`, or `null_reason` (when given) where `cond`
        is null rather than false. `cond` may be a tuple of conditions, all of which must
        hold, with `reason` and `null_reason` tuples of as many: a row set aside gets the
        reason of the first condition that is false, else of the first that is null."""

    @abstractmethod
    def derive(self, src: Table, columns: dict, cast: dict[str, str] | None = None) -> None:
        """`src` with columns added or replaced by row expressions (`cast`: name -> float|text).
        Deriving `instruction`/`response` rewrites the matching turn of `messages`, and
        those two are never null."""

    @abstractmethod
    def add_columns(self, src: Table, new: pa.Table | pa.RecordBatchReader, drop: dict[int, str] | None = None) -> None:
        """`src` plus (or with replaced) the columns of `new`, row for row; rows at the
        positions in `drop` are set aside with their reasons. `new` may be a reader of its
        batches in row order, which is read once, as it comes (a kernel that rewrites text
        then holds a batch of it, not the column)."""

    @abstractmethod
    def keep(self, src: Table, positions: Sequence[int], reasons: dict[int, str] | str) -> None:
        """The rows of `src` at `positions`, in that order; every other row is set aside
        with its reason (one string for all, or per position; `not kept` if missing)."""

    @abstractmethod
    def concat(self, srcs: Sequence[Table], keep: Sequence[Sequence[int] | None] | None = None,
               reasons: Sequence[str] | None = None) -> None:
        """The rows of each input (all, or those at `keep[i]` in ascending order, the
        others set aside with `reasons[i]`) one input after another, columns matched by
        name (missing ones null); a repeated `_id` is kept once, the first time."""

    @abstractmethod
    def distinct(self, src: Table, on: str, keep: str) -> int:
        """Exact dedupe: one row per normalised text of `on` (lower-cased, whitespace runs
        one space, trimmed); the first row wins, or by `keep` (longest, max:<col>,
        min:<col>; ties to the earlier row). Returns the number of groups, and sets
        `self.empty_keys`: how many rows' text normalised to nothing (one group)."""

    @abstractmethod
    def rows(self, tbl: pa.Table) -> None:
        """A new table of these rows: kernels that rebuild or create rows (fuse, format
        transfer). Input rows missing from it must have been set aside by the kernel."""

    @abstractmethod
    def set_aside(self, items: Sequence[tuple[str, str]]) -> None:
        """(_id, reason) of rows that leave the step."""


@dataclass
class KernelContext:
    """What a kernel sees while it runs: its output, the recipe's params and models, the
    shared model runtime, progress and the statistics it wants in the manifest."""
    out: Output
    step: str
    params: dict
    models: dict                # model name -> declaration {kind, source, options, identity}
    runtime_factory: Callable = None
    progress: Callable = lambda done, total: None
    info: dict = field(default_factory=dict)
    seed: int = 0
    # pmap(fn, [args, ...]) -> [fn(*args), ...]: independent pieces of a global step (GreeDi's
    # parts) spread over the engine's workers; module-level `fn` only
    pmap: Callable = None
    fingerprint: str = ""       # the step's: keys what a step leaves outside its table (weights)

    def __post_init__(self):
        if self.pmap is None:
            self.pmap = thread_map

    @property
    def runtime(self):
        return self.runtime_factory()

    def warn(self, message: str) -> None:
        """A warning for the run summary and the manifest; a second one joins the first
        rather than replacing it."""
        had = self.info.get("warning")
        self.info["warning"] = f"{had}; {message}" if had else message


def counted_batches(new: pa.RecordBatchReader, n: int) -> Iterator[pa.RecordBatch]:
    """A reader's batches for `Output.add_columns`, checked to hold `n` rows in all."""
    got = 0
    for b in new:
        got += b.num_rows
        yield b
    if got != n:
        raise RuntimeError(f"add_columns: {got} values for {n} rows")


def added_mask(src, new, drop) -> tuple[np.ndarray, list | None]:
    """For `Output.add_columns`: which rows stay, and the reasons of those dropped."""
    n = src.count()
    if new.num_rows != n:
        raise RuntimeError(f"add_columns: {new.num_rows} values for {n} rows")
    keep = np.ones(n, dtype=bool)
    why = None
    if drop:
        why = [None] * n
        for i, reason in drop.items():
            keep[i], why[i] = False, reason
    return keep, why


def kept_mask(n: int, positions, reasons) -> tuple[np.ndarray, np.ndarray, list | None, str, bool]:
    """For `Output.keep`: positions (checked), the mask, per-row reasons and the default, and
    whether the positions are in table order (a mask then suffices, no re-ranking)."""
    pos = np.asarray(positions, dtype=np.int64)
    if len(pos) and (pos.min() < 0 or pos.max() >= n or len(np.unique(pos)) != len(pos)):
        raise RuntimeError(f"keep: positions must be distinct and within 0..{n - 1}")
    mask = np.zeros(n, dtype=bool)
    mask[pos] = True
    if isinstance(reasons, str):
        why, default = None, reasons
    else:
        why, default = [None] * n, "not kept"
        for i, r in reasons.items():
            why[int(i)] = r
    return pos, mask, why, default, len(pos) < 2 or bool(np.all(np.diff(pos) > 0))


def concat_masks(srcs, keep=None, reasons=None) -> Iterator[tuple[np.ndarray, list, str]]:
    """For `Output.concat`: per input, which rows it keeps, their reasons and the default
    reason; a row whose `_id` an earlier input already gave is set aside (checked on the ids
    alone, in order)."""
    seen: set[str] = set()
    for i, t in enumerate(srcs):
        n = t.count()
        mask = np.ones(n, dtype=bool)
        why: list = [None] * n
        default = "not kept"
        if keep is not None and keep[i] is not None:
            mask[:] = False
            mask[np.asarray(keep[i], dtype=np.int64)] = True
            default = reasons[i]
        for j, rid in enumerate(t.ids()):
            if mask[j]:
                if rid in seen:
                    mask[j] = False
                    why[j] = "duplicate `_id`: already taken from an earlier input"
                seen.add(rid)
        yield mask, why, default


def thread_map(fn: Callable, arglist: list) -> list:
    """`pmap` on one machine: threads (numpy and torch release the GIL)."""
    import os
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(min(len(arglist), os.cpu_count() or 1) or 1) as pool:
        return list(pool.map(lambda a: fn(*a), arglist))

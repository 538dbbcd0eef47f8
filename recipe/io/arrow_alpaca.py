"""A fast path for the commonest input, Alpaca rows in JSON lines or Parquet: Arrow's JSON
parser (or Parquet reader) and Arrow compute build the canonical columns 20,000 rows at a
time, with no Python object per row. A chunk it cannot take exactly as the record-by-record
reader would (a blank or over-long line, a malformed or non-object record, an empty
instruction, `system`/`history`, NaN, nested or other non-plain values) is handed back as
lines (or records), so the reader's rules and reasons apply to it; tests check that both
paths write the same bytes.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..syntax import WS_RE2
from .formats import column_name
from .newlines import line_ends
from .readers import MAX_RECORD_BYTES

# a canonical table's optional column: true where `messages` is left null because it is the
# row's instruction and response (RowWriter stores it so; building them cost 1.4 s a 1M rows)
TWO = "__two_turns"

CHUNK = 20_000  # lines per chunk: the RowWriter's chunk, so both paths settle schemas alike
BLANK = f"^{WS_RE2}*$"  # what str.strip() leaves empty
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
PLAIN = (pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.list_(pa.string()))
CONSUMED = {"instruction", "output", "history", "system"}  # as formats.to_messages reads them
_WHITE = np.frombuffer(b" \t\n\r\x0b\x0c", np.uint8)  # what bytes.strip() strips
BLOCK = 1 << 24  # bytes read at a time (about 16 MB), then cut into CHUNK-line pieces


def chunks(path: Path, prefix: str, canon=None, span: tuple[int, int, int, int] | None = None
           ) -> Iterator[tuple[str, object, int, int]]:
    """For each CHUNK lines of `path`: ("arrow", canonical table, first line number, first
    row index) or ("lines", the raw lines, ...) for the line-by-line reader. Row indices
    count non-blank lines, as the line-by-line reader's do. `canon(lines, prefix, start)`
    makes the table from `Lines` (default: Alpaca rows). `span` = (start byte, end byte, its
    first line number, its first row index) reads a piece of the file that starts and ends a
    line. The file is read in blocks, not lines: a Python object per line cost more than
    Arrow's parse (1M lines: 1.6 s of 5.8)."""
    canon = canon or _canonical
    lineno, idx = (span or (0, None, 1, 0))[2:]
    for buf, starts, ends in blocks(path, span):
        for i in range(0, len(ends), CHUNK):
            part = Lines(buf, starts[i:i + CHUNK], ends[i:i + CHUNK])
            tbl = canon(part, prefix, idx)
            yield ("arrow", tbl, lineno, idx) if tbl is not None else ("lines", part.lines(), lineno, idx)
            lineno += len(part)
            idx += len(part) if tbl is not None else part.rows()


def blocks(path: Path, span: tuple | None = None) -> Iterator[tuple[bytearray, np.ndarray, np.ndarray]]:
    """`path` (or its byte span (start, end, ...), which starts and ends a line) as blocks of
    about BLOCK bytes that end a line: (the bytes, where each line starts, where it ends)."""
    from .readers import open_bytes
    start, end = (span or (0, None))[:2]
    # from the start: decompressed and past a byte-order mark; a span (never of a compressed
    # file) seeks to its first byte
    with (open_bytes(path) if start == 0 else open(path, "rb")) as fh:
        if start:
            fh.seek(start)
        room = None if end is None else end - fh.tell()
        # the start of a line the last block cut, carried to the front of the next: reading
        # into one buffer copies each byte once (appending the rest of the line copied the block)
        carry = bytearray()
        while True:
            want = BLOCK if room is None else min(BLOCK, room)
            buf = bytearray(len(carry) + want)
            buf[:len(carry)] = carry
            got = fh.readinto(memoryview(buf)[len(carry):]) if want else 0
            if got < want:
                del buf[len(carry) + got:]
            if room is not None:
                room -= got
            last = not got or room == 0
            cut = len(buf) if last else buf.rfind(b"\n") + 1
            if not cut and not last:  # no line ends in it yet: read on
                carry = buf
                continue
            carry = buf[cut:]
            del buf[cut:]
            if buf:
                ends = line_ends(buf)
                if not buf.endswith(b"\n"):
                    ends = np.append(ends, len(buf))
                yield buf, np.concatenate([[0], ends[:-1]]), ends
            if last:
                return


DEEP = 4000  # brackets a line may open before the record reader takes its chunk (Arrow crashed at 7,000 here)


class Lines:
    """Consecutive lines of a block of bytes: where each starts and ends (past its newline).
    The lines as Python bytes only when asked (the record reader's fallback)."""

    def __init__(self, buf: bytes, starts: np.ndarray, ends: np.ndarray):
        self.buf, self.starts, self.ends = buf, starts, ends

    def __len__(self) -> int:
        return len(self.ends)

    def rows(self) -> int:
        """How many lines are not blank (rows, as the readers count them)."""
        arr = np.frombuffer(self.buf, np.uint8)
        odd = np.isin(arr[self.starts], _WHITE)  # blank or starting with whitespace
        b = self.buf
        return len(self) - int(odd.sum()) + sum(1 for s, e in zip(self.starts[odd].tolist(), self.ends[odd].tolist())
                                                if b[s:e].strip())

    def lines(self) -> list[bytes]:
        b = memoryview(self.buf)
        return [bytes(b[s:e]) for s, e in zip(self.starts.tolist(), self.ends.tolist())]

    def objects_only(self) -> bool:
        """Every line fits MAX_RECORD_BYTES and is a JSON object: starts with `{` after
        whitespace (no blank lines: they are not rows)."""
        if not len(self) or int((self.ends - self.starts).max()) > MAX_RECORD_BYTES:
            return False
        odd = np.frombuffer(self.buf, np.uint8)[self.starts] != ord("{")
        b = self.buf
        return all(b[s:e].lstrip().startswith(b"{") for s, e in zip(self.starts[odd].tolist(), self.ends[odd].tolist()))

    def shallow(self) -> bool:
        """No line can nest deeper than DEEP (Arrow's JSON reader crashed the process, a
        segmentation fault, on a list nested 7,000 deep): a line needs a bracket a level, so
        only the lines longer than DEEP bytes are counted."""
        b = self.buf
        long = np.flatnonzero(self.ends - self.starts > DEEP)
        return all(b.count(b"[", s, e) + b.count(b"{", s, e) <= DEEP
                   for s, e in zip(self.starts[long].tolist(), self.ends[long].tolist()))

    def data(self) -> pa.Buffer:
        """The lines' bytes, each ending with a newline, without a copy where they do."""
        s, e = int(self.starts[0]), int(self.ends[-1])
        if self.buf[e - 1:e] == b"\n":
            return pa.py_buffer(memoryview(self.buf)[s:e])
        return pa.py_buffer(self.buf[s:e] + b"\n")


def parquet_chunks(pf, path: Path, prefix: str, groups: tuple[list[int], int] | None = None, canon=None
                   ) -> Iterator[tuple[str, object, int]]:
    """For each CHUNK rows of the open `pyarrow.parquet.ParquetFile` of `path`: ("arrow", canonical
    table, first row index) or ("records", the rows as `readers.Item`s, ...) for the record
    reader. `groups` = (row groups, the first one's row index) reads only those row groups;
    `canon(t, prefix, start)` makes the canonical table (default: of Alpaca rows)."""
    idx = groups[1] if groups else 0
    yield from batch_chunks(pf.iter_batches(batch_size=CHUNK, row_groups=groups[0] if groups else None), path,
                            prefix, idx, canon)


def batch_chunks(batches, path: Path, prefix: str, idx: int = 0, canon=None) -> Iterator[tuple[str, object, int]]:
    """`parquet_chunks` of Arrow record batches (Parquet's, or an Arrow file's), the first
    being row `idx`."""
    from .readers import parquet_items
    canon = canon or canonical_table
    for batch in batches:
        t = pa.Table.from_batches([batch])
        try:
            t.validate(full=True)  # Parquet strings are not checked for UTF-8 when read
            tbl = canon(t, prefix, idx)
        except pa.ArrowInvalid:
            tbl = None
        yield ("arrow", tbl, idx) if tbl is not None else ("records", parquet_items(batch, path, idx), idx)
        idx += t.num_rows


def _canonical(lines: Lines, prefix: str, start: int) -> pa.Table | None:
    t = parse_lines(lines)
    return canonical_table(t, prefix, start) if t is not None else None


def canonical_table(t: pa.Table, prefix: str, start: int, json_ok: bool = False) -> pa.Table | None:
    """The canonical table of Alpaca records `t` (rows `start`...), or None when some record
    needs the record reader's rules. `json_ok`: JSON-typed columns hold the record reader's
    JSON text of nested values already (`arrow_ni`), kept as they are."""
    if "history" in t.column_names or "system" in t.column_names:
        return None
    t = small_types(t)
    for need in ("instruction", "output"):
        if need not in t.column_names or t.schema.field(need).type != pa.string():
            return None
    inst, out = t.column("instruction"), t.column("output")
    if inst.null_count or out.null_count or pc.any(blank(inst)).as_py():
        return None
    user = inst
    if "input" in t.column_names:
        inp = t.column("input")
        if inp.type not in (pa.string(), pa.null()):
            return None
        inp = pc.fill_null(inp.cast(pa.string()), "")
        has_input = pc.invert(blank(inp))
        if pc.any(has_input).as_py():  # most files' inputs are all empty: no join, no copy
            user = pc.if_else(has_input, pc.binary_join_element_wise(inst, inp, "\n\n"), inst)
    user, answer = _one_chunk(user), _one_chunk(out)
    extras = plain_extras(t, CONSUMED, {"response": answer}, json_ok)
    return two_turns(prefix, start, user, answer, extras) if extras is not None else None


def two_turns(prefix: str, start: int, user, answer, extras: list) -> pa.Table:
    """The canonical table of rows that are one user turn and its answer: each conversation
    is left null and marked, and the table rebuilds it from the two texts."""
    n = len(user)
    cols = [("_id", ids(prefix, start, n)), ("messages", pa.nulls(n, MESSAGES)), ("instruction", user),
            ("response", answer)] + extras + [(TWO, pa.array(np.ones(n, dtype=bool)))]
    return pa.table(dict(cols))


def plain_extras(t: pa.Table, consumed: set[str], own: dict | None = None,
                 json_ok: bool = False) -> list[tuple[str, object]] | None:
    """The columns besides the conversation (not in `consumed`), named as the record reader
    names them (`formats.column_name`), or None when one holds what it treats otherwise.
    `own`: the row's own text columns (`instruction`, `response`); a field of that name is
    kept, as `<name>_in_input`, only in rows where it holds something else."""
    extras = []
    fields = {c.lower() for c in t.column_names}
    for f in t.schema:
        if f.name in consumed:
            continue
        if not f.name:
            return None  # named by its place in each record, by the record reader
        name = column_name(f.name)
        taken = {x.lower() for x, _ in extras} | {"_id", "messages", "instruction", "response"}
        if name.lower() in taken or name != f.name and name.lower() in fields:
            return None  # two fields for one SQL name (in any case): the record reader names them row by row
        col = t.column(f.name)
        if f.name in ("instruction", "response", "messages"):
            if f.name not in (own or {}) or f.type not in (pa.string(), pa.null()):
                return None  # compared value by value by the record reader
            col = col.cast(pa.string())
            same = pc.fill_null(pc.equal(col, own[f.name]), True)  # a null holds nothing else
            if pc.all(same).as_py():
                continue  # the row's own column, as recipe writes canonical rows
            if len(same) and same[0].as_py():
                # the record reader adds the column where a row first holds something else, after
                # the fields earlier rows brought: the column order is its to decide
                return None
            col = pc.if_else(same, pa.scalar(None, pa.string()), col)
        if f.type == pa.null():
            col = col.cast(pa.string())
        elif f.type == pa.list_(pa.null()):
            col = col.cast(pa.list_(pa.string()))
        elif json_ok and f.type == pa.json_():
            pass  # the record reader's JSON text already
        elif f.type not in PLAIN:
            return None  # nested values become JSON text on the slow path
        elif f.type == pa.float64() and pc.any(pc.is_nan(col)).as_py():
            return None  # the record reader sets NaN rows aside (Parquet can hold NaN; JSON cannot)
        extras.append((name, col))
    return extras


def parse_lines(lines: "Lines") -> pa.Table | None:
    """JSON lines parsed by Arrow, or None where the record reader must say what is wrong."""
    if not lines.objects_only() or not lines.shallow():
        # blank lines do not count as rows, long ones are set aside: the slow path's rules; and
        # a line that is not an object is the slow path's to name (pyarrow 26 crashes on `null`)
        return None
    data = lines.data()
    try:
        import pyarrow.json as pj
        t = pj.read_json(pa.BufferReader(data), read_options=pj.ReadOptions(block_size=max(data.size, 1 << 20)))
        # Arrow's JSON parser takes invalid UTF-8 into its strings (DuckDB then fails the whole
        # read): the full validation finds it (24 ms a 190 MB), the slow path sets the line aside
        t.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
        return None  # a malformed line (or a non-object one): the slow path says which
    if any(pa.types.is_floating(f.type) for f in t.schema) and _LONG_INT.search(memoryview(data)):
        # Arrow reads a whole number beyond 64 bits as a float (123456789012345678901234567890
        # came out as 1.2345678901234568e+29): the slow path keeps it exact (a JSON column)
        return None
    return t if t.num_rows == len(lines) else None


# 19 digits or more: a whole number that may not fit 64 bits (in a text too: that chunk then
# takes the slow path, which is only slower)
_LONG_INT = re.compile(rb"\d{19,}")


def ids(prefix: str, start: int, n: int) -> pa.Array:
    """`<prefix><index>` for rows start...start+n-1, built by Arrow (a Python string a row
    cost 0.3 s a 1M rows)."""
    nums = pc.cast(pa.array(np.arange(start, start + n, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), nums, "") if n else pa.array([], pa.string())


def blank(col) -> pa.Array:
    """Which strings str.strip() leaves empty. Only an empty string or one that starts with
    whitespace can be, so the regex runs on those alone (on every row it cost 0.17 s a 1M)."""
    col = _one_chunk(col)
    first = pc.utf8_slice_codeunits(col, 0, 1)
    maybe = pc.fill_null(pc.or_(pc.equal(first, ""), pc.match_substring_regex(first, WS_RE2)), False)
    if not pc.any(maybe).as_py():
        return maybe
    out = np.zeros(len(col), dtype=bool)
    where = np.flatnonzero(maybe.to_numpy(zero_copy_only=False))
    out[where] = pc.match_substring_regex(col.take(where), BLANK).to_numpy(zero_copy_only=False)
    return pa.array(out)


def _one_chunk(col) -> pa.Array:
    """A column as one array, without a copy when it is one chunk already."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def small_types(t: pa.Table) -> pa.Table:
    """A table of records (Parquet's, an Arrow file's) with the JSON parser's types (`_small`)."""
    return t.cast(pa.schema([pa.field(f.name, _small(f.type)) for f in t.schema]))


def _small(t: pa.DataType) -> pa.DataType:
    """Parquet's types as the JSON parser's where the values stay what the record reader sees
    (large strings and lists, narrower ints and floats); others are left for the PLAIN check."""
    if pa.types.is_large_string(t):
        return pa.string()
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_large_string(t.value_type) \
            or pa.types.is_large_list(t) and pa.types.is_string(t.value_type):
        return pa.list_(pa.string())
    if t in (pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint16(), pa.uint32()):
        return pa.int64()  # the same Python ints the record reader sees
    if t == pa.float32():
        return pa.float64()
    return t

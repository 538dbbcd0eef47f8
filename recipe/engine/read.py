"""The read step: a source's files -> a canonical table, unreadable records set aside.

Each JSON-lines file, JSON array, Parquet or Arrow (save_to_disk) file of Alpaca, ShareGPT,
OpenAI, Dolly, prompt/completion, question/answer or raw rows, and each CSV/TSV file of those
but the chats, takes Arrow's fast path (`io/arrow_formats.py` names the formats; `io/arrow_alpaca.py`,
`io/arrow_chat.py`, `io/arrow_pairs.py`, `io/arrow_array.py`, `io/arrow_csv.py`) chunk by
chunk; every other file, and any chunk the fast path cannot take exactly, is read record by
record."""
from __future__ import annotations

import json
import lzma
import re
import zlib

import pyarrow as pa
from pathlib import Path

from ..diagnostics import UserError
from ..io.arrow_formats import CSV_FAST, FAST
from ..io.formats import detect, is_oasst_message
from ..io.prefetch import prefetched
from ..io.readers import (array_items, delimiter, iter_csv, iter_rows, item_row, jsonl_items, kind_suffix, list_files,
                          open_bytes, open_parquet)
from .sql import quote_ident
from .tables import RowWriter

ASIDE_CHUNK = 20_000
ASIDE_SCHEMA = pa.schema([("_id", pa.string()), ("reason", pa.string()), ("raw", pa.string())])


class Enough(Exception):
    """The read took its `head` records: it stops (the readers' files and threads close)."""


class _Rows:
    """Where a read's rows go: canonical Arrow chunks and single rows into the table, the
    rest (and repeated ids) into the set-aside list, with progress."""

    def __init__(self, con, out: str, aside_table: str, ctx, head: int | None = None):
        from .store import ROW_GROUP_SIZE
        self.con, self.ctx, self.aside_table = con, ctx, aside_table
        self.head = head  # read's `head`: records taken (rows or not) before the read stops
        self.writer = RowWriter(con, out, row_group=ROW_GROUP_SIZE)
        self.aside: list[tuple[str, str, str | None]] = []
        self.seen: set[str] = set()
        self.n = 0

    def take_arrow(self, tbl) -> None:  # a canonical chunk: ids are unique by construction
        if self.head is not None and self.n + tbl.num_rows >= self.head:
            tbl = tbl.slice(0, self.head - self.n)
        self.writer.add_arrow(tbl)
        self.n += tbl.num_rows
        self.ctx.progress(self.n, None)
        if self.head is not None and self.n >= self.head:
            raise Enough

    def take(self, rid, row, reason, raw) -> None:
        if self.head is not None and self.n >= self.head:
            raise Enough
        self.n += 1
        if self.n % 5000 == 0:
            self.ctx.progress(self.n, None)
        if row is None:
            self.aside.append((rid, reason, raw))
        elif rid in self.seen:
            self.aside.append((rid, f"duplicate id `{rid}`", None))
        else:
            self.seen.add(rid)
            self.writer.add(rid, row)
        if len(self.aside) >= ASIDE_CHUNK:
            self._put_aside(self.aside)
            self.aside = []

    def _put_aside(self, records: list) -> None:
        # one Arrow insert: executemany took 1 ms a record (7,473 rows of a TSV file read with
        # the wrong columns took 7 s to set aside), and holding them all held their raw texts
        tbl = pa.table([pa.array(c, pa.string()) for c in zip(*records)], schema=ASIDE_SCHEMA)
        self.con.register("__aside", tbl)
        self.con.execute(f"INSERT INTO {quote_ident(self.aside_table)} SELECT * FROM __aside")
        self.con.unregister("__aside")

    def close(self) -> int:
        """Creates the (possibly empty) table; returns how many of the set-aside records, at
        the end, are rows the table could not hold."""
        self.writer.close()
        rejected = [(rid, reason, None) for rid, reason in self.writer.rejected]
        if self.aside or rejected:
            self._put_aside(self.aside + rejected)
        return len(rejected)


def read_source(con, out: str, aside_table: str, ctx, source: str, args: dict, log,
                files: list[Path] | None = None, multi: bool | None = None) -> int:
    """Create table `out` from the source's rows, set-aside records into `aside_table`;
    `ctx` (a KernelContext) takes progress and statistics. `files` (default: the source's)
    with `multi` (ids name their file) reads one file of a folder on its own, as the Ray
    engine's read tasks do. Returns how many of the set-aside records, at the end, are rows
    the table could not hold (they follow every file's unreadable records)."""
    files = list_files(args["path"]) if files is None else files
    rows = _Rows(con, out, aside_table, ctx, args.get("head"))
    said: list[str] = []

    multi = len(files) > 1 if multi is None else multi

    def noting(msg: str, *a, **k):  # the readers say what they detected: the summary says it too
        said.append(msg)
        if multi and _DETECTED.search(msg):
            return None  # said once per format after the files (a folder of 294 files said it 294 times)
        return log(msg, *a, **k)
    # a file's ids are `<source>:<file name>:<index>` among several: same-named files in two
    # folders would collide, and only the record-by-record reader checks for that
    distinct = len({f.name for f in files}) == len(files)
    opened = 0
    for f in files:
        prefix = f"{source}:{f.name}:" if multi else f"{source}:"
        opened += 1
        try:
            _read_file(f, args, source, noting, multi, distinct, prefix, rows.take, rows.take_arrow)
        except Enough:
            ctx.info["head"] = f"the first {rows.n} records" + (f", from {opened} of the {len(files)} files"
                                                                  if len(files) > 1 else "")
            break
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:  # a file cut short, or bad bytes
            raise UserError(f"source `{source}`: {f} cannot be read to its end ({type(e).__name__}: {e}): "
                            f"is the file complete?") from e
    for line in collapse_detected([m for m in said if multi and _DETECTED.search(m)]):
        log(line)
    rejected = rows.close()
    ctx.info["format"] = format_info(args, said)
    ctx.info["files"] = len(files)
    if other_branches(said):
        ctx.info["other branches"] = other_branches(said)
    return rejected


_BRANCHES = re.compile(r"OASST trees read as their top-ranked conversations; they hold ([\d,]+) more")


def other_branches(messages: list[str]) -> int:
    """The conversations an OASST source's trees hold beside the top-ranked ones read (the
    readers say so per file): `read(..., branches="all")` would read them too."""
    return sum(int(m.group(1).replace(",", "")) for msg in messages if (m := _BRANCHES.search(msg)))


def collapse_detected(messages: list[str]) -> list[str]:
    """The readers' `detected format ... in FILE` lines of a folder's files as one line per
    format and reason, naming up to three files (`... in 294 files`); other lines as they are."""
    files: dict[str, list[str]] = {}
    order: list[str] = []
    for m in messages:
        head, sep, name = m.rpartition(" in ")
        key = head if sep and _DETECTED.search(m) else m
        if key not in files:
            files[key] = []
            order.append(key)
        if key is head:
            files[key].append(name)
    return [k if not files[k] else f"{k} in {', '.join(files[k])}" if len(files[k]) <= 3 else
            f"{k} in {len(files[k])} files ({files[k][0]}, ...)" for k in order]


def format_info(args: dict, messages: list[str], formats=()) -> str:
    """The read's format for the run summary: the one given, or those the readers detected
    (from their messages, or `formats` known otherwise), in order."""
    if args.get("format"):
        return args["format"]
    found = dict.fromkeys([*(m.group(1) for msg in messages if (m := _DETECTED.search(msg))), *formats])
    return f"{', '.join(found)} (detected)" if found else "auto"


def read_range(con, out: str, aside_table: str, ctx, source: str, f: Path, fmt: str, span: tuple) -> int:
    """A piece of one file, as the Ray engine's read tasks take it: for a JSON-lines file in a
    fast-path format (`fmt`), `span` = (start byte, end byte, first line number, first row
    index); for a Parquet file of Alpaca rows, (row groups, first row index). Rows, ids and
    reasons are those of reading the whole file."""
    from ..io.arrow_alpaca import chunks
    from ..io.arrow_formats import canon_for
    rows = _Rows(con, out, aside_table, ctx)
    prefix = f"{source}:"
    if kind_suffix(f) == ".parquet":
        _parquet_rows(f, open_parquet(f), fmt, prefix, rows.take, rows.take_arrow, span)
        return rows.close()
    for kind, payload, first_line, first_idx in prefetched(chunks(f, prefix, canon_for(fmt),
                                                                  span=span)):
        if kind == "arrow":
            rows.take_arrow(payload)
        else:
            for it in jsonl_items(f, payload, first_line, first_idx):
                rows.take(*item_row(it, prefix, fmt))
    return rows.close()


def _parquet_rows(f: Path, pf, fmt: str, prefix: str, take, take_arrow, groups=None) -> None:
    from ..io.arrow_alpaca import parquet_chunks
    from ..io.arrow_formats import table_for
    _batch_rows(parquet_chunks(pf, f, prefix, groups, table_for(fmt)), fmt, prefix, take, take_arrow)


def _batch_rows(chunks, fmt: str, prefix: str, take, take_arrow) -> None:
    """Rows of record batches in `fmt` (Parquet's, an Arrow file's): canonical chunks as they
    are, a refused chunk's rows one by one."""
    for kind, payload, idx in prefetched(chunks):
        if kind == "arrow":
            take_arrow(payload)
        else:
            for it in payload:
                take(*item_row(it, prefix, fmt))


def _read_file(f: Path, args: dict, source: str, log, multi: bool, distinct: bool, prefix: str, take, take_arrow) -> None:
    """One file's rows: Arrow's fast path where it applies, else record by record."""
    got = _fast_parquet(f, args, source, log, multi) if distinct else None
    if got is not None:
        _parquet_rows(f, got[0], got[1], prefix, take, take_arrow)
    elif distinct and (fmt := _fast_arrow(f, args, source, log, multi)):
        from ..io.arrow_alpaca import CHUNK, batch_chunks
        from ..io.arrow_formats import table_for
        from ..io.hf_disk import arrow_batches
        _batch_rows(batch_chunks(arrow_batches(f, CHUNK), f, prefix, 0, table_for(fmt)), fmt, prefix, take, take_arrow)
    elif distinct and (got := _fast_csv(f, args, source, log, multi)):
        from ..io.arrow_csv import csv_chunks
        from ..io.arrow_formats import table_for
        names, fmt = got
        # a refused block's records are read lazily from the open file: read them before the
        # worker moves on to the next block
        blocks = ((kind, p if kind == "arrow" else list(p))
                  for kind, p in csv_chunks(f, delimiter(f), prefix, names, headerless=bool(args.get("columns")),
                                            canon=table_for(fmt)))
        for kind, payload in prefetched(blocks):
            if kind == "arrow":
                take_arrow(payload)
            else:
                for it in payload:
                    take(*item_row(it, prefix, fmt))
    elif distinct and (fmt := _fast_array(f, args, source, log, multi)):
        from ..io.arrow_array import array_chunks
        from ..io.arrow_formats import canon_for
        for kind, payload in prefetched(array_chunks(f, prefix, canon_for(fmt))):
            if kind == "arrow":
                take_arrow(payload)
            else:
                for it in payload:
                    take(*item_row(it, prefix, fmt))
    elif distinct and (doc := _fast_ni(f, args, source, log, multi)) is not None:
        from ..io.arrow_ni import ni_chunks
        for kind, payload in ni_chunks(f, doc, prefix):
            if kind == "arrow":
                take_arrow(payload)
            else:
                for it in payload:
                    take(*item_row(it, prefix, "ni"))
    elif distinct and (fmt := _fast(f, args, source, log, multi)):
        from ..io.arrow_alpaca import chunks
        from ..io.arrow_formats import canon_for
        for kind, payload, lineno, idx in prefetched(chunks(f, prefix, canon_for(fmt))):
            if kind == "arrow":
                take_arrow(payload)
            else:
                for it in jsonl_items(f, payload, lineno, idx):
                    take(*item_row(it, prefix, fmt))
    else:
        for rid, row, reason, raw in iter_rows(source, [f], args.get("format"), args.get("id"), log, multi=multi,
                                               columns=args.get("columns"), branches=args.get("branches")):
            take(rid, row, reason, raw)


_DETECTED = re.compile(r": detected format `(\w+)`")  # the JSON-lines formats Arrow reads (io/arrow_*.py)


def _fast(f: Path, args: dict, source: str, log, multi: bool = False) -> str | None:
    """The format, when `f` is a JSON-lines file of rows in a fast-path format (`FAST`) with
    default ids (None: read it record by record)."""
    if kind_suffix(f) not in (".jsonl", ".ndjson") or args.get("id"):
        return None
    fmt = args.get("format")
    if fmt is not None:
        return fmt if fmt in FAST else None
    with open_bytes(f) as fh:  # the line-by-line reader detects from the first record too
        for line in fh:
            if line.strip():
                try:
                    rec = json.loads(line)
                except (ValueError, RecursionError):
                    return None
                return _detected(rec, FAST, f, source, log, multi)
    return None


def _detected(rec, allowed: tuple, f: Path, source: str, log, multi: bool) -> str | None:
    """The fast-path format a file's first record shows, said as the record reader says it;
    None when it is not one of `allowed` (or is an OASST message, which the reader folds)."""
    got, why = detect(rec) if isinstance(rec, dict) else (None, "")
    if got not in allowed or is_oasst_message(rec):
        return None
    log(f"{source}: detected format `{got}` (from {why})" + (f" in {f.name}" if multi else ""))
    return got


def _fast_array(f: Path, args: dict, source: str, log, multi: bool = False) -> str | None:
    """The format, when `f` is a JSON array of rows in a fast-path format with default ids
    (None: read it record by record)."""
    from ..io.arrow_array import is_array
    if kind_suffix(f) != ".json" or args.get("id") or args.get("format") not in (None, *FAST) or not is_array(f):
        return None
    if args.get("format") is not None:
        return args["format"]
    first = next(iter(array_items(f)), None)  # detected from the first element, as the record reader does
    return _detected(first.record if first is not None else None, FAST, f, source, log, multi)


def _fast_ni(f: Path, args: dict, source: str, log, multi: bool = False) -> dict | None:
    """The parsed task, when `f` is a Super-NaturalInstructions task file (a JSON object with
    `Instances`) read with default ids; None where the record reader reads it (anything it
    would refuse or repair: invalid UTF-8, NaN, a key given twice, malformed JSON)."""
    from ..io.arrow_array import is_array
    from ..io.readers import strict_doc
    if kind_suffix(f) != ".json" or args.get("id") or args.get("format") not in (None, "ni", "alpaca") or is_array(f):
        return None
    doc = strict_doc(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("Instances"), list):
        return None
    if args.get("format") is None:
        log(f"{source}: detected format `ni` (from keys `Definition`, `Instances`)" + (f" in {f.name}" if multi else ""))
    return doc


def _fast_parquet(f: Path, args: dict, source: str, log, multi: bool = False):
    """(the open ParquetFile, the format) when `f` is a Parquet file of rows in a fast-path
    format with default ids (None: read it record by record)."""
    if kind_suffix(f) != ".parquet" or args.get("id") or args.get("format") not in (None, *FAST):
        return None
    pf = open_parquet(f)
    fmt = args.get("format") or _detected(_first_record(pf.iter_batches(batch_size=1)), FAST, f, source, log, multi)
    return (pf, fmt) if fmt else None  # detected from the first record, as the record reader does


def _first_record(batches) -> dict | None:
    """The first row of record batches as a dict (None when there is none)."""
    first = next(iter(batches), None)
    return first.to_pylist()[0] if first is not None and first.num_rows else None


def _fast_arrow(f: Path, args: dict, source: str, log, multi: bool = False) -> str | None:
    """The format, when `f` is an Arrow file (a Hugging Face save_to_disk shard) of rows in a
    fast-path format with default ids (None: read it record by record)."""
    if kind_suffix(f) != ".arrow" or args.get("id") or args.get("format") not in (None, *FAST):
        return None
    if args.get("format") is None:  # detected from the first record, as the record reader does
        from ..io.hf_disk import arrow_batches
        return _detected(_first_record(arrow_batches(f, 1)), FAST, f, source, log, multi)
    return args["format"]


def _fast_csv(f: Path, args: dict, source: str, log, multi: bool = False) -> tuple[list[str], str] | None:
    """(the column names, the format) when `f` is a CSV/TSV file of rows in a format whose
    fields are text (`CSV_FAST`) with default ids (None: read it record by record)."""
    if kind_suffix(f) not in (".csv", ".tsv") or args.get("id") or args.get("format") not in (None, *CSV_FAST):
        return None
    from ..diagnostics import UserError
    from ..io.arrow_csv import header
    given = args.get("columns")
    names = list(given) if given else header(f, delimiter(f))
    if names is None:
        return None
    fmt = args.get("format")
    if fmt is None:  # detected from the first record, as the record reader does
        try:
            first = next(iter(iter_csv(f, delimiter(f), given or None)), None)
        except UserError:
            return None  # the record reader says what is wrong
        fmt = _detected(first.record if first is not None else None, CSV_FAST, f, source, log, multi)
    return (names, fmt) if fmt else None

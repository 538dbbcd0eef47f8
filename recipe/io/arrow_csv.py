"""A fast path for rows in CSV/TSV: Arrow's CSV reader, every column as text (as Python's
csv module reads it: no type guessing, empty fields stay ""), a block at a time, then the
canonical columns of the format (`arrow_formats.table_for`; Alpaca's by default).

The record reader (`readers.iter_csv`) stays the reference: a block whose rows need its
rules (an empty instruction, say) is read by it, and when Arrow cannot parse a block (a row
with too few or too many fields, bad UTF-8) the rest of the file is read by it, so every
set-aside row keeps the record reader's reason and line number. The record reader runs
lazily and only as far as the blocks it is asked for: a clean file never meets it.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .arrow_alpaca import canonical_table
from .readers import LIST_FIELDS, CsvRecords, Item

ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)  # a block Arrow cannot read
LONE_CR = "\r([^\n]|$)"
BLOCK = 1 << 22  # bytes Arrow parses at a time: a few thousand rows of instruction data


def header(path: Path, delim: str) -> list[str] | None:
    """The column names, when Arrow would name the columns as the record reader keys them
    (None: read the file record by record)."""
    import io
    from .readers import open_bytes
    try:
        with io.TextIOWrapper(open_bytes(path), encoding="utf-8", newline="") as fh:
            names = next(csv.reader(fh, delimiter=delim), None)
    except (UnicodeDecodeError, csv.Error):
        return None  # the record reader says what is wrong
    if not names or len(set(names)) != len(names) or "" in names:
        return None  # duplicate or empty names: the record reader's dict decides
    return names


def csv_chunks(path: Path, delim: str, prefix: str, names: list[str],
               headerless: bool = False, canon=None) -> Iterator[tuple[str, object]]:
    """("arrow", canonical table) for each block Arrow reads as the record reader would, or
    ("items", record-reader Items) for the rows it must read; together, every row in order.
    `headerless`: the file has no header row and `names` name its fields."""
    slow = None  # the record reader, opened when a block first needs it

    def records(start: int, stop: int | None) -> Iterator[Item]:
        nonlocal slow
        slow = slow if slow is not None else CsvRecords(path, delim, names if headerless else None)
        slow.skip(start - slow.index)
        return slow.items(None if stop is None else stop - start)

    try:
        yield from _blocks(path, delim, prefix, names, records, headerless, canon or canonical_table)
    finally:
        if slow is not None:
            slow.close()


def _blocks(path: Path, delim: str, prefix: str, names: list[str], records,
            headerless: bool = False, canon=canonical_table) -> Iterator[tuple[str, object]]:
    import pyarrow.csv as pcsv
    try:
        reader = pcsv.open_csv(
            path, read_options=pcsv.ReadOptions(block_size=BLOCK, column_names=names if headerless else None),
            parse_options=pcsv.ParseOptions(delimiter=delim, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except ARROW_ERRORS:
        yield "items", records(0, None)
        return
    idx = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except ARROW_ERRORS:
            yield "items", records(idx, None)  # the rows before this block are taken: go on from here
            return
        t = pa.Table.from_batches([batch])
        if t.column_names != names:
            yield "items", records(idx, None)
            return
        # pyarrow 26 drops the \n of a quoted \r\n that a block boundary splits: a block with
        # a carriage return not followed by a line feed is read by the record reader
        cr = any(pc.any(pc.match_substring_regex(t.column(n), LONE_CR)).as_py() for n in names)
        # the record reader reads a list field's JSON text back as the list the CSV sink wrote
        # (`readers.LIST_FIELDS`; this path kept `turns` and `instances` as text until session 28)
        lists = any(n in LIST_FIELDS and pc.any(pc.starts_with(t.column(n), "[")).as_py() for n in names)
        tbl = None if cr or lists else canon(t, prefix, idx)
        yield ("arrow", tbl) if tbl is not None else ("items", records(idx, idx + t.num_rows))
        idx += t.num_rows

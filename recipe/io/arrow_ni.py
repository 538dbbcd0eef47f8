"""The Arrow fast path for Super-NaturalInstructions task files: the task's instances, as
the record reader makes them (`readers._ni_items`: Alpaca records that repeat the task's
definition, categories and positive examples), become the columns of a table CHUNK rows at
a time, which Alpaca's canonicaliser (`arrow_alpaca.canonical_table`) turns into rows. The
task's fields are typed once per file (its positive examples' JSON text made once, not once
a row); a chunk with anything the record reader treats its own way (an instance that is no
object, a value of another type than the file's other rows give that field, text Arrow
refuses) goes to the record reader, and a differential test keeps both in step. The record
reader spent about 150 us a row on these rows (their task fields are a dozen values each)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from . import arrow_alpaca
from .readers import Item, _ni_items

_LIST = pa.list_(pa.string())


def ni_chunks(path: Path, doc: dict, prefix: str) -> Iterator[tuple[str, object]]:
    """("arrow", canonical table) or ("records", the chunk's `readers.Item`s) for each CHUNK
    instances of the task file `path` (parsed: `doc`)."""
    items, size = list(_ni_items(path, doc)), arrow_alpaca.CHUNK
    for at in range(0, len(items), size):
        part = items[at:at + size]
        t = _table(part)
        try:
            tbl = arrow_alpaca.canonical_table(t, prefix, part[0].index, json_ok=True) if t is not None else None
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            tbl = None
        yield ("arrow", tbl) if tbl is not None else ("records", part)


def _table(items: list[Item]) -> pa.Table | None:
    """The records as columns, in the order the record reader meets their fields, or None."""
    if any(it.error or not isinstance(it.record, dict) for it in items):
        return None
    recs = [it.record for it in items]
    cols = {}
    for k in dict.fromkeys(k for r in recs for k in r):
        vals = [r.get(k) for r in recs]
        first = vals[0]
        if first is not None and all(v is first for v in vals):  # a task field: one object on every row
            col = _column([first])
            col = col.take(pa.array(np.zeros(len(vals), dtype=np.int64))) if col is not None else None
        else:
            col = _column(vals)
        if col is None:
            return None
        cols[k] = col
    return pa.table(cols)


def _column(vals: list):
    """A field's values as Arrow: text, lists of text, or (positive examples: objects) JSON
    text as the record reader stores a nested value; None for anything else."""
    try:
        kinds = {type(v) for v in vals if v is not None}
        if kinds <= {str}:
            return pa.array(vals, pa.string())
        if kinds == {list}:
            if all(v is None or all(isinstance(x, str) for x in v) for v in vals):
                return pa.array(vals, _LIST)
            # one task's examples: the same list object on every row, its JSON made once
            texts: dict[int, str] = {}
            return pa.ExtensionArray.from_storage(pa.json_(), pa.array(
                [None if v is None else texts.get(id(v)) or texts.setdefault(id(v), json.dumps(v, ensure_ascii=False))
                 for v in vals], pa.string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        return None  # a lone surrogate, say: the record reader's rules
    return None

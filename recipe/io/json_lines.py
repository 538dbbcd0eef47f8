"""Arrow rows -> JSON text with Arrow compute, byte-identical to
`json.dumps(row, ensure_ascii=False, default=str)` of each row of `to_pylist()`.

A sink used to build a dict per row and call json.dumps on it: 200,000 P3 rows took 5.3 s, more
than reading them. Here each string is escaped by the json module's own escaper, but the rest
(the dicts, the per-row encoder, the joins of lists, structs and rows) is Arrow's: nested values
are joined from their encoded children, and a batch comes out as one buffer. Floats and types
this module does not know are encoded value by value by Python (floats as json writes them, the
rest by json.dumps itself), so the bytes stay the json module's in every case."""
from __future__ import annotations

import json
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) escapes with

import pyarrow as pa
import pyarrow.compute as pc

_DUMPS = json.JSONEncoder(ensure_ascii=False, default=str).encode
STR = pa.large_string()


def _lit(s: str) -> pa.Scalar:
    return pa.scalar(s, STR)


def _join(*parts) -> pa.Array:
    """Concatenation, element by element, of arrays and literal strings."""
    return pc.binary_join_element_wise(*[_lit(p) if isinstance(p, str) else p for p in parts], _lit(""))


def _float(v) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return float.__repr__(v)


def _strings(arr) -> pa.Array:
    # The json module's C escaper, value by value: 1.2 s for 192 MB of P3 instructions, where
    # Arrow's replace_substring took 2.5 s for the seven passes json's escapes need.
    return pa.array([None if v is None else encode_basestring(v) for v in arr.to_pylist()], STR)


def encode_column(arr) -> pa.Array:
    """Each value of an Arrow array (or chunked array) as JSON text: a large_string array
    without nulls."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        out = _strings(arr)
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        out = pc.cast(arr, STR)  # Arrow writes ints and true/false as json does
    elif pa.types.is_floating(t):
        out = pa.array([None if v is None else _float(v) for v in arr.to_pylist()], STR)
    elif pa.types.is_null(t):
        out = pa.nulls(len(arr), STR)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        out = _lists(arr)
    elif pa.types.is_struct(t):
        out = _structs(arr)
    else:  # maps, dates, decimals...: as json.dumps writes them
        out = pa.array([_DUMPS(v) for v in arr.to_pylist()], STR)
    return pc.fill_null(out, _lit("null"))


def _lists(arr) -> pa.Array:
    # a slice's offsets point into its parent's whole child array: rebase them on the part used
    offsets = arr.offsets
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    items = encode_column(arr.values.slice(start, end - start))
    cls = pa.LargeListArray if pa.types.is_large_list(arr.type) else pa.ListArray
    lists = cls.from_arrays(pc.subtract(offsets, pa.scalar(start, offsets.type)), items, mask=arr.is_null())
    return _join("[", pc.binary_join(lists, _lit(", ")), "]")  # null lists stay null


def _structs(arr) -> pa.Array:
    t = arr.type
    if t.num_fields == 0:
        out = pa.array(["{}"] * len(arr), STR)
    else:
        parts: list = []
        for i in range(t.num_fields):
            parts += [("{" if i == 0 else ", ") + encode_basestring(t.field(i).name) + ": ",
                      encode_column(pc.struct_field(arr, [i]))]
        out = _join(*parts, "}")
    return pc.if_else(arr.is_valid(), out, pa.nulls(len(arr), STR))


def encode_rows(table: pa.Table, cols: list[str]) -> pa.Array:
    """Each row of `table` as one JSON object of the given columns, in that order."""
    if not cols:
        return pa.array(["{}"] * table.num_rows, STR)
    parts: list = []
    for i, c in enumerate(cols):
        parts += [("{" if i == 0 else ", ") + encode_basestring(c) + ": ", encode_column(table.column(c))]
    return _join(*parts, "}")


def joined(rows: pa.Array, sep: str) -> bytes:
    """The rows' texts, separated by `sep`, as UTF-8 bytes: one Arrow join, no Python strings."""
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    one = pa.LargeListArray.from_arrays(pa.array([0, len(rows)], pa.int64()), rows)
    return pc.binary_join(one, _lit(sep))[0].as_buffer().to_pybytes()


def set_aside_records(batch: pa.Table, node: str) -> pa.Array:
    """`set_aside.jsonl`'s records of a batch of `_id, reason, raw`: {"_id", "node", "reason"}
    and "raw" where the row kept its raw text."""
    head = _join('{"_id": ', encode_column(batch.column("_id")), ", \"node\": " + encode_basestring(node)
                 + ', "reason": ', encode_column(batch.column("reason")))
    raw = batch.column("raw").combine_chunks()
    with_raw = _join(head, ', "raw": ', encode_column(raw), "}")
    return pc.if_else(pc.is_null(raw), _join(head, "}"), with_raw)

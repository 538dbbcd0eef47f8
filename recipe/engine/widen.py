"""How `union` and `mix` widen a column whose inputs disagree on its type, on both engines:
the read's rule (`tables.RowWriter._widen`) applied to whole columns. Whole numbers of any
width stay whole numbers, numbers of mixed kinds become floats, a JSON column (nested values)
meeting anything stays JSON (each value its JSON), and anything else becomes text: each value the JSON text a row read alone would have had (`json.dumps`, as the read
writes a list that a later row widened), so a list unioned with text is `["a", "b"]`, not
DuckDB's own rendering `[a, b]` (until session 23 DuckDB's cast of one to the other stopped
the run mid-step, after `check` had passed it)."""
from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa

from .tables import JSON


def unified(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type a column takes when one input has it as `a` and another as `b`."""
    if a.equals(b) or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    if a == JSON or b == JSON:  # JSON holds any value as itself
        return JSON
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return pa.int64()
    if _numeric(a) and _numeric(b):
        return pa.float64()
    return pa.string()


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def unified_schema(schemas: list[pa.Schema], skip: tuple[str, ...] = ()) -> dict[str, pa.DataType]:
    """Columns by name in first-seen order, each with its unified type."""
    fields: dict[str, pa.DataType] = {}
    for s in schemas:
        for f in s:
            if f.name not in skip:
                fields[f.name] = unified(fields[f.name], f.type) if f.name in fields else f.type
    return fields


def json_texts(arr) -> pa.Array:
    """Values as text: a text as it is, anything else as its JSON text; nulls stay null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pa.array([v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True,
                                                                           default=_plain)
                     for v in arr.to_pylist()], pa.string())


def json_values(arr) -> pa.Array:
    """Values as a JSON column: each value's JSON (a text quoted); nulls stay null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type == JSON:
        return arr
    return pa.ExtensionArray.from_storage(JSON, pa.array(
        [None if v is None else json.dumps(v, ensure_ascii=False, default=_plain) for v in arr.to_pylist()], pa.string()))


def _plain(v):
    if isinstance(v, Decimal):  # a DuckDB decimal literal
        return float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    raise TypeError(f"{type(v).__name__} has no JSON text")


def converted(col, to: pa.DataType):
    """An Arrow column of one input as the unified type `to`."""
    if col.type.equals(to):
        return col
    if to == JSON:
        return json_values(col)
    if pa.types.is_string(to):
        return json_texts(col)
    return col.cast(to)

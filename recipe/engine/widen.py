"""How `union` and `mix` widen a column whose inputs disagree on its type, on both engines:
the read's rule (`tables.RowWriter._widen`) applied to whole columns. Whole numbers of any
width stay whole numbers, numbers of mixed kinds become floats, and any other conflict makes a
JSON column: each value its JSON, as Python's json writes it and the read writes a row alone, so
every value is written back as itself (a list stays a list, a 1 beside text stays 1; until
session 27 such a column became text and a JSON sink wrote "1"; until session 23 DuckDB's cast
of a list to text stopped the run mid-step, after `check` had passed it). In expressions a JSON
column reads as text (`check` types it so)."""
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
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return pa.int64()
    if _numeric(a) and _numeric(b):
        return pa.float64()
    return JSON  # holds any value as itself


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def unified_schema(schemas: list[pa.Schema], skip: tuple[str, ...] = ()) -> dict[str, pa.DataType]:
    """Columns by name in first-seen order, each with its unified type; names that differ
    only in case are one column, named as first seen (SQL's rule: DuckDB's UNION BY NAME)."""
    fields: dict[str, pa.DataType] = {}
    spelled: dict[str, str] = {}
    for s in schemas:
        for f in s:
            if f.name not in skip:
                name = spelled.setdefault(f.name.lower(), f.name)
                fields[name] = unified(fields[name], f.type) if name in fields else f.type
    return fields


def column_in(tbl: pa.Table, name: str):
    """`tbl`'s column of that name in any case (`unified_schema`), or None."""
    if name in tbl.column_names:
        return tbl.column(name)
    other = next((n for n in tbl.column_names if n.lower() == name.lower()), None)
    return tbl.column(other) if other is not None else None


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
    return col.cast(to)

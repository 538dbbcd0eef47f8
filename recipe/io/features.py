"""What a written file holds, as the Hugging Face `datasets` library's features (the list a
dataset card's `dataset_info` carries): without them `datasets` guesses each column's type
from the first rows it reads, and a column that is all null there (a union whose first
source lacks it) fails the load later ("Couldn't cast array of type string to null").

The writers collect the Arrow schema of what they wrote (`unified`); `hub_features` turns it
into the card's form: `{"name": n, "dtype": "string"}`, `{"name": n, "list": <item>}`,
`{"name": n, "struct": [fields]}`, as `datasets.Features._to_yaml_list` writes them. A type
with no such form (a JSON column of mixed values, a decimal, a time) gives None: the card
then declares nothing rather than something wrong."""
from __future__ import annotations

import pyarrow as pa

_FLOATS = {pa.float16(): "float16", pa.float32(): "float32", pa.float64(): "float64"}


def unified(schemas) -> pa.Schema | None:
    """One schema for files (or batches) written apart: a column null in one and typed in
    another takes the type, an int and a float column a float; None when any is None or two
    cannot be reconciled (text in one, numbers in another)."""
    schemas = list(schemas)
    if not schemas or any(s is None for s in schemas):
        return None
    if len(schemas) == 1:
        return schemas[0]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def records_schema(records: list[dict]) -> pa.Schema | None:
    """The schema Arrow infers for records (Python dicts as a writer makes them); None when
    their values do not share a type."""
    if not records:
        return None
    try:
        return pa.schema(pa.array(records).type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None


def batch_schema(b) -> pa.Schema | None:
    """The schema of a batch as a JSON writer writes it: a JSON column (nested input values,
    written as the values they are) typed by its values, as a reader would read them back;
    None when they share no type."""
    import json
    fields = []
    for f in b.schema:
        if isinstance(f.type, pa.ExtensionType) and f.type.extension_name == "arrow.json":
            values = [None if v is None else json.loads(v) for v in b.column(f.name).to_pylist()]
            try:
                fields.append(pa.field(f.name, pa.array(values).type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
                return None
        else:
            fields.append(f)
    return pa.schema(fields)


def hub_features(schema: pa.Schema | None) -> list[dict] | None:
    """The schema as a card's `features` list, or None (see the module's docstring)."""
    if schema is None:
        return None
    out = []
    for f in schema:
        item = _item(f.type)
        if item is None:
            return None
        out.append({"name": f.name, **item})
    return out


def _item(t: pa.DataType) -> dict | None:
    """One type as the mapping a feature holds (`dtype`, `list` or `struct`)."""
    if isinstance(t, pa.ExtensionType):  # DuckDB's JSON: its values' types vary row to row
        return None
    if pa.types.is_null(t):
        return {"dtype": "null"}
    if pa.types.is_boolean(t):
        return {"dtype": "bool"}
    if pa.types.is_integer(t):
        return {"dtype": str(t)}  # int8 ... uint64, as datasets names them
    if t in _FLOATS:
        return {"dtype": _FLOATS[t]}
    if pa.types.is_string(t) or pa.types.is_string_view(t):
        return {"dtype": "string"}
    if pa.types.is_large_string(t):
        return {"dtype": "large_string"}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_list_view(t):
        inner = _item(t.value_type)
        if inner is None:
            return None
        # a list of values names their dtype; a list of lists or of structs nests the mapping
        return {"list": inner["dtype"] if set(inner) == {"dtype"} else inner.get("struct", inner)}
    if pa.types.is_struct(t):
        fields = []
        for i in range(t.num_fields):
            item = _item(t.field(i).type)
            if item is None:
                return None
            fields.append({"name": t.field(i).name, **item})
        return {"struct": fields}
    return None


def merged(a: list[dict] | None, b: list[dict] | None) -> list[dict] | None:
    """Two files' features as one config's (the splits of a config share its features): the
    same columns, each of one type, or null in one of them; None otherwise."""
    if a is None or b is None or [f["name"] for f in a] != [f["name"] for f in b]:
        return None
    out = []
    for x, y in zip(a, b):
        if x == y or y.get("dtype") == "null":
            out.append(x)
        elif x.get("dtype") == "null":
            out.append(y)
        else:
            return None
    return out

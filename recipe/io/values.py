"""Input values made fit for a row: Parquet/Arrow values JSON has no type for made plain,
texts that hold no character (half a UTF-16 surrogate pair) found, and a JSON object that
names a field twice refused."""
from __future__ import annotations


def odd_type(t) -> bool:
    """An Arrow type (or one nested in it) whose values JSON has no type for."""
    import pyarrow.types as pt
    if pt.is_temporal(t) or pt.is_decimal(t) or pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        return True
    return any(odd_type(t.field(i).type) for i in range(t.num_fields))


def plain_value(v):
    """A Parquet/Arrow value as JSON holds it: a date or time as its ISO 8601 text (a timestamp
    stopped the read: "datetime is not JSON serializable"), a duration as seconds, a decimal as
    a float, bytes as their text when UTF-8, else as base64; inside lists and objects too."""
    import base64
    import datetime
    import decimal
    if isinstance(v, dict):
        return {k: plain_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_value(x) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return float(v)  # one type for the column (a decimal of 38 digits loses some)
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(v).decode("ascii")
    return v


def lone_surrogate(v, field: str | None = None) -> str | None:
    """Where a value (keys too, nested ones too) holds a lone UTF-16 surrogate: JSON's `\\ud800`
    escape decodes to one, which is no character and has no UTF-8 (the read stopped mid-run)."""
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:
            bad = v[e.start]
            return (f"field `{field}` holds `\\u{ord(bad):04x}`, half of a UTF-16 surrogate pair without its "
                    f"other half: no character")
        return None
    if isinstance(v, dict):
        for k, x in v.items():
            why = lone_surrogate(k, field or k) or lone_surrogate(x, field or k)
            if why:
                return why
    elif isinstance(v, list):
        for x in v:
            why = lone_surrogate(x, field)
            if why:
                return why
    return None


class Twice(ValueError):
    """A JSON object names a field twice, with two values; `end`: where the value ends, when
    a reader knows it."""

    def __init__(self, msg: str, end: int | None = None):
        super().__init__(msg)
        self.end = end


def unique_keys(pairs: list) -> dict:
    """A JSON object's fields (the decoders' `object_pairs_hook`); one named twice with two
    values is refused: `json.loads` kept the last without a word, Arrow's reader stops, and
    JSON readers elsewhere differ on which counts. Twice with one value is that value."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: dict = {}
        for k, v in pairs:
            if k in seen and seen[k] != v:
                raise Twice(f"field `{k}` given twice, with different values")
            seen[k] = v
    return d

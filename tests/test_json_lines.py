"""Sinks encode Arrow rows column by column (recipe/io/json_lines.py); the bytes must be
json.dumps's of each row, whatever the types, nesting, nulls, slices and chunks."""
import datetime
import json
import math

import pyarrow as pa
from hypothesis import HealthCheck, given, settings, strategies as st

from recipe.io.json_lines import encode_rows, set_aside_records

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "%s", "%%", '"', "\\", "\n\t\r\x00\x1f", "é ü 漢字 🙂", "\u2028\u2029", "</script>"])
FLOAT = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e-7, 1e22, 0.1])
INT = st.integers(min_value=-2**63, max_value=2**63 - 1)


def _nullable(s):
    return st.none() | s


def _columns():
    """(arrow type, strategy for one value) pairs, nested up to three levels."""
    leaves = st.sampled_from([
        (pa.string(), TEXT), (pa.large_string(), TEXT), (pa.int64(), INT), (pa.int8(), st.integers(-128, 127)),
        (pa.float64(), FLOAT), (pa.float32(), st.sampled_from([0.5, 1.25, -3.0, 1e-3])), (pa.bool_(), st.booleans()),
        (pa.null(), st.none()), (pa.date32(), st.dates(datetime.date(1970, 1, 1), datetime.date(2100, 1, 1))),
        (pa.map_(pa.string(), pa.int64()), st.lists(st.tuples(TEXT, INT), max_size=2)),
    ])

    def extend(inner):
        def lists(ts):
            t, s = ts
            return (pa.list_(t), st.lists(_nullable(s), max_size=3))

        def structs(tss):
            names = [f"f{i}" for i in range(len(tss))] if len(tss) != 2 else ["role", 'con"tent%']
            return (pa.struct([(n, t) for n, (t, _) in zip(names, tss)]),
                    st.fixed_dictionaries({n: _nullable(s) for n, (_, s) in zip(names, tss)}))
        return inner.map(lists) | st.lists(inner, min_size=0, max_size=3).map(structs)
    return st.recursive(leaves, extend, max_leaves=6)


@st.composite
def tables(draw):
    specs = draw(st.lists(_columns(), min_size=1, max_size=4))
    n = draw(st.integers(0, 8))
    cols, names = [], []
    for i, (t, s) in enumerate(specs):
        vals = draw(st.lists(_nullable(s), min_size=n, max_size=n))
        cols.append(pa.array(vals, type=t))
        names.append(draw(st.sampled_from(["_id", "messages", "a%b", 'q"uote', "ü"])) + str(i))
    table = pa.table(cols, names=names)
    cut = draw(st.integers(0, n))  # sliced and chunked arrays carry offsets the encoder must honour
    if draw(st.booleans()) and n:
        table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    if draw(st.booleans()):
        table = table.slice(cut // 2)
    return table


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_rows_encode_as_json_dumps_writes_them(table):
    cols = table.column_names
    want = [json.dumps(r, ensure_ascii=False, default=str) for r in table.to_pylist()]
    assert encode_rows(table, cols).to_pylist() == want
    sub = cols[::-1][:2]  # a subset of the columns, in another order
    assert encode_rows(table, sub).to_pylist() == [json.dumps({k: r[k] for k in sub}, ensure_ascii=False, default=str)
                                       for r in table.to_pylist()]


def test_chat_rows_and_special_floats():
    msgs = pa.array([[{"role": "user", "content": 'say "hi"\n'}, {"role": "assistant", "content": None}], None, []],
                    type=pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))
    t = pa.table({"_id": ["a:0", "a:1", None], "messages": msgs, "score": [math.nan, -math.inf, 2.5]})
    assert encode_rows(t, t.column_names).to_pylist() == [
        '{"_id": "a:0", "messages": [{"role": "user", "content": "say \\"hi\\"\\n"}, '
        '{"role": "assistant", "content": null}], "score": NaN}',
        '{"_id": "a:1", "messages": null, "score": -Infinity}',
        '{"_id": null, "messages": [], "score": 2.5}']


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_nullable(TEXT), _nullable(TEXT), _nullable(TEXT)), max_size=6), TEXT)
def test_set_aside_records_are_json_dumps_of_each(rows, node):
    batch = pa.table({"_id": [r[0] for r in rows], "reason": [r[1] for r in rows], "raw": [r[2] for r in rows]},
                     schema=pa.schema([("_id", pa.string()), ("reason", pa.string()), ("raw", pa.string())]))
    batch = pa.concat_tables([batch.slice(0, len(rows) // 2), batch.slice(len(rows) // 2)])  # chunked, as stores give
    want = []
    for rid, reason, raw in rows:
        rec = {"_id": rid, "node": node, "reason": reason} | ({"raw": raw} if raw is not None else {})
        want.append(json.dumps(rec, ensure_ascii=False))
    assert set_aside_records(batch, node).to_pylist() == want

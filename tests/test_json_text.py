"""JSON lines built by Arrow (`recipe/io/json_text.py`) are json.dumps(row, ensure_ascii=False)'s
bytes, on generated tables: every control character, quotes and backslashes, non-ASCII text,
nulls at every level, integers, booleans, floats with NaN and infinities, lists of text, turns,
and slices of a batch (Arrow offsets that do not start at 0)."""
from __future__ import annotations

import json
import math

import pyarrow as pa
from hypothesis import given, settings, strategies as st

from recipe.engine.tables import MESSAGES
from recipe.io.json_text import json_lines, text_bytes

TEXT = st.text(alphabet=st.sampled_from(list("ab \"\\/") + [chr(c) for c in range(32)] + ["\x7f", "é", "\u2028", "✓",
                                                                                      "\U0001f600", "\ufeff"]),
               max_size=12)
FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.1, -0.0, 1e16, 1e-7, 3.0]))
TURN = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]), "content": TEXT})
KINDS = {
    "text": (pa.string(), TEXT),
    "int": (pa.int64(), st.integers(-2**63, 2**63 - 1)),
    "bool": (pa.bool_(), st.booleans()),
    "float": (pa.float64(), FLOAT),
    "tags": (pa.list_(pa.string()), st.lists(TEXT, max_size=3)),
    "turns": (MESSAGES, st.lists(TURN, max_size=3)),
}


@st.composite
def tables(draw):
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5))
    names = [f"{k}_{i}" if i else "_id" if k == "text" else k for i, k in enumerate(kinds)]
    n = draw(st.integers(0, 6))
    rows = [{name: draw(st.one_of(st.none(), KINDS[k][1])) for name, k in zip(names, kinds)} for _ in range(n)]
    t = pa.Table.from_pylist(rows, schema=pa.schema([(name, KINDS[k][0]) for name, k in zip(names, kinds)]))
    lo = draw(st.integers(0, n))
    return t.slice(lo, draw(st.integers(0, n - lo)))


def _finite(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return {k: _finite(x) for k, x in v.items()} if isinstance(v, dict) else v


@settings(max_examples=400, deadline=None)
@given(tables())
def test_arrow_built_lines_are_json_dumps_bytes(t):
    made = json_lines(t)
    assert made is not None
    lines, bad = made
    rows = t.to_pylist()
    want = "".join(json.dumps(_finite(r), ensure_ascii=False) + "\n" for r in rows)
    assert bytes(text_bytes(lines)).decode("utf-8") == want
    assert bad == [i for i, r in enumerate(rows) if any(isinstance(v, float) and not math.isfinite(v) for v in r.values())]


def test_types_it_does_not_know_are_left_to_the_row_by_row_path():
    assert json_lines(pa.table({"meta": pa.array([{"k": 1}])})) is None
    assert json_lines(pa.table({"v": pa.array([[1, 2]])})) is None
    assert json_lines(pa.table({"j": pa.array(['{"a": 1}'], pa.json_())})) is None


def test_a_sink_writes_the_same_bytes_built_by_arrow_or_row_by_row(tmp_path, monkeypatch):
    # the whole writer, on rows with a nested column (row by row) and without (Arrow)
    from recipe.api import load
    from recipe.io import json_text
    rows = [{"instruction": f"Q{i} \"quoted\"\n\ttab \x01", "output": "é ✓" * i, "meta": {"k": i} if i % 2 else None,
             "score": [0.5, -0.0, 1e300][i % 3]} for i in range(7)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = (f'recipe t\nsource raw = read("{tmp_path / "d.jsonl"}")\nwrite raw to "all.jsonl"\n'
            'write raw to "some.jsonl" (columns=["score", "instruction"])\nwrite raw to "all.json"\n'
            'write raw to "some.json" (columns=["score", "instruction"])\nwrite raw to "some.jsonl.gz" '
            '(columns=["score", "instruction"])\nwrite raw to "named.jsonl" (columns=["_id", "score", "_id"])\n')
    fast = load(text).run(out=tmp_path / "fast", cache_dir=tmp_path / "c")
    monkeypatch.setattr(json_text, "json_lines", lambda b: None)  # every batch row by row
    slow = load(text).run(out=tmp_path / "slow", cache_dir=tmp_path / "c")
    for name in ("all.jsonl", "some.jsonl", "all.json", "some.json", "some.jsonl.gz", "named.jsonl"):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "slow" / name).read_bytes(), name
    assert json.loads((tmp_path / "fast" / "some.json").read_text()) == \
        [json.loads(line) for line in (tmp_path / "fast" / "some.jsonl").read_text().splitlines()]
    some = [json.loads(line) for line in (tmp_path / "fast" / "some.jsonl").read_text().splitlines()]
    assert [list(r) for r in some[:1]] == [["_id", "score", "instruction"]] and len(some) == 7
    assert (tmp_path / "fast" / "named.jsonl").read_text().startswith('{"_id": "raw:0", "score": 0.5}\n')
    assert [s["rows"] for s in fast.manifest["sinks"]] == [s["rows"] for s in slow.manifest["sinks"]] == [7] * 6

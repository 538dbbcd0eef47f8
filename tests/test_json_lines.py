"""set_aside.jsonl is encoded from Arrow batches (recipe/io/json_lines.py); the bytes must be
json.dumps's of each record, whatever the text, nulls and chunks."""
import json

import pyarrow as pa
from hypothesis import given, settings, strategies as st

from recipe.io.json_lines import joined, set_aside_records

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "%s", "%%", '"', "\\", "\n\t\r\x00\x1f", "é ü 漢字 🙂", "\u2028\u2029", "</script>"])


def _nullable(s):
    return st.none() | s


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
    got = set_aside_records(batch, node)
    assert got.to_pylist() == want
    if want:
        assert joined(got, "\n") == "\n".join(want).encode("utf-8")

"""JSON arrays stream (recipe/io/json_array.py): the same records and the same damaged
elements (line and reason) as decoding the whole file, wherever blocks are cut."""
import json

from hypothesis import HealthCheck, example, given, settings, strategies as st

from recipe.io import json_array
from recipe.io.readers import _iter_json, _iter_json_whole

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10) | st.sampled_from(
    ['"', "\\", "\n", "é 漢 🙂", "]", "},\n{", "\ufeff"])
VALUE = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False) | TEXT,
                     lambda v: st.lists(v, max_size=3) | st.dictionaries(TEXT, v, max_size=3), max_leaves=8)
RECORD = st.dictionaries(st.sampled_from(["instruction", "output", "x", "é"]), VALUE, max_size=4)
DAMAGE = ['{"instruction": "c", "output": }', '{"a": "no end}', '{"a" 1}', '{"a": [1, 2}', '{"a": tru}']


def _items(path):
    return [(it.index, it.record, it.error, it.raw) for it in _iter_json(path)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(recs=st.lists(RECORD | VALUE, max_size=6), indent=st.sampled_from([None, 0, 2]),
       ascii_=st.booleans(), damage=st.lists(st.tuples(st.integers(0, 6), st.sampled_from(DAMAGE)), max_size=2),
       block=st.integers(1, 64), bom=st.booleans())
# found by hypothesis: Infinity after a damaged element (the recovery decoded strictly)
@example(recs=[{"instruction": float("inf")}], indent=None, ascii_=False, damage=[(0, DAMAGE[0])], block=1, bom=False)
def test_streamed_array_reads_as_the_whole_file(tmp_path, monkeypatch, recs, indent, ascii_, damage, block, bom):
    parts = [json.dumps(r, ensure_ascii=ascii_) for r in recs]
    for at, bad in damage:  # a damaged element on a line of its own, as the recovery expects
        parts.insert(min(at, len(parts)), bad)
    sep = ",\n  " if damage or indent is not None else ", "
    text = ("\ufeff" if bom else "") + "[\n  " + sep.join(parts) + "\n]\n"
    p = tmp_path / "a.json"
    p.write_text(text, encoding="utf-8")
    monkeypatch.setattr(json_array, "BLOCK", block)
    got = _items(p)
    monkeypatch.setattr(json_array, "BLOCK", 1 << 20)
    assert got == _items(p)  # where blocks are cut changes nothing
    whole = [(it.index, it.record, it.error, it.raw) for it in _iter_json_whole(p)]
    if not damage and not bom:  # the whole-file reader names good records file[i]
        assert got == whole
    else:  # it recovers with file:line for every record; the streamed reader only for damage
        assert [(i, r) for i, r, e, _ in got if e is None] == [(i, r) for i, r, e, _ in whole if e is None]
        # the same damage, line and raw text; the reason is now json's whole message (the
        # whole-file reader cut it at the first colon: "Expecting '" for "Expecting ':' delimiter")
        assert [(i, e.split(" (")[0], raw) for i, r, e, raw in got if e] == \
            [(i, e.split(" (")[0], raw) for i, r, e, raw in whole if e]
        assert len([e for *_, e, _ in got if e]) == len(damage)


def test_a_large_array_is_read_in_blocks(tmp_path, monkeypatch):
    """Memory holds a block and an element: the buffer never holds the whole file."""
    recs = [{"instruction": f"question {i} " + "x" * 200, "output": "y"} for i in range(2000)]
    p = tmp_path / "big.json"
    p.write_text(json.dumps(recs, indent=1))
    monkeypatch.setattr(json_array, "BLOCK", 16 << 10)
    seen = []
    real = json_array._Text.more

    def more(self):
        r = real(self)
        seen.append(len(self.buf))
        return r
    monkeypatch.setattr(json_array._Text, "more", more)
    assert [it.record for it in _iter_json(p)] == recs
    assert p.stat().st_size > 400_000 and max(seen) < 3 * (16 << 10) + 1000


def test_bad_utf8_names_its_byte(tmp_path):
    import pytest
    from recipe.diagnostics import UserError
    p = tmp_path / "u.json"
    p.write_bytes(b'[{"a": "ok"},\n {"a": "\xff"}]')
    with pytest.raises(UserError, match=r"invalid UTF-8 at byte 22"):
        list(_iter_json(p))

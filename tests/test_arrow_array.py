"""The fast path for JSON arrays (io/arrow_array.py) writes the same bytes as the record
reader (io/json_array.py) on generated arrays: pretty-printed and compact elements, extra or
missing commas, damaged elements (after which the record reader takes the rest of the file),
scalars, raw control characters in strings, NaN, chat rows, a byte-order mark, an array never
closed, text after its end; blocks of a few dozen bytes and a scan that stops every few
elements, so every element meets a block's end and a full scan somewhere."""
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import recipe.engine.read as read_mod
import recipe.engine.tables as tables_mod
import recipe.io.arrow_alpaca as fast_mod
import recipe.io.arrow_array as array_mod
from recipe.api import load
from recipe.diagnostics import UserError

from test_arrow_read import CLEAN, WEIRD, _outputs

DAMAGED = st.sampled_from(['{"instruction": "x", "output": }', '{broken', '{"instruction": "a\tb", "output": "c"}',
                           "3", '"a prompt"', "null", "[1, 2]", '{"instruction": "n", "output": NaN}',
                           '{"instruction": "q", "output": "a"}}', '{"instruction": "e\\"q\\\\", "output": "\\n"}'])
CHAT = st.fixed_dictionaries({"conversations": st.lists(st.fixed_dictionaries(
    {"from": st.sampled_from(["human", "gpt", "system", "robot"]), "value": st.text(alphabet="ab \n", max_size=4)}),
    max_size=3)}, optional={"id": st.integers(0, 9)})


def _element(draw_from, indent):
    return draw_from.map(lambda r: json.dumps(r, indent=indent, ensure_ascii=False))


@st.composite
def arrays(draw, rows):
    indent = draw(st.sampled_from([None, 2, 4]))
    elems = draw(st.lists(st.one_of(*[_element(rows, indent)] * 5, DAMAGED), min_size=1, max_size=10))
    seps = [draw(st.sampled_from([", ", ",\n  ", ",,", " ", ",\r\n"])) for _ in elems]
    body = "".join(e + s for e, s in zip(elems, seps))[:-1]
    end = draw(st.sampled_from(["\n]\n", "]", "] trailing text", "", "\n"]))
    cut = draw(st.booleans()) and end == ""
    text = draw(st.sampled_from(["", " \n", "\ufeff"])) + "[\n  " + (body[:-3] if cut else body) + end
    return text


def _both_agree(monkeypatch, tmp, text: str, chunk: int, block: int, room: int) -> None:
    data = tmp / "d.json"
    data.write_text(text)
    recipe = f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\nwrite raw to "y.json" (format="sharegpt")\n'
    said = {}
    with monkeypatch.context() as m:
        m.setattr(fast_mod, "CHUNK", chunk)
        m.setattr(array_mod, "BLOCK", block)
        m.setattr(array_mod, "ROOM", room)
        m.setattr(tables_mod.RowWriter.__init__, "__defaults__", (chunk, 16_384))
        for how in ("fast", "slow"):
            if how == "slow":
                m.setattr(read_mod, "_fast_array", lambda *a: None)
            try:
                load(recipe).run(out=tmp / how, cache_dir=tmp / f"c-{how}")
            except UserError as e:
                said[how] = str(e)
    assert said.get("fast") == said.get("slow"), text
    if "fast" not in said:
        assert _outputs(tmp / "fast") == _outputs(tmp / "slow"), text


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=arrays(st.one_of(*[CLEAN] * 4, WEIRD)), chunk=st.sampled_from([2, 3]), block=st.sampled_from([7, 37, 1 << 20]),
       room=st.sampled_from([1, 2, 64]))
def test_alpaca_arrays_read_alike_on_both_paths(ram_tmp, monkeypatch, text, chunk, block, room):
    first = '{"instruction": "first", "output": "row"}'  # detected as Alpaca rows from the first element
    _both_agree(monkeypatch, ram_tmp.mktemp("aa"), text.replace("[\n  ", "[\n  " + first + ",\n  ", 1),
                chunk, block, room)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=arrays(CHAT), chunk=st.sampled_from([2, 3]), block=st.sampled_from([7, 37]), room=st.sampled_from([1, 64]))
def test_sharegpt_arrays_read_alike_on_both_paths(ram_tmp, monkeypatch, text, chunk, block, room):
    first = '{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}'
    _both_agree(monkeypatch, ram_tmp.mktemp("sa"), text.replace("[\n  ", "[\n  " + first + ",\n  ", 1),
                chunk, block, room)


def test_the_fast_path_is_taken_and_invalid_utf8_is_named_alike(tmp_path, monkeypatch):
    rows = [{"instruction": f"q{i}", "input": "", "output": "a"} for i in range(300)]
    data = tmp_path / "d.json"
    data.write_text(json.dumps(rows, indent=4))
    text = f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n'
    taken = []
    real = tables_mod.RowWriter.add_arrow
    monkeypatch.setattr(tables_mod.RowWriter, "add_arrow", lambda self, t: (taken.append(t.num_rows), real(self, t)))
    res = load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert taken == [300] and res.manifest["sinks"][0]["rows"] == 300
    # a byte that is not UTF-8 past the rows `check` reads: the run fails, naming it alike
    import recipe.io.json_array as stream_mod
    monkeypatch.setattr(stream_mod, "BLOCK", 4096)  # check decodes a block, not the file
    raw = data.read_bytes()
    data.write_bytes(raw.replace(b'"q250"', b'"q\xff50"'))
    said = {}
    for how in ("fast", "slow"):
        if how == "slow":
            monkeypatch.setattr(read_mod, "_fast_array", lambda *a: None)
        with pytest.raises(UserError) as e:
            load(text).run(out=tmp_path / f"u-{how}", cache_dir=tmp_path / f"cu-{how}")
        said[how] = str(e.value)
    assert said["fast"] == said["slow"] and f"invalid UTF-8 at byte {raw.index(b'q250') + 1}" in said["fast"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(CLEAN, CHAT, st.lists(st.text(alphabet='[]{},"\\ab', max_size=5), max_size=3),
                               st.text(alphabet='[]{},"\\ \nab', max_size=6), st.integers(), st.none()), max_size=8),
       indent=st.sampled_from([None, 0, 2]), bom=st.booleans(), block=st.integers(1, 40))
def test_counting_an_arrays_elements_agrees_with_decoding_it(tmp_path, monkeypatch, rows, indent, bom, block):
    """`recipe plan`'s row count of a JSON array before its first read: every element once,
    whatever its strings hold (brackets, commas, escaped quotes) and wherever blocks are cut."""
    p = tmp_path / "a.json"
    p.write_text(("\ufeff" if bom else "") + json.dumps(rows, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setattr(array_mod, "BLOCK", block)
    assert array_mod.count_elements(p) == len(rows)


def test_counting_stops_at_the_arrays_end_and_says_none_for_another_document(tmp_path):
    (tmp_path / "a.json").write_text('[{"a": 1}, {"b": "]"}] [{"c": 3}]')
    (tmp_path / "d.json").write_text('{"Instances": [{"input": "x"}]}')
    assert array_mod.count_elements(tmp_path / "a.json") == 2
    assert array_mod.count_elements(tmp_path / "d.json") is None

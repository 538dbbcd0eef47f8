"""Every field of an input row reaches the output: one whose name recipe uses for a column of
its own (`_id`, `_row`, `messages`/`instruction`/`response` where the format does not read it,
`__...`) is kept as `<name>_in_input`; other `_`-prefixed fields keep their names. Found on a
real try: a labels file keyed by `_id` lost its keys without a word (every `_`-prefixed field
was dropped), so `join` matched nothing."""
import json

import pytest

import recipe.engine.read as read_mod
from recipe.api import load

from conftest import read_jsonl, write_jsonl


def _run(tmp_path, text, name="o"):
    load(text).run(out=tmp_path / name, cache_dir=tmp_path / f"c-{name}", quiet=True)
    return read_jsonl(tmp_path / name / "x.jsonl")


@pytest.mark.parametrize("path", ["fast", "record by record"])
def test_fields_named_as_recipes_own_columns_are_kept_under_another_name(tmp_path, monkeypatch, path):
    if path != "fast":
        monkeypatch.setattr(read_mod, "_fast", lambda *a: None)
    data = write_jsonl(tmp_path / "d.jsonl", [
        {"instruction": f"task {i}", "output": f"answer {i}", "_id": f"doc-{i}", "_source": "web", "_row": i,
         "response": "another answer" if i == 1 else f"answer {i}", "__keep": False} for i in range(3)])
    rows = _run(tmp_path, f'recipe t\nsource raw = read("{data}", format="alpaca")\nwrite raw to "x.jsonl"\n')
    assert [r["_id"] for r in rows] == ["raw:0", "raw:1", "raw:2"]
    assert [r["id_in_input"] for r in rows] == ["doc-0", "doc-1", "doc-2"]
    assert [r["row_in_input"] for r in rows] == [0, 1, 2] and all(r["keep_in_input"] is False for r in rows)
    assert all(r["_source"] == "web" for r in rows)
    # a `response` beside `output`: kept where it says something else, not where it repeats it
    assert [r["response"] for r in rows] == ["answer 0", "answer 1", "answer 2"]
    assert [r["response_in_input"] for r in rows] == [None, "another answer", None]


def test_reading_back_what_recipe_wrote_keeps_the_earlier_ids_and_no_column_twice(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"task {i}", "output": f"answer {i}", "_id": f"doc-{i}"}
                                              for i in range(3)])
    _run(tmp_path, f'recipe a\nsource raw = read("{data}", format="alpaca")\nwrite raw to "x.jsonl"\n', "first")
    again = _run(tmp_path, f'recipe b\nsource back = read("{tmp_path / "first" / "x.jsonl"}")\nwrite back to "x.jsonl"\n')
    assert [r["_id"] for r in again] == ["back:0", "back:1", "back:2"]
    assert [r["id_in_input"] for r in again] == ["doc-0", "doc-1", "doc-2"]  # kept by the first read
    assert [r["id_in_input_2"] for r in again] == ["raw:0", "raw:1", "raw:2"]  # the first run's ids
    assert not any(k.endswith("_in_input") and k.split("_in_input")[0] in ("instruction", "response", "messages")
                   for r in again for k in r)
    assert (tmp_path / "o" / "set_aside.jsonl").read_text() == ""


def test_a_raw_labels_file_keyed_by_id_keeps_its_keys_and_joins_with_id_option(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"task {i}", "output": "a"} for i in range(3)])
    labels = write_jsonl(tmp_path / "l.jsonl", [{"_id": "raw:1", "label": "good", "instruction": "not this one"}])
    rows = _run(tmp_path, f'recipe t\nsource lab = read("{labels}", format="raw")\nwrite lab to "x.jsonl"\n', "lab")
    assert rows[0]["id_in_input"] == "raw:1" and rows[0]["instruction_in_input"] == "not this one"
    joined = _run(tmp_path, f'''recipe t
source raw = read("{data}", format="alpaca")
source lab = read("{labels}", format="raw", id="_id")
x = raw | join(lab, on=_id, how="left", columns=["label"])
write x to "x.jsonl"
''')
    assert [r["label"] for r in joined] == [None, "good", None]


def test_the_two_read_paths_agree_on_renamed_fields(tmp_path, monkeypatch):
    lines = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}],
              "instruction": f"q{i}" if i % 2 else "something else", "_id": i, "_meta": {"k": i} if i == 2 else None}
             for i in range(4)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in lines))
    text = f'recipe t\nsource raw = read("{data}", format="sharegpt")\nwrite raw to "x.jsonl"\n'
    fast = _run(tmp_path, text, "fast")
    monkeypatch.setattr(read_mod, "_fast", lambda *a: None)
    assert _run(tmp_path, text, "slow") == fast
    assert [r.get("instruction_in_input") for r in fast] == ["something else", None, "something else", None]
    assert [r["id_in_input"] for r in fast] == [0, 1, 2, 3]


@pytest.mark.parametrize("path", ["fast", "record by record"])
def test_a_turns_own_fields_are_kept_and_written_back_by_the_chat_formats(tmp_path, monkeypatch, path):
    """OpenAI's `name` on a message and a ShareGPT `weight` (which masks a turn's loss) were
    dropped without a word: the turns as they came are kept as a column and the chat sinks put
    the fields back; a field that is null everywhere (OpenHermes' `weight: null`) keeps nothing."""
    if path != "fast":
        monkeypatch.setattr(read_mod, "_fast", lambda *a: None)
    named = [{"role": "system", "content": "be brief", "name": "ops"}, {"role": "user", "content": "q0", "name": "alice"},
             {"role": "assistant", "content": "a0", "weight": 0}]
    plain = [{"role": "user", "content": "q1", "weight": None}, {"role": "assistant", "content": "a1", "weight": None}]
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": named}, {"messages": plain}])
    text = f'''recipe t
source raw = read("{data}", format="openai")
edited = raw | derive(response = upper(response))
write raw to "x.jsonl"
write raw to "o.jsonl" (format="openai")
write raw to "s.jsonl" (format="sharegpt")
write edited to "e.jsonl" (format="openai")
'''
    rows = _run(tmp_path, text)
    assert rows[0]["messages_in_input"] == named and rows[1]["messages_in_input"] is None
    assert [m for m in rows[0]["messages"]] == [{"role": r, "content": c} for r, c in
                                                 (("system", "be brief"), ("user", "q0"), ("assistant", "a0"))]
    assert [r["messages"] for r in read_jsonl(tmp_path / "o" / "o.jsonl")] == [
        named, [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]]
    assert read_jsonl(tmp_path / "o" / "s.jsonl")[0]["conversations"] == [
        {"from": "system", "value": "be brief", "name": "ops"}, {"from": "human", "value": "q0", "name": "alice"},
        {"from": "gpt", "value": "a0", "weight": 0}]
    # the same turns with a rewritten text: still the speaker's turn
    assert [m.get("name") for m in read_jsonl(tmp_path / "o" / "e.jsonl")[0]["messages"]] == ["ops", "alice", None]


def test_turn_fields_reach_parquet_sinks_and_formats_without_a_place_for_them_say_so(tmp_path):
    """A Parquet sink reads a JSON column as its text: until session 29 the kept turns were
    not recognised there and a ShareGPT Parquet sink dropped every `weight` and `name`. A format
    with no place for them (alpaca, Dolly, prompt/completion) writes the row without them and
    says so in a warning, per field, since a dropped `weight` unmasks a turn."""
    import pyarrow.parquet as pq
    rows = [{"conversations": [{"from": "human", "value": "Hi", "weight": 0}, {"from": "gpt", "value": "Yo", "weight": 1}]},
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    res = load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "s.parquet" (format="sharegpt")\n'
               f'write raw to "a.jsonl" (format="alpaca")\nwrite raw to "s.jsonl" (format="sharegpt")\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    got = pq.read_table(tmp_path / "o" / "s.parquet").to_pylist()
    assert [[t.get("weight") for t in r["conversations"]] for r in got] == [[0, 1], [None, None]]
    assert [r["conversations"] for r in read_jsonl(tmp_path / "o" / "s.jsonl")] == [r["conversations"] for r in rows]
    assert res.manifest["warnings"] == ["write a.jsonl: alpaca has no place for the turns' own `weight` (1 rows): "
                                        "not written (sharegpt and openai keep them)"]
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "a.jsonl")] == ["Hi", "Q"]


def test_a_field_kept_apart_from_a_later_row_on_lands_where_both_paths_put_it(tmp_path, monkeypatch):
    """A `response` beside `output` that repeats it in the first row and differs in the second:
    the record reader adds `response_in_input` where a row first holds something else (after
    `z`), Arrow's path put it where the field stood (before `z`): other bytes for the same rows,
    found by the CSV property test in session 28. Both paths now write the reader's order."""
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "q", "output": "row", "response": "row", "z": 1},
                                               {"instruction": "q2", "output": "x", "response": "other", "z": 2}])
    text = f'recipe t\nsource raw = read("{data}", format="alpaca")\nwrite raw to "x.jsonl"\n'
    fast = _run(tmp_path, text, "fast")
    monkeypatch.setattr(read_mod, "_fast", lambda *a: None)
    _run(tmp_path, text, "slow")
    assert (tmp_path / "fast" / "x.jsonl").read_bytes() == (tmp_path / "slow" / "x.jsonl").read_bytes()
    assert list(fast[1])[-2:] == ["z", "response_in_input"]


def test_a_format_sink_names_the_columns_it_leaves_out(tmp_path, capsys):
    # FastChat's ShareGPT rows carry an `id`; a sharegpt sink wrote only `conversations` without
    # a word. It still writes the format's record, and says which columns it left out.
    rows = [{"id": "a1", "_source": "x", "conversations": [{"from": "human", "value": "Hi"},
                                                           {"from": "gpt", "value": "Yo"}]},
            {"id": "a2", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    res = load(f'recipe t\nsource raw = read("{data}")\nx = raw | derive(n = length(instruction))\n'
               f'write x to "s.json" (format="sharegpt")\nwrite x to "k.json" (format="sharegpt", columns=["id"])\n'
               f'write x to "c.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=False)
    sinks = {s["path"].rsplit("/", 1)[-1]: s for s in res.manifest["sinks"]}
    assert sinks["s.json"]["columns_not_written"] == ["id", "_source", "n"]
    assert "columns_not_written" not in sinks["k.json"] and "columns_not_written" not in sinks["c.jsonl"]
    assert "sharegpt leaves out the columns `id`, `_source`, `n`; `columns=[...]` on the write carries them" in capsys.readouterr().err
    assert [r["id"] for r in json.loads((tmp_path / "o" / "k.json").read_text())] == ["a1", "a2"]

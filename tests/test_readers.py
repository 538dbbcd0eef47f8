"""Readers: every format and file type, auto-detection, and broken input set aside with
exact counts and reasons."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recipe.api import load
from recipe.diagnostics import RecipeError, UserError
from recipe.io.formats import BadRow, canonical, from_row
from recipe.io.readers import iter_rows, list_files

from conftest import read_jsonl, write_jsonl

GOOD = {
    "alpaca": {"instruction": "Add 2 and 3.", "input": "numbers", "output": "5"},
    "sharegpt": {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                                   {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Bye!"}]},
    "openai": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello"}]},
    "dolly": {"instruction": "Who?", "context": "A text.", "response": "Someone.", "category": "qa"},
    "prompt_completion": {"prompt": "2+2=", "completion": "4"},
}
# (bad record, reason fragment) per format
BAD = {
    "alpaca": [({"instruction": "", "output": "x"}, "empty `instruction`"),
               ({"instruction": 5, "output": "x"}, "field `instruction` is int"),
               ({"instruction": "q"}, "missing field `output`")],
    "sharegpt": [({"conversations": 42}, "not a list"),
                 ({"conversations": [{"from": "robot", "value": "x"}]}, "unknown role"),
                 ({"conversations": [{"from": "gpt", "value": "only answer"}]}, "empty instruction")],
    "openai": [({"messages": [{"role": "user"}]}, "lacks text"),
               ({"messages": None}, "not a list")],
    "dolly": [({"instruction": None, "response": "r"}, "missing field `instruction`")],
    "prompt_completion": [({"prompt": "  ", "completion": "c"}, "empty `prompt`")],
}


def read_all(path, fmt=None):
    out = list(iter_rows("src", list_files(str(path)), fmt, log=lambda *_: None))
    good = [(rid, row) for rid, row, reason, _ in out if row is not None]
    bad = [(rid, reason) for rid, row, reason, _ in out if row is None]
    return good, bad


@pytest.mark.parametrize("fmt", sorted(GOOD))
def test_broken_rows_are_set_aside_with_reasons(tmp_path, fmt):
    lines = [json.dumps(GOOD[fmt])]
    for rec, _ in BAD[fmt]:
        lines.append(json.dumps(rec))
    lines += ['{"broken": ', "[1, 2]", json.dumps(GOOD[fmt])]
    raw = "\n".join(lines).encode() + b"\n" + b'{"instruction": "\xff\xfe bad utf8"}\n'
    p = tmp_path / "in.jsonl"
    p.write_bytes(raw)
    good, bad = read_all(p, fmt)
    assert len(good) == 2
    assert len(bad) == len(BAD[fmt]) + 3
    for (rid, reason), (_, frag) in zip(bad, BAD[fmt]):
        assert frag in reason, (reason, frag)
    reasons = [r for _, r in bad]
    assert any("malformed JSON" in r for r in reasons)
    assert any("not a JSON object" in r for r in reasons)
    assert any("invalid UTF-8" in r for r in reasons)
    # ids count every record, good or bad, so they are stable
    assert [rid for rid, _ in good] == ["src:0", f"src:{len(lines) - 1}"]


@pytest.mark.parametrize("fmt", sorted(GOOD))
def test_detection_and_round_trip(tmp_path, fmt):
    p = write_jsonl(tmp_path / "x.jsonl", [GOOD[fmt]])
    logs = []
    rows = list(iter_rows("s", list_files(str(p)), None, log=logs.append))
    assert f"detected format `{fmt}`" in logs[0]
    row = rows[0][1]
    back = from_row(fmt, row, [k for k in ("category",) if k in GOOD[fmt]])
    if fmt == "openai":
        assert back == {"messages": GOOD[fmt]["messages"]}
    else:
        assert back == GOOD[fmt]


def test_a_system_message_a_format_cannot_hold_is_set_aside_not_dropped():
    """Dolly and prompt/completion have no place for a system message, and alpaca holds one, at
    the start: until session 29 the first two wrote the row without it, and alpaca kept only
    the first of several."""
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."}]
    row = canonical("openai", {"messages": msgs})
    assert from_row("alpaca", row)["system"] == "You are terse."
    for fmt in ("dolly", "prompt_completion"):
        with pytest.raises(BadRow, match=f"{fmt} has no place for the system message \\('You are terse.'\\)"):
            from_row(fmt, row)
    two = canonical("openai", {"messages": msgs[:2] + [{"role": "system", "content": "Be kind."}] + msgs[2:]})
    with pytest.raises(BadRow, match="2 system messages; alpaca holds one, first"):
        from_row("alpaca", two)
    late = canonical("openai", {"messages": msgs[1:] + [{"role": "system", "content": "Now be kind."},
                                                        {"role": "user", "content": "Bye?"},
                                                        {"role": "assistant", "content": "Bye."}]})
    with pytest.raises(BadRow, match="a system message after the first turn"):
        from_row("alpaca", late)
    assert from_row("sharegpt", two)["conversations"][2] == {"from": "system", "value": "Be kind."}


def test_an_input_joined_to_the_instruction_is_split_back_in_either_format():
    """Dolly's `context` and Alpaca's `input` are the same field: each format written from the
    other's rows puts it back in its own place (until session 29 Dolly wrote it inside the
    instruction and an empty `context`)."""
    dolly = canonical("dolly", GOOD["dolly"])
    assert from_row("alpaca", dolly) == {"instruction": "Who?", "input": "A text.", "output": "Someone."}
    alpaca = canonical("alpaca", {"instruction": "Sum", "input": "2 and 3", "output": "5"})
    assert from_row("dolly", alpaca) == {"instruction": "Sum", "context": "2 and 3", "response": "5"}
    assert from_row("prompt_completion", alpaca) == {"prompt": "Sum\n\n2 and 3", "completion": "5"}
    # a multi-turn alpaca row with a system prompt and an input: the same record, keys in order
    full = {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "Be exact.",
            "history": [["Hi", "Hello!"], ["How are you?", "Fine."]]}
    back = from_row("alpaca", canonical("alpaca", full))
    assert back == full and list(back) == list(full)


def test_multi_turn_conversions():
    row = canonical("sharegpt", GOOD["sharegpt"])
    assert row["instruction"] == "Hi" and row["response"] == "Hello!"
    alp = from_row("alpaca", row)
    assert alp["history"] == [["Hi", "Hello!"]] and alp["instruction"] == "Bye" and alp["output"] == "Bye!"
    assert canonical("alpaca", alp)["messages"] == row["messages"]
    with pytest.raises(BadRow, match="2 turns"):
        from_row("prompt_completion", row)


def test_file_types_directory_and_glob(tmp_path):
    recs = [GOOD["alpaca"], {"instruction": "Second", "input": "", "output": "two"}]
    d = tmp_path / "d"
    d.mkdir()
    write_jsonl(d / "a.jsonl", recs)
    (d / "b.json").write_text(json.dumps(recs))
    pq.write_table(pa.Table.from_pylist(recs), d / "c.parquet")
    (d / "e.csv").write_text("instruction,input,output\nAdd 2 and 3.,numbers,5\n\"Second, quoted\",,two\n")
    good, bad = read_all(d)
    assert len(good) == 8 and not bad
    assert good[0][0] == "src:a.jsonl:0"
    good2, _ = read_all(str(d / "*.json*"))
    assert len(good2) == 4


def test_json_array_with_a_broken_element_is_recovered(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": },\n'
                 '  {"instruction": "d", "output": "e"}\n]\n')
    good, bad = read_all(p)
    assert [r["instruction"] for _, r in good] == ["a", "d"]
    assert len(bad) == 1 and "x.json:3: malformed JSON" in bad[0][1]


def test_nan_and_super_natural_instructions(tmp_path):
    p = tmp_path / "n.jsonl"
    p.write_text('{"instruction": "a", "output": "b", "score": NaN}\n{"instruction": "a", "output": "b", "score": 1.5}\n')
    good, bad = read_all(p)
    assert len(good) == 1 and "NaN" in bad[0][1]
    task = {"Definition": ["Answer the question."], "Categories": ["Arithmetic"], "Input_language": ["English"],
            "Positive Examples": [{"input": "1+1?", "output": "2", "explanation": "One and one."}],
            "Instances": [{"id": "t-1", "input": "2+2?", "output": ["4"]}, {"id": "t-2", "input": "3+3?", "output": ["6", "six"]}]}
    t = tmp_path / "task001_x.json"
    t.write_text(json.dumps(task))
    good, bad = read_all(t)
    row = good[0][1]
    assert row["instruction"] == "Answer the question.\n\n2+2?" and row["response"] == "4"
    assert row["task"] == "task001_x"
    # the task's fields on every row, and every acceptable output where there are several
    assert row["categories"] == ["Arithmetic"] and row["input_language"] == ["English"] and "outputs" not in row
    assert row["positive_examples"] == [{"input": "1+1?", "output": "2", "explanation": "One and one."}]
    assert good[1][1]["response"] == "6" and good[1][1]["outputs"] == ["6", "six"]
    said = []  # the format said is the file's, not its instances' (they are Alpaca records)
    list(iter_rows("src", [t], None, log=said.append))
    assert said == ["src: detected format `ni` (from keys `Definition`, `Instances`)"]


@pytest.mark.parametrize("make,msg", [
    (lambda p: None, "input not found"),
    (lambda p: p.write_text(""), "input is empty"),
    (lambda p: p.mkdir(), "directory with no readable files"),
])
def test_bad_input_paths_are_clear_errors(tmp_path, make, msg):
    p = tmp_path / "in.jsonl"
    make(p)
    with pytest.raises(UserError, match=msg):
        list_files(str(p))


def test_run_counts_every_bad_row(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join([json.dumps(GOOD["alpaca"]), "{oops", json.dumps({"instruction": ""}),
                            json.dumps({"instruction": "x", "output": "y", "n": 1}),
                            json.dumps({"instruction": "z", "output": "w", "n": "text"})]) + "\n")
    r = load(f'recipe t\nsource raw = read("{p}")\nwrite raw to "o.jsonl"\n')
    res = r.run(out=tmp_path / "out", cache_dir=tmp_path / "c")
    node = res.manifest["nodes"][0]
    assert (node["rows_created"], node["rows_out"], node["rows_set_aside"]) == (5, 3, 2)
    aside = read_jsonl(tmp_path / "out" / "set_aside.jsonl")
    assert [a["_id"] for a in aside] == ["raw:1", "raw:2"]
    assert aside[0]["raw"] == "{oops"
    # a column with mixed types keeps every value as it was (as text, the 1 came out as "1")
    assert [r.get("n") for r in read_jsonl(tmp_path / "out" / "o.jsonl")] == [None, 1, "text"]


def test_type_change_after_the_first_chunk_widens_the_column(tmp_path):
    from recipe.engine.tables import RowWriter
    import duckdb
    con = duckdb.connect()
    w = RowWriter(con, "t", chunk=2)
    for i, v in enumerate([1, 2, 3, "x"]):
        w.add(f"r{i}", {"messages": [], "instruction": "i", "response": "r", "n": v})
    w.close()
    assert con.execute("SELECT typeof(n) FROM t LIMIT 1").fetchone()[0] == "JSON"  # each value its JSON
    assert con.execute("SELECT n FROM t ORDER BY _row").fetchall() == [("1",), ("2",), ("3",), ('"x"',)]
    assert w.rejected == []


def test_oasst_tree_self_instruct_and_prompt_only(tmp_path):
    tree = {"message_tree_id": "t1", "prompt": {"text": "Hi?", "role": "prompter", "replies": [
        {"text": "worse", "role": "assistant", "rank": 1, "replies": []},
        {"text": "best", "role": "assistant", "rank": 0, "replies": [
            {"text": "thanks", "role": "prompter", "replies": []}]}]}}
    seed = {"id": "s1", "instruction": "Add.", "instances": [{"input": "1 2", "output": "3"}], "is_classification": False}
    p = write_jsonl(tmp_path / "t.jsonl", [tree])
    (good, bad) = read_all(p)
    assert [m["content"] for m in good[0][1]["messages"]] == ["Hi?", "best"]  # "thanks" was never answered
    (good, _) = read_all(write_jsonl(tmp_path / "s.jsonl", [seed]))
    assert good[0][1]["instruction"] == "Add.\n\n1 2" and good[0][1]["response"] == "3" and good[0][1]["input"] == "1 2"
    assert "instances" not in good[0][1]
    # a task of several instances: the row is the first, the column keeps them all
    many = seed | {"instances": [{"input": "1 2", "output": "3"}, {"input": "2 2", "output": "4"}]}
    (good, _) = read_all(write_jsonl(tmp_path / "m.jsonl", [many]))
    assert good[0][1]["response"] == "3" and good[0][1]["instances"] == many["instances"]
    (good, _) = read_all(write_jsonl(tmp_path / "q.jsonl", [{"question_id": 1, "turns": ["a?", "b?"]},
                                                            {"question_id": 2, "turns": ["c?"]}]))
    assert good[0][1]["instruction"] == "a?" and good[0][1]["response"] == "" and good[0][1]["turns"] == ["a?", "b?"]


def test_lima_conversations_of_plain_strings(tmp_path):
    rows = [{"conversations": ["Q1?", "A1.", "Q2?", "A2."], "source": "stackexchange"},
            {"conversations": "Only a prompt?", "source": "test"},
            {"conversations": ["Q?", {"from": "gpt", "value": "mixed"}]}]
    (good, bad) = read_all(write_jsonl(tmp_path / "lima.jsonl", rows))
    assert [g[1]["messages"] for g in good] == [
        [{"role": "user", "content": "Q1?"}, {"role": "assistant", "content": "A1."},
         {"role": "user", "content": "Q2?"}, {"role": "assistant", "content": "A2."}],
        [{"role": "user", "content": "Only a prompt?"}]]
    assert good[0][1]["instruction"] == "Q1?" and good[0][1]["response"] == "A1." and good[1][1]["response"] == ""
    assert len(bad) == 1 and "turn 0" in bad[0][1]


def test_json_object_with_nan_metadata(tmp_path):
    t = tmp_path / "task9_x.json"
    t.write_text('{"Definition": ["Say yes."], "URL": [NaN], "Instances": [{"id": "a", "input": "q", "output": ["yes"]}]}')
    good, bad = read_all(t)
    assert len(good) == 1 and not bad


def test_schemas_widen_instead_of_setting_rows_aside(tmp_path):
    """A column first seen after the first 20,000 rows, and values whose type conflicts with
    the earlier rows', are kept: the column is added (earlier rows null) or widened."""
    import json
    from recipe.api import load
    rows = [{"instruction": f"q{i}", "output": "a", "n": i, "flag": True, "tags": ["x"]} for i in range(20_003)]
    rows[20_001]["late"] = "here"
    rows[20_002].update({"n": 2.5, "flag": "maybe", "tags": "not a list"})
    data = tmp_path / "w.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["nodes"][0]["rows_set_aside"] == 0 and res.manifest["sinks"][0]["rows"] == 20_003
    out = [json.loads(l) for l in (tmp_path / "o" / "x.jsonl").read_text().splitlines()]
    assert out[0]["late"] is None and out[20_001]["late"] == "here"
    assert out[5]["n"] == 5.0 and out[20_002]["n"] == 2.5
    # other conflicts keep each value as itself (until session 27: text, `"true"` and `"[\"x\"]"`)
    assert out[5]["flag"] is True and out[20_002]["flag"] == "maybe"
    assert out[5]["tags"] == ["x"] and out[20_002]["tags"] == "not a list"


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_what_the_csv_sink_writes_reads_back_as_the_same_rows(tmp_path, suffix):
    """CSV holds no lists: the sink writes conversations as JSON text, and the reader turns
    the fields a format needs as lists back into lists (a text that merely looks like a list
    stays text), so canonical, ShareGPT and multi-turn Alpaca rows survive the round trip."""
    rows = [GOOD["openai"], GOOD["sharegpt"], {"instruction": "[1, 2] sorted?", "output": "[1, 2]"},
            {"instruction": "Then?", "output": "Done.", "history": [["First?", "Yes."]]}]
    mixed = tmp_path / "m"
    mixed.mkdir()
    for i, rec in enumerate(rows):  # one format per file: the record reader detects per file
        write_jsonl(mixed / f"{i}.jsonl", [rec])
    load(f'recipe t\nsource raw = read("{mixed}")\nwrite raw to "a.jsonl"\nwrite raw to "a.{suffix}"\n'
         f'write raw to "s.{suffix}" (format="sharegpt")\nwrite raw to "p.{suffix}" (format="alpaca")\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    want = [row["messages"] for _, row in read_all(tmp_path / "o" / "a.jsonl")[0]]
    assert len(want) == 4 and want[2][0]["content"] == "[1, 2] sorted?"
    for name in ("a", "s", "p"):
        good, bad = read_all(tmp_path / "o" / f"{name}.{suffix}")
        assert bad == [] and [row["messages"] for _, row in good] == want, name


def test_the_summary_says_which_formats_were_detected(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    write_jsonl(d / "a.jsonl", [GOOD["alpaca"]])
    write_jsonl(d / "b.jsonl", [GOOD["sharegpt"]])
    res = load(f'recipe t\nsource raw = read("{d}")\nsource given = read("{d / "a.jsonl"}", format="alpaca")\n'
               f'write raw to "o.jsonl"\nwrite given to "g.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    stats = {n["name"]: n["stats"]["format"] for n in res.manifest["nodes"]}
    assert stats == {"raw": "alpaca, sharegpt (detected)", "given": "alpaca"}


def test_instruction_input_response_rows_keep_their_input():
    """Self-instruct's model predictions (and many Alpaca variants) are instruction, input,
    response: read as Dolly rows, whose input is named `context`; the user turn must hold the
    input all the same, and the column stays for writers that split it back out."""
    rec = {"instruction": "Find the CSS code of the color.", "input": "A light red", "response": "#FFCC66"}
    assert canonical("dolly", rec)["messages"][0]["content"] == "Find the CSS code of the color.\n\nA light red"
    assert canonical("dolly", rec)["input"] == "A light red"
    both = {**rec, "context": "Dolly's own"}
    assert canonical("dolly", both)["messages"][0]["content"].endswith("\n\nDolly's own")
    back = from_row("alpaca", canonical("dolly", rec))
    assert (back["instruction"], back["input"], back["output"]) == (rec["instruction"], "A light red", "#FFCC66")


def test_prompt_lists_questions_with_answers_and_oasst_seed_conversations(tmp_path):
    """Files a user meets in the wild read as what they are: JSON strings as prompts,
    question/answer rows as two turns, and the OASST backend's seed messages (linked by
    `parent_message_id`) as conversations, not as one instruction per message."""
    p = tmp_path / "prompts.jsonl"
    p.write_text('"How do I plant tulips?"\n"Why is the sky blue?"\n')
    good, bad = read_all(p)
    assert not bad and [g[1]["messages"] for g in good] == [
        [{"role": "user", "content": "How do I plant tulips?"}], [{"role": "user", "content": "Why is the sky blue?"}]]
    good, bad = read_all(write_jsonl(tmp_path / "gsm.jsonl", [{"question": "2+2?", "answer": "4", "src": "g"}]))
    assert not bad and good[0][1]["instruction"] == "2+2?" and good[0][1]["response"] == "4"
    assert good[0][1]["src"] == "g" and "answer" not in good[0][1]
    seed = [{"task_message_id": "t1", "user_message_id": "m1", "parent_message_id": None, "text": "Teach me?", "role": "prompter"},
            {"task_message_id": "t2", "user_message_id": "m2", "parent_message_id": "m1", "text": "Sure.", "role": "assistant"},
            {"task_message_id": "t3", "user_message_id": "m3", "parent_message_id": "m2", "text": "Rules?", "role": "prompter"},
            {"task_message_id": "t4", "user_message_id": "m4", "parent_message_id": None, "text": "Hello?", "role": "prompter"}]
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    good, bad = read_all(tmp_path / "seed.json")
    assert [[m["role"] + ":" + m["content"] for m in g[1]["messages"]] for g in good] == [
        ["user:Teach me?", "assistant:Sure."], ["user:Hello?"]]
    assert len(bad) == 2 and all("conversation that starts at message m1" in why for _, why in bad)


def test_answers_and_assistant_messages_are_not_read_as_prompts(tmp_path):
    """A file of model answers (`text` beside `answer_id`) is not detected as prompts; named
    instruction_only, its rows are set aside with the reason, as is an assistant's message."""
    answers = write_jsonl(tmp_path / "a.jsonl", [{"answer_id": "x", "model_id": "m", "question_id": 1, "text": "Tips."}])
    with pytest.raises(UserError, match="look like answers"):
        read_all(answers)
    good, bad = read_all(answers, "instruction_only")
    assert not good and "not a prompt: `answer_id`, `model_id`" in bad[0][1]
    msgs = write_jsonl(tmp_path / "m.jsonl", [{"role": "user", "text": "Hi?"}, {"role": "assistant", "text": "Hello."}])
    good, bad = read_all(msgs)
    assert [g[1]["instruction"] for g in good] == ["Hi?"] and "`role` = 'assistant'" in bad[0][1]


def _save_to_disk(folder, rows, shards, order=None, file_format=False):
    """A folder laid out as `datasets`' save_to_disk writes it: Arrow IPC stream files (or
    here, optionally, the file format) listed in state.json, and dataset_info.json."""
    import pyarrow as pa
    folder.mkdir(parents=True)
    t = pa.Table.from_pylist(rows)
    per = -(-len(rows) // shards)
    names = [f"data-{s:05d}-of-{shards:05d}.arrow" for s in range(shards)]
    for s, name in enumerate(names):
        with pa.OSFile(str(folder / name), "wb") as f:
            w = pa.ipc.new_file(f, t.schema) if file_format else pa.ipc.new_stream(f, t.schema)
            w.write_table(t.slice(s * per, per), max_chunksize=2)
            w.close()
    listed = [names[i] for i in (order or range(shards))]
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in listed], "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {}}))


def test_a_hugging_face_save_to_disk_folder_reads_in_its_state_files_order(tmp_path):
    """save_to_disk's Arrow files are read in the order state.json lists them (here not
    their names' order), its JSON metadata is never read as rows, the Arrow file format reads
    too, a DatasetDict folder is an error naming its splits, a damaged file an error."""
    rows = [{"instruction": f"q{i}", "input": "", "output": f"a{i}", "n": i} for i in range(7)]
    _save_to_disk(tmp_path / "ds", rows, 2, order=[1, 0])
    assert [f.name for f in list_files(str(tmp_path / "ds"))] == ["data-00001-of-00002.arrow", "data-00000-of-00002.arrow"]
    res = load(f'recipe t\nsource raw = read("{tmp_path / "ds"}")\nwrite raw to "o.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [r["n"] for r in read_jsonl(tmp_path / "o" / "o.jsonl")] == [4, 5, 6, 0, 1, 2, 3]
    assert res.manifest["nodes"][0]["rows_set_aside"] == 0
    _save_to_disk(tmp_path / "parent" / "train", rows[:3], 1, file_format=True)  # a folder holding one: no metadata rows
    assert [f.name for f in list_files(str(tmp_path / "parent"))] == ["data-00000-of-00001.arrow"]
    assert [it.record["n"] for it in _items(list_files(str(tmp_path / "parent"))[0])] == [0, 1, 2]
    (tmp_path / "parent" / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(UserError, match=r"DatasetDict \(splits: train, test\); read one split's folder"):
        list_files(str(tmp_path / "parent"))
    bad = tmp_path / "bad.arrow"
    bad.write_bytes(b"not arrow at all")
    with pytest.raises(UserError, match="not a readable Arrow file"):
        _items(bad)


def _items(path):
    from recipe.io.readers import iter_items
    return list(iter_items(path))


def test_a_source_whose_files_mix_dataset_splits_is_told_so():
    """Hub shard names or split-named folders: several splits are named; one is not."""
    from pathlib import Path
    from recipe.io.hf_disk import mixed_splits
    hub = [Path(f"d/{s}-0000{i}-of-00002.parquet") for s in ("train", "test") for i in (0, 1)]
    assert mixed_splits(hub) == ["train", "test"]
    assert mixed_splits(hub[:2]) == []
    assert mixed_splits([Path("d/train/a.jsonl"), Path("d/validation/b.jsonl")]) == ["train", "validation"]
    assert mixed_splits([Path("d/a.jsonl"), Path("d/b.jsonl"), Path("x/train/c.jsonl")]) == []


def test_a_folder_of_files_in_one_format_says_its_detection_once(tmp_path, capsys):
    """Each file's format is detected from its own first record; a folder of many files says
    so once per format (it printed a line per file: 294 lines for the P3 folder)."""
    from recipe.engine.read import collapse_detected
    d = tmp_path / "many"
    d.mkdir()
    for i in range(5):
        write_jsonl(d / f"f{i}.jsonl", [{"prompt": f"p{i}", "completion": "c"}])
    write_jsonl(d / "g.jsonl", [{"instruction": "i", "output": "o"}])
    load(f'recipe t\nsource raw = read("{d}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=False)
    got = capsys.readouterr()
    lines = [x.strip() for x in (got.out + got.err).splitlines() if "detected format" in x]
    assert lines == ["raw: detected format `prompt_completion` (from keys `prompt`, `completion`) in 5 files "
                     "(f0.jsonl, ...)", "raw: detected format `alpaca` (from keys `instruction`, `output`) in g.jsonl"]
    assert collapse_detected(["s: detected format `a` (from x) in 1.jsonl", "other", "s: detected format `a` (from x) "
                              "in 2.jsonl"]) == ["s: detected format `a` (from x) in 1.jsonl, 2.jsonl", "other"]


def test_a_csv_header_that_repeats_or_omits_names_loses_no_column(tmp_path):
    # a repeated name kept only its last column (the first answer was lost); an unnamed one
    # (pandas' index, a trailing comma) was named by DuckDB after its position (`v4`)
    p = tmp_path / "d.csv"
    p.write_text(",instruction,output,output,\n0,q1,a1,b1,x\n")
    good, bad = read_all(p)
    assert bad == [] and good[0][1]["response"] == "a1"
    assert {k: v for k, v in good[0][1].items() if k not in ("messages", "instruction", "response")} == {
        "column_1": "0", "output_2": "b1", "column_5": "x"}


def test_openai_content_parts_are_read_and_tool_use_is_set_aside_with_its_reason(tmp_path):
    parts = lambda *ts: [{"type": "text", "text": t} for t in ts]  # noqa: E731
    rows = [{"messages": [{"role": "system", "content": parts("Be brief.")},
                          {"role": "user", "content": parts("What is ", "2+2?")},
                          {"role": "assistant", "content": parts("4")}]},
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}]},
                          {"role": "assistant", "content": "A cat."}]},
            {"messages": [{"role": "user", "content": "Weather?"},
                          {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
                          {"role": "tool", "content": "sunny", "tool_call_id": "1"},
                          {"role": "assistant", "content": "Sunny."}]},
            {"conversations": [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "{}"},
                               {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}]
    (good, bad) = read_all(write_jsonl(tmp_path / "oai.jsonl", rows[:3] + rows[4:]))
    assert good[0][1]["messages"] == [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "What is 2+2?"},
                                      {"role": "assistant", "content": "4"}]
    assert good[0][1]["instruction"] == "What is 2+2?" and good[1][1]["response"] == "Hello."
    reasons = [b[1] for b in bad]
    assert len(bad) == 2 and "holds a `image_url` part: only text is supported" in reasons[0]
    assert "tool call" in reasons[1]
    (good, bad) = read_all(write_jsonl(tmp_path / "sg.jsonl", [rows[3]]))
    assert not good and "tool call" in bad[0][1]
    # a whole file of content parts takes the same path as its rows (Arrow's reader falls back)
    f = write_jsonl(tmp_path / "all_parts.jsonl", [rows[0]] * 3)
    res = load(f'recipe t\nsource raw = read("{f}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)
    assert res.manifest["nodes"][0]["rows_out"] == 3
    assert read_jsonl(tmp_path / "o" / "x.jsonl")[2]["messages"][1]["content"] == "What is 2+2?"


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_a_utf16_file_is_one_clear_error_not_every_row_set_aside(tmp_path, suffix):
    p = tmp_path / f"in{suffix}"
    body = ('instruction,output\nSay 1,1\n' if suffix == ".csv" else
            json.dumps({"instruction": "Say 1", "output": "1"}) + "\n")
    p.write_text(body, encoding="utf-16")  # Windows tools write it with a byte-order mark
    with pytest.raises(RecipeError, match=r"the file is UTF-16 encoded .*iconv -f UTF-16 -t UTF-8"):  # check's E0903
        load(f'recipe t\nsource raw = read("{p}")\nwrite raw to "x.jsonl"\n').run(
            out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)
    q = tmp_path / f"sig{suffix}"
    q.write_text(body, encoding="utf-8-sig")  # UTF-8 with a byte-order mark reads as UTF-8
    res = load(f'recipe t\nsource raw = read("{q}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o2", cache_dir=tmp_path / "c", quiet=True)
    assert res.manifest["nodes"][0]["rows_out"] == 1


def test_field_names_that_differ_only_in_case_are_one_column(tmp_path):
    """SQL names ignore case. WizardLM's test set has `Instruction`: read raw, it was DuckDB's
    `Instruction_1` in the output while `Instruction` in an expression read the row's own empty
    `instruction` (every row set aside, `check` silent); a folder whose files spell a field
    `Label` and `label` stopped the read. Now: recipe's own names in any case are kept as
    `<name>_in_input`, one record's `Text` and `text` are `Text` and `text_2`, and one field
    spelled two ways across rows is one column, named as first seen; `check` knows the same."""
    d = tmp_path / "d"
    d.mkdir()
    write_jsonl(d / "1.jsonl", [{"Instruction": "Add 2 and 2.", "Label": "x", "Text": "T", "text": "t"}])
    write_jsonl(d / "2.jsonl", [{"Instruction": "Name a colour.", "label": "y"}])
    text = (f'recipe t\nsource raw = read("{d}", format="raw")\n'
            'x = raw | filter(length(Instruction_in_input) > 0 and Label != "z")\nwrite x to "x.jsonl"\n')
    r = load(text)
    assert not [d_ for d_ in r.diagnose().diagnostics if d_.is_error]
    assert {"Instruction_in_input", "Label", "Text", "text_2"} <= r.check().columns["raw"]
    r.run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    out = read_jsonl(tmp_path / "o" / "x.jsonl")
    assert [(o["Instruction_in_input"], o["Label"]) for o in out] == [("Add 2 and 2.", "x"), ("Name a colour.", "y")]
    assert (out[0]["Text"], out[0]["text_2"]) == ("T", "t") and "label" not in out[1]
    codes = [d_.code for d_ in load(text.replace("Instruction_in_input", "Instruction")).diagnose().diagnostics]
    assert codes == ["E0401"]  # its hint names `Instruction_in_input`


def test_a_csv_header_that_looks_like_a_record_is_doubted(tmp_path):
    """FLAN's CoT TSVs have no header row: read without `columns`, the first question became a
    column name and the first record was lost, silently. `check` now warns (W0906); ordinary
    headers (short names, `column_3` for an unnamed one) raise no doubt."""
    from recipe.io.csv_header import header_doubt
    (tmp_path / "h.csv").write_text("instruction,output,Source Dataset,,score_2\nq,a,x,1,2\n")
    assert header_doubt(str(tmp_path / "h.csv")) is None
    (tmp_path / "n.tsv").write_text("What is 2 + 2?\t4\tTwo and two make four.\nq\ta\tb\n")
    why, fields = header_doubt(str(tmp_path / "n.tsv"))
    assert fields == 3 and "`What is 2 + 2?`" in why
    (tmp_path / "k.csv").write_text("12,0.5\n3,4\n")  # numbers are no names
    assert header_doubt(str(tmp_path / "k.csv"))[1] == 2
    text = f'recipe t\nsource s = read("{tmp_path / "n.tsv"}", format="raw"{{opt}})\nwrite s to "s.jsonl"\n'
    assert [d.code for d in load(text.replace("{opt}", "")).diagnose().diagnostics] == ["W0906"]
    assert load(text.replace("{opt}", ', columns=["q", "a", "why"]')).diagnose().diagnostics == []


def test_a_lone_surrogate_escape_sets_its_row_aside(tmp_path):
    """JSON's `\\ud800` escape decodes to half a surrogate pair, which has no UTF-8: one such
    line stopped the whole read mid-run (UnicodeEncodeError). Now its row is set aside saying
    where (nested values and JSON arrays too); a whole pair is an emoji and reads."""
    lines = ['{"instruction": "ok", "output": "a"}', '{"instruction": "lone \\ud800 x", "output": "b"}',
             '{"instruction": "pair \\ud83d\\ude00", "output": "c"}',
             '{"instruction": "deep", "output": "d", "meta": {"k": ["x", "\\udc00"]}}']
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n")
    load(f'recipe t\nsource s = read("{tmp_path / "s.jsonl"}")\nwrite s to "s.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "s.jsonl")] == ["ok", "pair \U0001F600"]
    aside = {a["_id"]: a["reason"] for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl")}
    assert aside == {"s:1": "s.jsonl:2: field `instruction` holds `\\ud800`, half of a UTF-16 surrogate pair "
                            "without its other half: no character",
                     "s:3": "s.jsonl:4: field `meta` holds `\\udc00`, half of a UTF-16 surrogate pair "
                            "without its other half: no character"}


@pytest.mark.parametrize("container", ["jsonl", "json", "pretty json"])
def test_a_field_named_twice_with_two_values_sets_its_row_aside(tmp_path, container):
    """`{"instruction": "q", "instruction": "other"}`: json.loads kept the last value without
    a word (Arrow's reader stops on it; other JSON readers keep the first): now the row is set
    aside saying which field, nested objects too, in every container; the same value twice is
    that value. A pretty-printed array element is set aside whole, and the next one reads."""
    recs = ['{"instruction": "q0", "output": "a", "instruction": "other"}',
            '{"instruction": "q1", "output": "a", "output": "a"}',
            '{"instruction": "q2", "output": "a", "meta": [{"k": 1, "k": 2}]}',
            '{"instruction": "q3", "output": "a"}']
    if container == "pretty json":  # elements over several lines, the second field in another line
        recs[2] = '{\n  "instruction": "q2",\n  "output": "a",\n  "meta": [\n    {"k": 1,\n     "k": 2}\n  ]\n}'
    if container == "jsonl":
        (tmp_path / "d.jsonl").write_text("\n".join(recs * 10) + "\n")
    else:
        (tmp_path / "d.json").write_text("[\n" + ",\n".join(recs * 10) + "\n]\n")
    name = "d.jsonl" if container == "jsonl" else "d.json"
    load(f'recipe t\nsource s = read("{tmp_path / name}", format="alpaca")\nwrite s to "s.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    kept = [r["instruction"] for r in read_jsonl(tmp_path / "o" / "s.jsonl")]
    reasons = [a["reason"].split(": ", 1)[1] for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl")]
    assert kept == ["q1", "q3"] * 10
    assert reasons == ["malformed JSON (field `instruction` given twice, with different values)",
                       "malformed JSON (field `k` given twice, with different values)"] * 10


def test_a_field_named_empty_is_named_by_its_place(tmp_path):
    """A JSON key "" was a column DuckDB named `v4` (its position in the table): now
    `column_<position in the record>`, as a CSV header's unnamed column, on both read paths."""
    rows = [{"instruction": f"q{i}", "output": "a", "": f"e{i}", "my col": i} for i in range(40)]
    load(f'recipe t\nsource s = read("{write_jsonl(tmp_path / "k.jsonl", rows)}")\nwrite s to "s.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    out = read_jsonl(tmp_path / "o" / "s.jsonl")
    assert [(r["column_3"], r["my col"]) for r in out] == [(f"e{i}", i) for i in range(40)] and "v4" not in out[0]


def test_whole_numbers_beyond_64_bits_stay_exact(tmp_path):
    """Arrow's JSON reader reads a whole number beyond 64 bits as a float (the fast path wrote
    1.2345678901234568e+29 for 123456789012345678901234567890, and 5.0 for 5 beside it); the
    record reader stopped the run (OverflowError). Such a column is now JSON: every value exact."""
    big = 123456789012345678901234567890
    rows = [{"instruction": f"q{i}", "output": "a", "n": big if i == 20 else i, "f": 2.5} for i in range(40)]
    res = load(f'recipe t\nsource s = read("{write_jsonl(tmp_path / "n.jsonl", rows)}")\n'
               'x = s | filter(n > 30)\nwrite s to "s.jsonl"\nwrite x to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [r["n"] for r in read_jsonl(tmp_path / "o" / "s.jsonl")] == [r["n"] for r in rows]
    assert [r["n"] for r in read_jsonl(tmp_path / "o" / "x.jsonl")] == [big] + list(range(31, 40))
    assert res.manifest["nodes"][0]["rows_set_aside"] == 0
    import duckdb
    from recipe.engine.tables import RowWriter
    con = duckdb.connect()
    w = RowWriter(con, "t", chunk=2)
    for i, v in enumerate([5, 2.5, 2 ** 70, 7]):  # int, widened to float, then past 64 bits: JSON
        w.add(f"r{i}", {"messages": [], "instruction": "i", "response": "r", "n": v})
    w.close()
    assert [v for (v,) in con.execute("SELECT n FROM t ORDER BY _row").fetchall()] == ["5.0", "2.5", str(2 ** 70), "7"]


def test_parquet_values_json_has_no_type_for_are_made_plain(tmp_path):
    """A Parquet timestamp column stopped the read ("datetime is not JSON serializable"):
    dates and times are their ISO 8601 text, durations seconds, decimals numbers, bytes their
    text (base64 when not UTF-8), nested ones too; a uint64 past 64 bits stays exact."""
    import datetime
    import decimal
    t = pa.table({"instruction": ["q1", "q2"], "output": ["a", "b"],
                  "ts": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("us")),
                  "d": [datetime.date(2024, 1, 2), datetime.date(2023, 5, 6)],
                  "dur": pa.array([datetime.timedelta(seconds=90), None], pa.duration("s")),
                  "dec": pa.array([decimal.Decimal("1.25"), decimal.Decimal("3.00")], pa.decimal128(5, 2)),
                  "bin": pa.array([b"hi", b"\xff\x00"], pa.binary()),
                  "u64": pa.array([2 ** 64 - 1, 3], pa.uint64()),
                  "nest": [{"at": datetime.date(2020, 1, 1)}, None]})
    pq.write_table(t, tmp_path / "t.parquet")
    load(f'recipe t\nsource s = read("{tmp_path / "t.parquet"}")\nwrite s to "s.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    got = [{k: r[k] for k in ("ts", "d", "dur", "dec", "bin", "u64", "nest")} for r in read_jsonl(tmp_path / "o" / "s.jsonl")]
    assert got == [{"ts": "2024-01-02T03:04:05", "d": "2024-01-02", "dur": 90.0, "dec": 1.25, "bin": "hi",
                    "u64": 2 ** 64 - 1, "nest": {"at": "2020-01-01"}},
                   {"ts": None, "d": "2023-05-06", "dur": None, "dec": 3.0, "bin": "/wA=", "u64": 3, "nest": None}]


def test_a_csv_file_separated_by_semicolons_reads(tmp_path):
    """Spreadsheets where the comma is the decimal mark write CSV with semicolons: such a file
    was one column, `instruction;output`, and an error. A first line with semicolons and no
    comma now makes `;` the delimiter, on the fast path and the record reader alike."""
    lines = ["instruction;output;score"] + [f'"q{i};x";a{i};{i},5' for i in range(30)]
    (tmp_path / "s.csv").write_text("\r\n".join(lines) + "\r\n")
    load(f'recipe t\nsource s = read("{tmp_path / "s.csv"}")\nwrite s to "s.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    out = read_jsonl(tmp_path / "o" / "s.jsonl")
    assert [(r["instruction"], r["response"], r["score"]) for r in out] == [(f"q{i};x", f"a{i}", f"{i},5") for i in range(30)]
    good, bad = read_all(tmp_path / "s.csv")
    assert len(good) == 30 and not bad and good[0][1]["instruction"] == "q0;x"


@pytest.mark.parametrize("container", ["jsonl", "json"])
def test_json_nested_deeper_than_the_reader_follows_sets_its_row_aside(tmp_path, container):
    """A record nested 50,000 deep stopped `check` and the run with Python's RecursionError
    (a traceback): now its row is set aside as malformed JSON, the others read."""
    deep = '{"instruction": "q", "output": "a", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    ok = '{"instruction": "ok", "output": "a"}'
    p = tmp_path / f"d.{container}"
    p.write_text(f"{ok}\n{deep}\n" if container == "jsonl" else f"[\n{ok},\n{deep}\n]\n")
    text = f'recipe t\nsource s = read("{p}")\nwrite s to "s.jsonl"\n'
    assert load(text).diagnose().diagnostics == []
    load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "s.jsonl")] == ["ok"]
    (aside,) = read_jsonl(tmp_path / "o" / "set_aside.jsonl")
    assert "malformed JSON (nested deeper than the JSON reader follows)" in aside["reason"]


def test_an_undetected_format_hints_the_derive_that_makes_the_conversation(tmp_path):
    """UIT's unified files name their fields `Input` and `Output`: no format reads them, and the
    hint said only to name one; it now spells the `raw` read's derive with the file's fields,
    and that recipe runs."""
    data = write_jsonl(tmp_path / "u.jsonl", [{"Input": f"q{i}", "Output": f"a{i}"} for i in range(3)])
    diags = load(f'recipe t\nsource s = read("{data}")\nwrite s to "s.jsonl"\n').diagnose().diagnostics
    assert [d.code for d in diags] == ["E0903"]
    assert "`derive(instruction = Input, response = Output)`" in diags[0].hints[0]
    load(f'recipe t\nsource s = read("{data}", format="raw")\nx = s | derive(instruction = Input, response = Output)\n'
         'write x to "s.jsonl" (format="alpaca")\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert read_jsonl(tmp_path / "o" / "s.jsonl")[2] == {"instruction": "q2", "input": "", "output": "a2"}

"""`derive` of a name that is part of the conversation writes it into the turns, where every
sink reads them. Found on a first day: `derive(system = "Be brief.")` and `derive(input = ...)`
made columns that no format sink wrote (the alpaca sink split its turn with the old input, the
ShareGPT and OpenAI sinks had no system prompt), and `derive(conversation = turns)` a column
beside an empty conversation: the output silently disagreed with the recipe."""
import json

from recipe.api import load

from conftest import read_jsonl, write_jsonl

ALPACA = [{"instruction": "Rate the essay.", "input": "Exercise is good.", "output": "9 of 10."},
          {"instruction": "Say hi.", "input": "", "output": "Hi!", "system": "Old prompt."},
          {"instruction": "Add.", "input": "2 and 2", "output": "4", "history": [["One?", "1"]]}]


def run(tmp_path, rows, body, fmt="alpaca", sinks=("alpaca", "sharegpt", "openai")):
    tmp_path.mkdir(exist_ok=True)
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    writes = "".join(f'write x to "{f}.jsonl" (format="{f}")\n' for f in sinks)
    res = load(f'recipe t\nsource raw = read("{data}", format="{fmt}")\nx = raw | {body}\n{writes}'
               'write x to "all.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    return res, {f: read_jsonl(tmp_path / "o" / f"{f}.jsonl") for f in (*sinks, "all")}


def test_a_derived_system_prompt_reaches_every_sink_and_an_empty_one_removes_it(tmp_path):
    res, out = run(tmp_path, ALPACA, 'derive(system = "Be brief.")')
    assert [r.get("system") for r in out["alpaca"]] == ["Be brief."] * 3
    assert all(r["conversations"][0] == {"from": "system", "value": "Be brief."} for r in out["sharegpt"])
    assert all(r["messages"][0] == {"role": "system", "content": "Be brief."} for r in out["openai"])
    assert [sum(m["role"] == "system" for m in r["messages"]) for r in out["openai"]] == [1, 1, 1]  # replaced, not added
    assert "system" not in out["all"][0]  # in the turns, not a column beside them
    _, out = run(tmp_path / "none", ALPACA, 'derive(system = "")')
    assert [r.get("system") for r in out["alpaca"]] == [None] * 3
    assert all(m["role"] != "system" for r in out["openai"] for m in r["messages"])


def test_a_derived_input_rewrites_the_last_user_turn_after_its_instruction(tmp_path):
    res, out = run(tmp_path, ALPACA, 'derive(input = upper(input))')
    assert [(r["instruction"], r["input"]) for r in out["alpaca"]] == [
        ("Rate the essay.", "EXERCISE IS GOOD."), ("Say hi.", ""), ("Add.", "2 AND 2")]
    assert [r["messages"][-2]["content"] for r in out["openai"]] == [
        "Rate the essay.\n\nEXERCISE IS GOOD.", "Say hi.", "Add.\n\n2 AND 2"]
    assert out["openai"][2]["messages"][0]["content"] == "One?"  # the history's turn is not the one
    # the canonical row's instruction is its first user turn, as after a read
    assert [r["instruction"] for r in out["all"]] == ["Rate the essay.\n\nEXERCISE IS GOOD.", "Say hi.", "One?"]
    _, out = run(tmp_path / "set", ALPACA, 'derive(input = "Now this.")')
    assert [(r["instruction"], r["input"]) for r in out["alpaca"]] == [
        ("Rate the essay.", "Now this."), ("Say hi.", "Now this."), ("Add.", "Now this.")]
    _, out = run(tmp_path / "drop", ALPACA, 'derive(input = "")')
    assert [r["messages"][-2]["content"] for r in out["openai"]] == ["Rate the essay.", "Say hi.", "Add."]


def test_a_derived_context_rewrites_a_dolly_turn(tmp_path):
    rows = [{"instruction": "Summarise.", "context": "A long text.", "response": "Short."}]
    _, out = run(tmp_path, rows, 'derive(context = concat(context, " More."))', fmt="dolly", sinks=("dolly", "openai"))
    assert out["dolly"][0]["context"] == "A long text. More." and out["dolly"][0]["instruction"] == "Summarise."
    assert out["openai"][0]["messages"][0]["content"] == "Summarise.\n\nA long text. More."


def test_turn_parts_are_checked_before_the_run(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ALPACA)
    for body, code, says in (("derive(system = 3)", "E0407", "must be text"),
                             ('derive(input = "x", instruction = "y")', "E0407", "also writes"),
                             ("derive(conversation = instruction)", "E0407", "list of texts")):
        diags = load(f'recipe t\nsource raw = read("{data}")\nx = raw | {body}\nwrite x to "o.jsonl"\n'
                     ).diagnose().diagnostics
        assert [(d.code, says in d.message) for d in diags] == [(code, True)], (body, diags)


def test_a_score_before_a_derived_system_prompt_is_said_to_be_stale(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ALPACA)
    diags = load(f'recipe t\nsource raw = read("{data}")\nx = raw | score(metric="words") | derive(system = "Hi.")\n'
                 'write x to "o.jsonl"\n').diagnose().diagnostics
    assert [d.code for d in diags] == ["W0414"] and "rewrites the conversation" in diags[0].message


def test_raw_rows_make_their_conversation_and_system_prompt_from_their_columns(tmp_path):
    # a raw read's `system` column is read as itself and becomes the system prompt (the column
    # follows it); the turns come from two lists, in one call with it
    rows = [{"q": ["Hi?", "And?"], "a": ["Hello.", "Bye."], "system": "You help."}]
    res, out = run(tmp_path, rows, 'derive(conversation = interleave(q, a), system = upper(system))',
                   fmt="raw", sinks=("openai", "sharegpt"))
    assert out["all"][0]["system"] == "YOU HELP."
    assert [m["content"] for m in out["openai"][0]["messages"]] == ["YOU HELP.", "Hi?", "Hello.", "And?", "Bye."]
    assert out["sharegpt"][0]["conversations"][0] == {"from": "system", "value": "YOU HELP."}
    assert json.loads(json.dumps(out["all"][0]["messages"]))[1] == {"role": "user", "content": "Hi?"}


def test_system_reads_the_system_prompt_where_no_column_has_the_name(tmp_path):
    # as `conversation` reads the turns: a prompt can be extended, and rows filtered on it
    res, out = run(tmp_path, ALPACA, 'derive(system = concat(system, " Answer in English."), had = system)',
                   sinks=("openai",))
    assert [r["messages"][0] for r in out["openai"]] == [
        {"role": "system", "content": " Answer in English."},
        {"role": "system", "content": "Old prompt. Answer in English."},
        {"role": "system", "content": " Answer in English."}]
    assert [r["had"] for r in out["all"]] == ["", "Old prompt.", ""]  # read from the input row
    _, out = run(tmp_path / "f", ALPACA, 'filter(system == "")', sinks=("alpaca",))
    assert [r["instruction"] for r in out["alpaca"]] == ["Rate the essay.", "Add."]

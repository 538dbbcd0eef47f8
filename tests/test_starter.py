"""`recipe new`: a starter recipe from what `inspect` finds, checked, canonical, and runnable."""
from __future__ import annotations

import pytest

from recipe.api import load
from recipe.cli import main
from recipe.diagnostics import UserError
from recipe.starter import write_starter

from conftest import read_jsonl, write_jsonl


def test_a_starter_says_what_the_data_needs_and_runs(tmp_path, capsys):
    rows = [{"instruction": f"Explain item {i % 5} in detail.", "input": "", "output": "" if i == 3 else f"Item {i}."}
            for i in range(12)]
    (tmp_path / "data").mkdir()
    data = write_jsonl(tmp_path / "data" / "pool.jsonl", rows)
    out = tmp_path / "recipes" / "pool.recipe"
    assert main(["new", str(out), "--source", str(data)]) == 0
    text = out.read_text()
    assert 'source raw = read("../data/pool.jsonl", format="alpaca")' in text  # beside the recipe file
    assert "filter(length(response) > 0)  # 1 row has no answer" in text
    assert 'dedupe(method="exact", on=instruction)  # the same instruction twice: 7 in the rows read' in text
    assert "respond(" not in text and "language(" not in text
    res = load(str(out)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    # item 3's first row had no answer: its next one is kept, after item 4's first
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "pool.jsonl")] == \
        [f"Explain item {i} in detail." for i in (0, 1, 2, 4, 3)]
    assert main(["fmt", "--check", str(out)]) == 0  # canonical as written
    with pytest.raises(UserError, match="exists: pick another name, or pass --force"):
        write_starter(str(out), str(data))
    assert res.manifest["nodes"][-1]["rows_out"] == 5
    # a commented-out expectation shows the feature; uncommented, it checks and is met (12 rows read)
    assert "# expect clean: rows() >= 6 and share(length(response) > 0) == 1\n" in text
    out.write_text(text.replace("# expect clean", "expect clean"))
    got = load(str(out)).run(out=tmp_path / "o", cache_dir=tmp_path / "c").manifest["expectations"]
    assert [e["ok"] for e in got] == [False] and got[0]["values"]["rows()"] == 5  # 5 of 12: below half


def test_a_near_duplicate_step_that_would_take_most_rows_is_left_commented_out(tmp_path):
    """UIT's 6,400 rows of one task (a movie plot asked several questions) kept 43 under the
    starter's MinHash step: one that would set aside most of what the exact step leaves is
    written as a comment saying so."""
    plot = ("The film follows a retired detective in a small coastal town who is drawn back into an old case "
            "when a stranger arrives with a letter from his former partner, missing for twenty years. ")
    rows = [{"instruction": plot + f"Question: who wrote the letter number {i}?", "output": f"Answer {i}"}
            for i in range(8)]
    rows += [{"instruction": t, "output": "ok"} for t in ("Name a prime number.", "Spell cat backwards.")]
    text = write_starter(str(tmp_path / "u.recipe"), str(write_jsonl(tmp_path / "u.jsonl", rows)))
    assert ('  | dedupe(method="exact", on=instruction)  # the same instruction twice: none in the rows read\n'
            '  # | dedupe(method="minhash", on=instruction, threshold=0.8)  # left out: it would set aside 7 of the '
            '10 rows left (70%), 7 of them answered otherwise than the row each resembles') in text
    assert main(["fmt", "--check", str(tmp_path / "u.recipe")]) == 0
    res = load(str(tmp_path / "u.recipe")).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["nodes"][-1]["rows_out"] == 10
    # a few near-duplicates beside exact copies: the step stays, with what it adds
    few = [{"instruction": f"Describe animal number {i} and where it lives.", "output": "x"} for i in range(6)]
    few += [few[0], {"instruction": "Describe animal number 0 and where it lives!", "output": "y"}]
    text = write_starter(str(tmp_path / "f.recipe"), str(write_jsonl(tmp_path / "f.jsonl", few)))
    assert ('  | dedupe(method="exact", on=instruction)  # the same instruction twice: 1 in the rows read\n'
            '  | dedupe(method="minhash", on=instruction, threshold=0.8)  # near-duplicates (Jaccard of 5-character '
            'shingles): 1 more in the rows read') in text
    # several turns: both steps on the conversation, the exact one's copies counted on it
    chat = [{"conversations": [{"from": "human", "value": f"Tell me about planet {p}."},
                               {"from": "gpt", "value": f"{p} is a planet."},
                               {"from": "human", "value": "And its moons?"}, {"from": "gpt", "value": "Several."}]}
            for p in ("Mars", "Jupiter", "Saturn", "Mars")]
    text = write_starter(str(tmp_path / "c.recipe"), str(write_jsonl(tmp_path / "c.jsonl", chat)))
    assert ('dedupe(method="exact", on=conversation)  # the same conversation twice: 1 in the rows read\n'
            '  | dedupe(method="minhash", on=conversation, threshold=0.8)  # near-duplicates (Jaccard of 5-character '
            'shingles): none in the rows read') in text


def test_questions_without_answers_get_a_respond_step_over_their_turns(tmp_path):
    data = write_jsonl(tmp_path / "q.jsonl", [{"question_id": i, "turns": [f"Question {i}?", "And then?"]}
                                             for i in range(4)])
    text = write_starter(str(tmp_path / "q.recipe"), str(data))
    assert 'model lm = causal_lm("builtin:smollm2")' in text
    assert "respond(model=lm, turns=turns, max_new_tokens=512)" in text and "filter(" not in text


def test_mixed_languages_keep_the_most_common_one(tmp_path):
    rows = [{"instruction": t, "output": a} for t, a in [
        ("Describe the weather in London in autumn.", "It is often grey, mild and rainy."),
        ("Name three fruits that grow on trees.", "Apples, pears and cherries."),
        ("Explain how a bicycle gear works.", "A gear changes how far the wheel turns per pedal stroke."),
        ("Décris le temps qu'il fait à Paris en hiver.", "Il fait souvent froid et gris.")]]
    data = write_jsonl(tmp_path / "m.jsonl", rows)
    text = write_starter(str(tmp_path / "m.recipe"), str(data))
    assert 'model lid = language_id("builtin:lid176")' in text
    assert 'language(model=lid, keep=["en"])  # languages found: en 3, fr 1' in text


def test_repairs_and_personal_data_found_are_steps_with_their_counts(tmp_path):
    rows = [{"instruction": "Reply to bob@corp.io about the meeting.", "output": "Dear Bob,  \n\nSee you then."},
            {"instruction": "Is 555-867-5309 a valid phone number?", "output": "Yes, it has ten digits."},
            {"instruction": "Fix the caf\u00c3\u00a9 sign.", "output": "It should read caf\u00e9."}]
    data = write_jsonl(tmp_path / "p.jsonl", rows)
    text = write_starter(str(tmp_path / "p.recipe"), str(data))
    assert "normalize()  # rows read with broken Unicode (mojibake, HTML entities, control characters): 1, " \
           "untidy whitespace: 1" in text
    assert ('redact()  # found in the rows read: 1 e-mail address; and 1 phone number '
            '(kinds=["phone", "credit_card"] would replace them too)') in text


def test_the_data_path_is_relative_unless_only_the_root_is_shared():
    from recipe.starter import recipe_path
    assert recipe_path("/home/me/data/pool.jsonl", "/home/me/recipes") == "../data/pool.jsonl"
    assert recipe_path("/home/me/pool.jsonl", "/home/me") == "pool.jsonl"
    assert recipe_path("/work/shared/pool.jsonl", "/tmp/p") == "/work/shared/pool.jsonl"


def test_a_headerless_tsv_gets_the_read_options_inspect_takes(tmp_path, capsys):
    # a format no key names: `new` takes inspect's --columns/--data-format/--id, and the recipe keeps them
    data = tmp_path / "qa.tsv"
    data.write_text("What is 2+2?\t4\tq1\nName a colour.\tRed.\tq2\nWhat is 2+2?\t4\tq3\n", encoding="utf-8")
    out = tmp_path / "qa.recipe"
    # its first line looks like a record: said so, with the columns to name (until session 41 only
    # "cannot tell the format from keys `What is 2+2?`, `4`, `q1`")
    with pytest.raises(UserError, match="qa.tsv's first line is read as its header, but it looks like a record "
                                        r"\(a column would be named `What is 2\+2\?`\): the file seems to have no header row"):
        write_starter(str(out), str(data))
    assert main(["new", str(out), "--source", str(data), "--columns", "question, answer,key",
                 "--data-format", "question_answer", "--id", "key"]) == 0
    assert 'read("qa.tsv", format="question_answer", id="key", columns=["question", "answer", "key"])' in out.read_text()
    load(str(out)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [(r["_id"], r["response"]) for r in read_jsonl(tmp_path / "o" / "qa.jsonl")] == [("q1", "4"), ("q2", "Red.")]


def test_raw_rows_get_a_derive_that_makes_their_conversation(tmp_path):
    # FLAN's CoT TSVs have no header and no format's keys: read as raw, the starter's conversation
    # comes from the columns named like a question and its answer (it deduplicated empty
    # instructions and answered every row with the model before)
    data = tmp_path / "cot.tsv"
    data.write_text("Two and two make four.\tWhat is 2+2?\t4\nRed is one.\tName a colour.\tRed\n"
                    "Again four.\tWhat is 2+2?\t4\n", encoding="utf-8")
    out = tmp_path / "cot.recipe"
    assert main(["new", str(out), "--source", str(data), "--data-format", "raw",
                 "--columns", "rationale,question,answer"]) == 0
    text = out.read_text()
    assert ("derive(instruction=question, response=answer)  # format raw: the conversation from its columns "
            "(its other text: rationale)") in text
    assert "the same instruction twice: 1 in the rows read" in text and "respond(" not in text
    load(str(out)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [(r["instruction"], r["response"]) for r in read_jsonl(tmp_path / "o" / "cot.jsonl")] == \
        [("What is 2+2?", "4"), ("Name a colour.", "Red")]


def test_alpaca_shaped_raw_rows_join_their_input_to_the_user_turn(tmp_path):
    # an instruction beside an Alpaca `input`: the starter joins it as the alpaca reader would
    # (it took the instruction alone and named `input` only in a comment), and an alpaca sink
    # splits it back out
    data = write_jsonl(tmp_path / "r.jsonl", [
        {"instruction_in_input": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        {"instruction_in_input": "Add 1 and 2.", "input": "", "output": "3"}])
    out = tmp_path / "r.recipe"
    assert main(["new", str(out), "--source", str(data), "--data-format", "raw"]) == 0
    text = out.read_text()
    assert "derive(instruction=instruction_in_input, response=output)  # format raw" in text
    assert "\n  | derive(input=input)  # joined to the user turn" in text
    out.write_text(text.replace('write clean to "r.jsonl"', 'write clean to "r.jsonl" (format="alpaca")'))
    load(str(out)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert read_jsonl(tmp_path / "o" / "r.jsonl") == [
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        {"instruction": "Add 1 and 2.", "input": "", "output": "3"}]


def test_raw_rows_without_prose_get_no_steps_that_would_clean_empty_turns(tmp_path):
    # FastChat's answer files: ids, a model name, a list of choices; nothing reads as a prompt,
    # so no dedupe of empty instructions and no model answering them (as before)
    data = write_jsonl(tmp_path / "a.jsonl", [{"question_id": i, "answer_id": f"x{i}Yz", "model_id": "gpt-4",
                                               "choices": [{"index": 0, "turns": [f"Answer {i}."]}]} for i in range(3)])
    out = tmp_path / "a.recipe"
    assert main(["new", str(out), "--source", str(data), "--data-format", "raw"]) == 0
    text = out.read_text()
    assert "derive(instruction=answer_id" not in text and "dedupe(" not in text and "respond(" not in text
    assert "clean = raw  # format raw: no column reads as a prompt (question_id, answer_id, model_id, choices)" in text
    load(str(out)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert len(read_jsonl(tmp_path / "o" / "a.jsonl")) == 3


def test_conversation_columns_prefer_names_then_positions():
    from recipe.inspect import conversation_columns
    assert conversation_columns({"texts": {"x": {}, "prompt": {}, "target": {}}}) == ("prompt", "target")
    prose = {"words_median": 12}
    assert conversation_columns({"texts": {"a1": prose, "b1": prose}}) == ("a1", "b1")
    # ids, model names, labels (one word each) are no prompt: FastChat's answer files
    assert conversation_columns({"texts": {"answer_id": {"words_median": 1}, "model_id": {"words_median": 1},
                                           "body": prose}}) == ("body", None)
    assert conversation_columns({"texts": {"answer_id": {"words_median": 1}, "model_id": {"words_median": 1}}}) \
        == (None, None)
    assert conversation_columns({"texts": {"q": prose, "a": {"words_median": 1}}}) == ("q", "a")  # a one-word answer
    assert conversation_columns({"texts": {"input": {}}}) == ("input", None)
    assert conversation_columns({"texts": {"my col": {}, "not": {}}}) == (None, None)


def test_the_header_says_one_row(tmp_path):
    data = write_jsonl(tmp_path / "one.jsonl", [{"instruction": "Say hi.", "output": "Hi."}])
    assert "# A starter recipe for " + str(data) + ": 1 row read by" in write_starter(str(tmp_path / "o.recipe"), str(data))


def test_oasst_trees_say_how_many_conversations_their_other_branches_hold(tmp_path):
    """A best-path read counts the conversations beside the top-ranked one (the run's
    statistics, `inspect`, and the starter's read line, which names `branches="all"`)."""
    from recipe.inspect import inspect, render
    tree = {"message_tree_id": "t1", "prompt": {"text": "Hi?", "role": "prompter", "replies": [
        {"text": "second", "role": "assistant", "rank": 1, "replies": []},
        {"text": "best", "role": "assistant", "rank": 0, "replies": []}]}}
    data = write_jsonl(tmp_path / "t.jsonl", [tree, tree | {"message_tree_id": "t2"}])
    facts = inspect(str(data))
    assert facts["rows"] == 2 and facts["other_branches"] == 2
    assert "their other branches hold 2 more" in render(facts)
    text = write_starter(str(tmp_path / "t.recipe"), str(data))
    assert 'format="oasst")  # each tree\'s top-ranked conversation; `branches="all"` reads every one (2 more' in text
    text = text.replace('format="oasst")', 'format="oasst", branches="all")')
    res = load(text.replace('read("t.jsonl"', f'read("{data}"')).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["nodes"][0]["rows_out"] == 4 and "other branches" not in (res.manifest["nodes"][0]["stats"])


def test_short_answers_beside_a_reasoning_column_get_a_commented_cot_step(tmp_path):
    """GSM8K and FLAN's chain-of-thought files: the answer is a number or a word and the
    `rationale` explains it; the starter offers, commented out, the reasoning before the
    answer, and the step does that once the `#` is removed."""
    data = tmp_path / "cot.tsv"
    data.write_text("".join(f"How much is {i} plus {i}?\t{2 * i}\t{i} + {i} = {2 * i}.\n" for i in range(30)))
    out = tmp_path / "cot.recipe"
    assert main(["new", str(out), "--source", str(data), "--columns", "question,answer,rationale"]) == 0
    text = out.read_text()
    step = '  # | derive(response = concat(rationale, " So the answer is ", response, "."))'
    assert step in text and "`rationale` explains them" in text
    load(text.replace(step, step.replace("# | ", "| ")).replace('read("cot.tsv"', f'read("{data}"')).run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert read_jsonl(tmp_path / "o" / "cot.jsonl")[3]["response"] == "3 + 3 = 6. So the answer is 6."
    long = tmp_path / "long.tsv"  # answers of prose: nothing offered
    long.write_text("".join(f"Explain item {i}.\tItem {i} is a thing that does many things well.\tbecause\n" for i in range(30)))
    assert "derive(response" not in write_starter(str(tmp_path / "l.recipe"), str(long), columns=["question", "answer", "rationale"])


def test_line_breaks_written_as_backslash_n_are_unescaped_first(tmp_path):
    """A TSV file keeps a line break as `\\n`: inspect counts the texts that hold it and no real
    line break, and where a column has many the starter turns them back into line breaks
    (before normalize); a few (file contents shown in a string) are only counted."""
    from recipe.inspect import inspect, render
    data = tmp_path / "mc.tsv"
    data.write_text("".join(f"Pick one {i}.\\nOptions:\\n(A) x\\n(B) y\t(A)\tbecause {i}\n" for i in range(20)))
    facts = inspect(str(data), data_format="question_answer", columns=["question", "answer", "rationale"])
    assert facts["escaped_line_breaks"] == {"instruction": 20}
    assert "line breaks written as `\\n` (two characters, in texts with no line break): instruction 20 rows" in render(facts)
    text = write_starter(str(tmp_path / "mc.recipe"), str(data), columns=["question", "answer", "rationale"])
    assert 'derive(instruction=regexp_replace(instruction, "\\\\\\\\n", "\\n"))' in text
    load(text.replace('read("mc.tsv"', f'read("{data}"')).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    row = read_jsonl(tmp_path / "o" / "mc.jsonl")[0]
    assert row["instruction"] == "Pick one 0.\nOptions:\n(A) x\n(B) y" == row["messages"][0]["content"]
    few = write_jsonl(tmp_path / "code.jsonl", [{"instruction": f"Read the file {i}.", "input": "a\\nb" if i == 0 else "",
                                                 "output": "ok"} for i in range(10)])
    assert "regexp_replace" not in write_starter(str(tmp_path / "code.recipe"), str(few))

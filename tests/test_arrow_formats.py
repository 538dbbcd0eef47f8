"""Arrow's fast path for the formats besides Alpaca (io/arrow_pairs.py, io/arrow_formats.py):
Dolly, prompt/completion, question/answer and raw rows in JSON lines, JSON arrays, CSV/TSV,
Parquet and Arrow files, and ShareGPT/OpenAI chats in Parquet, write the same bytes as the
record reader on generated files (session 28; the Alpaca and chat JSON-lines cases are in
test_arrow_read.py, whose helpers these use)."""
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_arrow_read import (BROKEN_CSV, CSV_ROW, LINE, PLAIN, PQ_COLS, ROLES, VALUES, _both_paths_agree,
                             _csv_text, _fast_then_slow, _outputs)


CSV_NAMES = {"alpaca": ("instruction", "input", "output"), "dolly": ("instruction", "context", "response"),
             "question_answer": ("question", "answer", "source"), "raw": ("q", "instruction", "a")}
LIST_FIELD = st.sampled_from(['["x", "y"]', "[]", "[1", '[{"input": "", "output": "o"}]', "note"])


@pytest.mark.parametrize("fmt", sorted(CSV_NAMES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(CSV_ROW, LIST_FIELD), min_size=1, max_size=10),
       broken=st.lists(st.tuples(st.integers(0, 9), BROKEN_CSV), max_size=1), last=st.sampled_from(["note", "turns", "instances"]),
       given_fmt=st.booleans())
def test_csv_of_each_format_reads_alike_on_both_paths(ram_tmp, monkeypatch, fmt, rows, broken, last, given_fmt):
    """Dolly, question/answer and raw rows in CSV take Arrow's path too (Alpaca's alone until
    session 28); a field the record reader reads as a list (`turns`, `instances`: the CSV sink
    writes lists as JSON text) made the fast path keep the text: both paths agree now."""
    import recipe.io.arrow_csv as csv_mod
    monkeypatch.setattr(csv_mod, "BLOCK", 64)
    tmp = ram_tmp.mktemp("csvf")
    data = tmp / "d.csv"
    rows = [(*r[:3], lf if last != "note" else r[3]) for r, lf in rows]
    data.write_bytes(_csv_text(rows, broken, ",", False, names=CSV_NAMES[fmt] + (last,)).encode())
    _both_paths_agree(monkeypatch, tmp, data, "_fast_csv", repr(data.read_bytes()),
                      fmt=fmt if given_fmt or fmt == "raw" else "")


# the other one-turn formats (io/arrow_pairs.py): Dolly, prompt/completion, question/answer
PAIR_FIELDS = {"dolly": ("instruction", "response"), "prompt_completion": ("prompt", "completion"),
               "question_answer": ("question", "answer")}
ASK = st.one_of(*[st.text(alphabet="abc", min_size=1, max_size=4)] * 8, st.sampled_from(["", " ", "\u3000"]),
                st.none(), st.just(3))
ANSWER = st.one_of(*[st.text(alphabet="xyz ", max_size=4)] * 8, st.none(), st.just(["x"]))
PAIR_EXTRA = st.fixed_dictionaries({}, optional={
    "context": st.one_of(st.sampled_from(["", " ", "more", "\u00a0"]), st.none(), st.just(2)),
    "input": st.sampled_from(["", "inp"]), "c1": VALUES, "_id": PLAIN, "C1": PLAIN,
    # recipe's own names beside the format's fields: kept where they say something else
    "instruction": st.sampled_from(["abc", "x"]), "response": st.sampled_from(["x", "xyz", None]),
    "output": st.sampled_from(["o"])})


def _pair_line(fmt: str, ask, answer, extra: dict, drop: int) -> str:
    a, b = PAIR_FIELDS[fmt]
    rec = {k: v for k, v in extra.items() if k not in (a, b)}
    if fmt != "dolly":
        rec.pop("context", None)
        rec.pop("input", None)
    if drop != 1:
        rec[a] = ask
    if drop != 2:
        rec[b] = answer
    return json.dumps(rec)


@pytest.mark.parametrize("fmt", ["dolly", "prompt_completion", "question_answer"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(ASK, ANSWER, PAIR_EXTRA, st.sampled_from([0] * 12 + [1, 2])), min_size=1, max_size=10),
       broken=st.booleans(), given_fmt=st.booleans())
def test_one_turn_formats_read_alike_on_both_paths(ram_tmp, monkeypatch, fmt, rows, broken, given_fmt):
    """Dolly (`context` or `input`), prompt/completion and question/answer rows: missing, null,
    blank and non-text fields, recipe's own names beside them, extra columns of every kind;
    the fast path and the line-by-line reader write the same bytes."""
    a, b = PAIR_FIELDS[fmt]
    lines = [json.dumps({a: "first", b: "row"})] + [_pair_line(fmt, *r) for r in rows] + (["{broken"] if broken else [])
    tmp = ram_tmp.mktemp("pairs")
    data = tmp / "d.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    _both_paths_agree(monkeypatch, tmp, data, "_fast", "\n".join(lines), fmt=fmt if given_fmt else "")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=1, max_size=14))
def test_raw_fast_and_line_by_line_reads_agree(ram_tmp, monkeypatch, lines):
    """`format="raw"` (every field a column, recipe's own names kept apart, no conversation):
    Alpaca-shaped and odd lines read to the same bytes on Arrow's path and line by line."""
    tmp = ram_tmp.mktemp("raw")
    data = tmp / "d.jsonl"
    data.write_text("".join(line + "\n" for line in ['{"n": 1}'] + lines))
    # one-line chunks on both paths: a column of ints and floats widened to JSON by a later
    # chunk renders its ints as floats, so which rows share a chunk decides `0` or `0.0`, and
    # the fast path's chunks also end where its 37-byte reads do
    _both_paths_agree(monkeypatch, tmp, data, "_fast", "\n".join(lines), chunk=1, fmt="raw")


PROMPT = st.fixed_dictionaries({}, optional={
    "instruction": ASK, "Instruction": ASK, "question": ASK, "prompt": ASK, "text": ASK,
    "turns": st.sampled_from([["t1", "t2"], [], "t"]), "Skill": PLAIN, "c1": VALUES,
    "response": st.sampled_from(["", "x"]), "role": st.sampled_from(["user", "assistant", "prompter"]),
    "model_id": st.just("m"), "_id": PLAIN})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(PROMPT, min_size=1, max_size=10), broken=st.booleans(), given_fmt=st.booleans(),
       kind=st.sampled_from(["jsonl", "json", "parquet"]))
def test_prompts_without_answers_read_alike_on_both_paths(ram_tmp, monkeypatch, rows, broken, given_fmt, kind):
    """instruction_only rows (WizardLM's test set, prompt lists for `respond`): the first prompt
    key a record has (a chunk where rows differ goes to the record reader), missing, null, blank
    and non-text prompts, answers' and chat messages' fields, extra columns of every kind, in
    JSON lines, JSON arrays and Parquet; both paths write the same bytes (record by record
    until session 42)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    recs = [{"instruction": "first"}] + rows
    tmp = ram_tmp.mktemp("prompts")
    if kind == "parquet":
        try:
            table = pa.Table.from_pylist(recs)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return  # mixed types in one field: no Parquet file to read
        pq.write_table(table, tmp / "d.parquet", row_group_size=3)
        data, slow = tmp / "d.parquet", "_fast_parquet"
    elif kind == "json":
        data, slow = tmp / "d.json", "_fast_array"
        data.write_text(json.dumps(recs))
    else:
        data, slow = tmp / "d.jsonl", "_fast"
        data.write_text("".join(json.dumps(r) + "\n" for r in recs) + ("{broken\n" if broken else ""))
    _both_paths_agree(monkeypatch, tmp, data, slow, str(recs), fmt="instruction_only" if given_fmt else "")


def _whole_on_the_fast_path(tmp_path, monkeypatch, rows: list[dict]) -> list[dict]:
    """Nine rows as JSON lines, read in 3-row chunks: every chunk takes Arrow's path, the
    outputs equal the record reader's; returns the rows written."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n'
    assert _fast_then_slow(monkeypatch, tmp_path, text, "_fast") == [3, 3, 3]
    assert _outputs(tmp_path / "fast") == _outputs(tmp_path / "slow")
    return [json.loads(line) for line in (tmp_path / "fast" / "x.jsonl").read_text().splitlines()]


def test_prompts_without_answers_take_the_fast_path(tmp_path, monkeypatch):
    """Clean prompt lists take Arrow's path whole, in CSV too (record by record until session
    42: 5.9 s against 1.6 s for 200,000 P3 prompts)."""
    out = _whole_on_the_fast_path(tmp_path, monkeypatch, [{"idx": i, "Skill": "Math", "Instruction": f"q{i}"}
                                                         for i in range(9)])
    assert out[1]["messages"] == [{"role": "user", "content": "q1"}] and out[1]["Skill"] == "Math"
    csv = tmp_path / "p.csv"
    csv.write_text("prompt,topic\n" + "".join(f"say {i},t{i % 2}\n" for i in range(9)))
    text = f'recipe t\nsource raw = read("{csv}", format="instruction_only")\nwrite raw to "x.jsonl"\n'
    assert _fast_then_slow(monkeypatch, tmp_path / "csv", text, "_fast_csv") == [9]
    assert _outputs(tmp_path / "csv" / "fast") == _outputs(tmp_path / "csv" / "slow")


def test_one_turn_formats_take_the_fast_path(tmp_path, monkeypatch):
    """Clean Dolly rows take Arrow's path whole (they went line by line until session 28)."""
    out = _whole_on_the_fast_path(tmp_path, monkeypatch, [
        {"instruction": f"q{i}", "context": "c" if i % 2 else "", "response": f"a{i}", "category": "qa"}
        for i in range(9)])
    assert [r["instruction"] for r in out[:2]] == ["q0", "q1\n\nc"] and out[1]["context"] == "c"


PQ_TURN = st.fixed_dictionaries({"r": ROLES, "c": st.one_of(*[st.text(alphabet="ab \u3000", max_size=4)] * 6, st.none())},
                                optional={"name": st.one_of(st.none(), st.just("bo"))})


@pytest.mark.parametrize("fmt", ["sharegpt", "openai", "question_answer", "dolly", "raw"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.lists(PQ_TURN, max_size=3), ASK.filter(lambda v: not isinstance(v, int)),
                               ANSWER.filter(lambda v: not isinstance(v, list)), PLAIN.filter(lambda v: v != [])),
                     min_size=1, max_size=10),
       extra=st.sampled_from(sorted(PQ_COLS)), data=st.data())
def test_other_formats_in_parquet_read_alike_on_both_paths(ram_tmp, monkeypatch, fmt, rows, extra, data):
    """ShareGPT and OpenAI turns (unknown roles, null texts, a turn's own field), Dolly and
    question/answer rows (null, blank, `context`) and raw ones in Parquet, an extra column of each type:
    Arrow's path and the record reader write the same bytes (only Alpaca took Arrow's path
    until session 28)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    recs = []
    for turns, ask, answer, ctx in [([{"r": "human", "c": "first"}, {"r": "gpt", "c": "row"}], "first", "row", "")] + rows:
        if fmt in ("sharegpt", "openai"):
            key, rk, ck = {"sharegpt": ("conversations", "from", "value"), "openai": ("messages", "role", "content")}[fmt]
            rec = {key: [{rk: t["r"], ck: t["c"], **({"name": t["name"]} if "name" in t else {})} for t in turns]}
        else:
            a, b = PAIR_FIELDS.get(fmt, ("instruction", "response"))  # raw: recipe's own names, kept apart
            rec = {a: ask, b: answer, **({"context": ctx if isinstance(ctx, str) else None} if fmt == "dolly" else {})}
        rec[extra] = data.draw(st.one_of(st.none(), PQ_COLS[extra]))
        recs.append(rec)
    tmp = ram_tmp.mktemp("pqf")
    pq.write_table(pa.Table.from_pylist(recs), tmp / "d.parquet", row_group_size=3)
    _both_paths_agree(monkeypatch, tmp, tmp / "d.parquet", "_fast_parquet", str(recs), fmt=fmt)


@pytest.mark.parametrize("fmt", ["openai", "question_answer"])
def test_other_formats_in_parquet_take_the_fast_path(tmp_path, monkeypatch, fmt):
    import pyarrow as pa
    import pyarrow.parquet as pq
    if fmt == "openai":
        recs = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}], "n": i}
                for i in range(9)]
    else:
        recs = [{"question": f"q{i}", "answer": "a", "n": i} for i in range(9)]
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "d.parquet")
    text = f'recipe t\nsource raw = read("{tmp_path / "d.parquet"}")\nwrite raw to "x.jsonl"\n'
    assert _fast_then_slow(monkeypatch, tmp_path, text, "_fast_parquet") == [3, 3, 3]
    assert _outputs(tmp_path / "fast") == _outputs(tmp_path / "slow")
    assert [json.loads(x)["instruction"] for x in (tmp_path / "fast" / "x.jsonl").read_text().splitlines()][8] == "q8"


# Super-NaturalInstructions task files (io/arrow_ni.py)
NI_TEXT = st.one_of(*[st.text(alphabet="ab \u00e9", min_size=1, max_size=4)] * 6, st.sampled_from(["", " "]), st.none(),
                    st.just(3))
NI_INSTANCE = st.one_of(
    st.fixed_dictionaries({}, optional={"id": st.one_of(st.sampled_from(["i1", "i2"]), st.just(7)), "input": NI_TEXT,
                                        "output": st.one_of(st.lists(NI_TEXT, max_size=3), NI_TEXT)}),
    st.just("not an object"))
NI_TASK = st.fixed_dictionaries({"Instances": st.lists(NI_INSTANCE, max_size=7)}, optional={
    "Definition": st.one_of(NI_TEXT, st.lists(st.sampled_from(["Say it.", "Twice."]), max_size=2)),
    "Categories": st.one_of(st.lists(st.sampled_from(["QA", "Math"]), max_size=2), st.just(["QA", 1]), st.just("QA")),
    "Input_language": st.just(["English"]),
    "Positive Examples": st.lists(st.one_of(st.fixed_dictionaries({"input": NI_TEXT, "output": NI_TEXT},
                                                                  optional={"explanation": NI_TEXT}), st.just(5)),
                                  max_size=2)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tasks=st.lists(NI_TASK, min_size=1, max_size=3), given_fmt=st.booleans())
def test_natural_instructions_tasks_read_alike_on_both_paths(ram_tmp, monkeypatch, tasks, given_fmt):
    """Task files (a folder of one to three) whose definitions, instances, outputs (several,
    none, not a list), ids, categories and positive examples take every shape the record
    reader handles: Arrow's path writes the same bytes (record by record until session 42); a
    later file with a column the first lacks (`outputs`) goes through the row path, JSON
    columns included."""
    tmp = ram_tmp.mktemp("ni")
    folder = tmp / "tasks"
    folder.mkdir()
    first = {"Definition": ["Answer."], "Instances": [{"id": "a", "input": "q", "output": ["x"]}]}
    for i, task in enumerate([first, *tasks]):
        (folder / f"task{i:03d}_t.json").write_text(json.dumps(task))
    _both_paths_agree(monkeypatch, tmp, folder, "_fast_ni", json.dumps(tasks), fmt="ni" if given_fmt else "")


def test_natural_instructions_tasks_take_the_fast_path(tmp_path, monkeypatch):
    """A clean task file takes Arrow's path in whole chunks, its positive examples stored as
    the record reader stores them (JSON), its task fields as lists of text."""
    import recipe.engine.read as read_mod
    import recipe.io.arrow_ni as ni_mod
    shots = [{"input": "2+2", "output": "4", "explanation": "sum"}]
    task = {"Definition": ["Add the numbers."], "Categories": ["Math"], "Positive Examples": shots,
            "Instances": [{"id": f"t-{i}", "input": f"{i}+1", "output": [str(i + 1)] + (["x"] if i == 4 else [])}
                          for i in range(9)]}
    data = tmp_path / "task1_add.json"
    data.write_text(json.dumps(task))
    kinds = []
    real = ni_mod.ni_chunks
    monkeypatch.setattr(ni_mod, "ni_chunks", lambda *a: (kinds.append(k) or (k, p) for k, p in real(*a)))
    text = f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n'
    _fast_then_slow(monkeypatch, tmp_path, text, "_fast_ni")
    assert kinds == ["arrow"] * 3 and _outputs(tmp_path / "fast") == _outputs(tmp_path / "slow")
    assert read_mod  # the slow run switched `_fast_ni` off
    out = [json.loads(line) for line in (tmp_path / "fast" / "x.jsonl").read_text().splitlines()]
    assert out[4]["instruction"] == "Add the numbers.\n\n4+1" and out[4]["outputs"] == ["5", "x"]
    assert out[0]["positive_examples"] == shots and out[0]["categories"] == ["Math"] and out[0]["instance_id"] == "t-0"

"""`instances`: Self-Instruct's instance generation, against a server that answers its prompts
(tests/task_server.py): the classification check picks the prompt, the answers are parsed as
the paper parsed them, every instance and task that is not kept is set aside with why, and the
kept ones are the task's row and new rows with `_parents`."""
from __future__ import annotations

import pytest

from recipe.ops import _instance_prompts as ip

from conftest import read_jsonl, run_recipe, write_jsonl


@pytest.fixture
def server():
    import task_server
    srv, url = task_server.start()
    task_server.Handler.prompts.clear()
    task_server.Handler.chats.clear()
    yield url, task_server.Handler.prompts
    srv.shutdown()


TASKS = ["Give the reverse of the words.", "Classify the day as good or bad.", "Give a clash of numbers.",
         "Give a long list of words.", "Answer this broken task.", "Write an endless story."]


def run(tmp_path, url, rows, args="", fmt="instruction_only"):
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    res, aside = run_recipe(tmp_path, f'recipe r\nmodel lm = causal_lm("openai:{url}#toy")\n'
                                      f'source raw = read("{data}", format="{fmt}")\n'
                                      f'made = raw | instances(model=lm{args})\nwrite made to "m.jsonl"\n')
    return res, {r["_id"]: r for r in read_jsonl(tmp_path / "o" / "m.jsonl")}, aside


def test_instances_are_parsed_filtered_and_accounted_for(tmp_path, server):
    url, prompts = server
    res, out, aside = run(tmp_path, url, [{"instruction": t} for t in TASKS])
    # the check, composed as the paper's: its prefix, a space, the task, the question
    assert ip.check_prompt(ip.CLF_CHECK, TASKS[0]) in prompts
    assert ip.instance_prompt(ip.OUTPUT_FIRST, TASKS[1]) in prompts  # a classification task: labels first
    assert ip.instance_prompt(ip.INPUT_FIRST, TASKS[0]) in prompts
    assert list(out) == ["raw:0", "raw:0+instance5", "raw:1", "raw:1+instance2", "raw:1+instance4", "raw:3"]
    assert out["raw:0"]["messages"] == [{"role": "user", "content": f"{TASKS[0]}\n\none two"},
                                        {"role": "assistant", "content": "two one"}]
    assert out["raw:0"]["input"] == "one two" and out["raw:0"]["is_classification"] is False
    assert out["raw:0+instance5"]["response"] == "five four" and out["raw:0+instance5"]["_parents"] == ["raw:0"]
    assert (out["raw:1"]["input"], out["raw:1"]["response"], out["raw:1"]["is_classification"]) == (
        "Sentence: a fine day", "Good", True)
    assert out["raw:1+instance2"]["response"] == "Bad"
    assert out["raw:3"]["response"] == "two one" and "raw:3+instance5" not in out  # cut off: the last dropped
    assert aside == {
        "raw:0+instance2": "instances: a repeat of instance 1",
        "raw:0+instance3": "instances: the input and the output are the same",
        "raw:0+instance4": "instances: ends with a colon (usually an unfinished generation)",
        "raw:1+instance3": "instances: a repeat of instance 1",
        "raw:2": "instances: two instances have the same input and a different output: 2",
        "raw:3+instance2": "instances: a repeat of instance 1",
        "raw:3+instance3": "instances: the input and the output are the same",
        "raw:3+instance4": "instances: ends with a colon (usually an unfinished generation)",
        "raw:4": "instances: the model's answer holds no instance in the prompt's layout: Sure! Here is what "
                 "I think about that.",
        "raw:5": "instances: the answer ran to max_new_tokens=300 and its one instance was cut off there: Output: "
                 "and on and on and on"}
    (node,) = [n for n in res.manifest["nodes"] if n["name"] == "made"]
    assert node["rows_in"] + node["rows_created"] == node["rows_out"] + node["rows_set_aside"]
    assert node["stats"]["tasks"] == 6 and node["stats"]["classification tasks"] == 1
    assert node["stats"]["instances"] == 6 and node["stats"]["tasks set aside"] == 3


def test_per_task_keeps_a_seeded_draw_and_answered_rows_stay(tmp_path, server):
    # an input-first answer stops at "Example <per_task + 1>"; labels have no such stop
    url, _ = server
    rows = [{"instruction": TASKS[1], "input": "", "output": ""}, {"instruction": "Say hi.", "input": "", "output": "hi"}]
    _, out, aside = run(tmp_path, url, rows, ", per_task=2", fmt="alpaca")
    assert len(out) == 3 and out["raw:1"]["response"] == "hi" and out["raw:1"]["is_classification"] is None
    inst = {1: ("Sentence: a fine day", "Good"), 2: ("Sentence: a grey day", "Bad"), 4: ("Sentence: a sunny day", "Good")}
    got = [(r["input"], r["response"]) for r in out.values() if r["_id"] != "raw:1"]
    (lost,) = [k for k, v in aside.items() if v == "instances: more than per_task=2"]
    k = int(lost.rsplit("instance", 1)[1])
    assert inst[k] not in got and sorted(got + [inst[k]]) == sorted(inst.values())


def test_the_papers_templates_come_from_files(tmp_path, server):
    url, prompts = server
    (tmp_path / "check.txt").write_text("Is the task classification?\n\nTask:")
    (tmp_path / "gen.txt").write_text("Examples, please.\n\nTask:\n")
    _, out, _ = run(tmp_path, url, [{"instruction": TASKS[0]}],
                    f', check_file="{tmp_path / "check.txt"}", input_first_file="{tmp_path / "gen.txt"}"')
    assert f"Is the task classification?\n\nTask: {TASKS[0]}\nIs it classification?" in prompts
    assert f"Examples, please.\n\nTask: {TASKS[0]}\n" in prompts and len(out) == 2


def test_chat_prompts_go_to_a_chat_model_as_user_turns_and_give_the_same_instances(tmp_path, server):
    """prompt="chat": each prompt is the user's turn of a chat (an endpoint's /chat/completions
    here, its template applied by the server); the answers are parsed as raw continuations are."""
    import task_server
    url, prompts = server
    tasks = [{"instruction": t} for t in TASKS[:3]]
    (tmp_path / "raw").mkdir()
    (tmp_path / "chat").mkdir()
    _, raw, raw_aside = run(tmp_path / "raw", url, tasks)
    _, chat, chat_aside = run(tmp_path / "chat", url, tasks, ', prompt="chat"')
    users = [m[-1]["content"] for m in task_server.Handler.chats]
    assert all(len(m) == 1 and m[0]["role"] == "user" for m in task_server.Handler.chats)
    assert ip.check_prompt(ip.CLF_CHECK, TASKS[0]) in users and ip.instance_prompt(ip.OUTPUT_FIRST, TASKS[1]) in users
    assert len(users) == len(prompts) == 6  # three checks and three instance prompts each way
    assert chat == raw and chat_aside == raw_aside and len(chat) == 5


def test_parsing_follows_the_papers_layouts():
    assert ip.parse_generation("Example 1\nInput: a\nOutput: b\nExample 2\nOutput: c") == [("a", "b"), ("", "c")]
    assert ip.parse_generation("Input: x\nOutput: y\nInput: z") == [("x", "y")]  # a second pair is not this one's
    assert ip.parse_generation("Output: only") == [("", "only")] and ip.parse_generation("no layout") == []
    assert ip.parse_classification("Class label: A\nText: t\nMore\nClass label: B") == [("Text: t\nMore", "A"),
                                                                                       ("", "B")]
    assert ip.is_yes(" Yes.") and ip.is_yes("yes") and not ip.is_yes(" No") and not ip.is_yes("")
    assert ip.invalid("a", "a") and ip.invalid("a:", "b") and ip.invalid("a", "") and ip.invalid("a", "b") is None

"""`self_instruct`: new instructions bootstrapped from the rows' own, by the published prompt and
filters, against a server that continues the prompt (tests/task_server.py), with the novelty
filter compared to rouge-score's brute force."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from rouge_score import rouge_scorer

from recipe.algorithms.rouge_pool import RougePool
from recipe.api import load
from recipe.ops.self_instruct import encode_prompt, parse_tasks, unusable

from conftest import read_jsonl, write_jsonl
import task_server

SEEDS = ["Give three tips for staying healthy.", "What is the capital of Peru?",
         "Rewrite the sentence in the passive voice.", "Summarise the paragraph in one sentence.",
         "Classify the animal as a mammal, bird or fish.", "Suggest a name for a bakery that sells bagels.",
         "Explain why the sky looks blue during the day.", "Translate the phrase into French.",
         "List four uses for a paperclip.", "Write a haiku about autumn leaves."]
ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def brute(pool: list[tuple[str, str]], text: str, threshold: float):
    best = None
    for key, t in pool:
        f = ROUGE.score(t, text)["rougeL"].fmeasure
        if f > threshold and (best is None or f > best[1]):
            best = (key, f)
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "dd", "e", "x y"]), min_size=0, max_size=8), min_size=1,
                max_size=30), st.sampled_from([0.3, 0.5, 0.7]))
def test_the_pool_finds_what_brute_force_finds(texts, threshold):
    pool, seen = RougePool(), []
    pool.REBUILD = 4  # the matrix part and the recent texts both take part
    for i, words in enumerate(texts):
        text = " ".join(words)
        assert pool.most_similar(text, threshold) == brute(seen, text, threshold)
        pool.add(f"k{i}", text)
        seen.append((f"k{i}", text))


def test_prompts_and_answers_are_read_as_the_paper_does():
    assert encode_prompt(["Do  this:", "And\nthat"]) == "Come up with a series of tasks:\n1. Do this\n2. And that\n3."
    raw = " Plan a trip.\n4. Sort the list\n5 ) Name it\n\n6. after the stop"
    assert parse_tasks(raw, continued=True, cut=False) == ["Plan a trip.", "Sort the list", "Name it"]
    assert parse_tasks(raw, continued=True, cut=True) == ["Plan a trip.", "Sort the list"]
    chat = "Sure! Here are some tasks:\n\n1. Plan a trip.\n\n2. Sort the list.\n\nI hope these help."
    assert parse_tasks(chat, continued=False, cut=False) == ["Plan a trip.", "Sort the list."]
    assert unusable("Draw the old town for me") == ("asks for what a language model cannot do",
                                                        "asks for `draw`, which a language model cannot see or make")
    assert unusable("Name three colours.")[0] == "length" and unusable("Write a program that sorts numbers")
    assert unusable("\u00c9crivez une phrase en fran\u00e7ais.")[0] == "starts with a non-ASCII character"
    assert unusable("Name four famous painters.") is None


@pytest.fixture
def server():
    srv, url = task_server.start()
    task_server.Handler.prompts = []
    yield url
    srv.shutdown()


def grow(tmp_path, url, args, engine="duckdb", out="o"):
    data = write_jsonl(tmp_path / "seeds.jsonl", [{"instruction": s, "input": "", "output": ""} for s in SEEDS])
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nmodel lm = causal_lm("openai:{url}#toy")\nsource seeds = read("{data}", format="alpaca")\n'
                 f'grown = seeds | self_instruct(model=lm, {args})\nwrite grown to "g.jsonl"\n')
    res = load(str(f)).run(out=tmp_path / out, cache_dir=tmp_path / f"c-{out}", engine=engine)
    aside = read_jsonl(tmp_path / out / "set_aside.jsonl")
    return res, read_jsonl(tmp_path / out / "g.jsonl"), aside


def test_new_instructions_pass_the_filters_and_every_candidate_is_accounted_for(tmp_path, server):
    res, out, aside = grow(tmp_path, server, "n=5, prompts_per_round=2, per_prompt=4, from_made=1, seed=3")
    node = next(n for n in res.manifest["nodes"] if n["name"] == "grown")
    new = out[len(SEEDS):]
    assert [r["instruction"] for r in out[:len(SEEDS)]] == SEEDS and len(new) == 5
    assert node["rows_in"] + node["rows_created"] == node["rows_out"] + node["rows_set_aside"]
    assert node["rows_created"] == len(new) + len(aside)
    # in order, each kept task passes the filters and is novel against the pool before it
    pool = [(f"seeds:{i}", s) for i, s in enumerate(SEEDS)]
    made = {r["_id"]: r for r in new}
    for i in range(1, node["rows_created"] + 1):
        rid = f"grown+self_instruct{i}"
        if rid in made:
            r = made[rid]
            assert unusable(r["instruction"]) is None and brute(pool, r["instruction"], 0.7) is None
            assert r["response"] == "" and r["messages"] == [{"role": "user", "content": r["instruction"]}]
            assert 1 <= len(r["_parents"]) <= 4 and sum(p.startswith("grown+") for p in r["_parents"]) <= 1
            pool.append((rid, r["instruction"]))
    reasons = [a["reason"] for a in aside]
    assert any("asks for `picture`" in r for r in reasons) and any("3 words" in r for r in reasons)
    assert any(r.startswith("self_instruct: ROUGE-L 1.00 with `seeds:") for r in reasons)  # a prompt task copied
    assert not any("Never read" in r["instruction"] for r in new)  # after the blank line
    assert node["stats"]["made"] == 5
    # the second round's prompts draw one task from the first round's
    assert any("Tal" in p or "Mor" in p or "Ven" in p or "Sil" in p or "Dru" in p or "Ka" in p or "Pe" in p
               or "Lo" in p for p in task_server.Handler.prompts[2:])


def test_too_few_made_is_a_warning_that_says_why(tmp_path, server):
    res, out, aside = grow(tmp_path, server, "n=50, prompts_per_round=1, max_rounds=2")
    node = next(n for n in res.manifest["nodes"] if n["name"] == "grown")
    assert node["stats"]["made"] == len(out) - len(SEEDS) <= 4
    assert node["stats"]["warning"].startswith(f"made {node['stats']['made']} of n=50 new instructions in 2 rounds")


def test_prompts_hold_the_instructions_alone_without_their_inputs(tmp_path, server):
    """As the paper's: a seed's input (Alpaca's `input`, a Self-Instruct instance's) is not part
    of the example task, nor of the pool the novelty test compares with."""
    rows = [{"id": f"s{i}", "instruction": s, "instances": [{"input": f"CONTEXT-{i} data", "output": "x"}],
             "is_classification": False} for i, s in enumerate(SEEDS)]
    data = write_jsonl(tmp_path / "seeds.jsonl", rows)
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nmodel lm = causal_lm("openai:{server}#toy")\nsource seeds = read("{data}", format="self_instruct")\n'
                 'grown = seeds | self_instruct(model=lm, n=2, prompts_per_round=2)\nwrite grown to "g.json" (format="alpaca")\n')
    load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert task_server.Handler.prompts and not any("CONTEXT-" in p for p in task_server.Handler.prompts)
    import json
    written = json.loads((tmp_path / "o" / "g.json").read_text())
    assert written[0] == {"instruction": SEEDS[0], "input": "CONTEXT-0 data", "output": "x"}  # split back out


def test_alpaca_reads_whole_tasks_back_as_alpaca_did():
    from recipe.ops._alpaca_prompt import Task, encode, parse
    prompt = encode([Task("Add the numbers:", "1 2", "3"), Task("Name a colour.", "", "Red.")], "Reqs.")
    assert prompt == ("Reqs.\n###\n1. Instruction: Add the numbers\n1. Input:\n1 2\n1. Output:\n3\n###\n"
                      "2. Instruction: Name a colour.\n2. Input:\n<noinput>\n2. Output:\nRed.\n###\n3. Instruction:")
    answer = (" Sort the list.\n3. Input:\n3 1 2\n3. Output:\n1 2 3\n###\n4. Instruction: Say hi.\n4. Input:\n"
              "<noinput>\n4. Output:\nHi!\n###\n5. Instruction: Broken task\n5. Output:\nno input part\n###\n"
              "6. Instruction: Cut")
    assert parse(answer, 2, cut=False) == [Task("Sort the list.", "3 1 2", "1 2 3"), Task("Say hi.", "", "Hi!")]
    assert parse(answer, 2, cut=True) == parse(answer, 2, cut=False)  # the cut one was incomplete anyway


def test_alpaca_makes_whole_rows_with_inputs_and_outputs(tmp_path, server):
    req = tmp_path / "prompt.txt"
    req.write_text("Write tasks like these.\n\nList of 20 tasks:")
    res, out, aside = grow(tmp_path, server, f'n=4, method="alpaca", prompts_per_round=2, prompt_file="{req}"')
    new = out[len(SEEDS):]
    assert len(new) == 4 and all(r["response"] and r["_parents"] and len(r["_parents"]) == 3 for r in new)
    with_input = [r for r in new if r["input"]]
    assert with_input and all(r["instruction"] == r["messages"][0]["content"] and
                              r["instruction"].endswith("\n\n" + r["input"]) for r in with_input)
    assert all(p.startswith("Write tasks like these.\n\nList of 20 tasks:\n###\n1. Instruction: ")
               for p in task_server.Handler.prompts)
    reasons = [a["reason"] for a in aside]
    assert any("asks for `video`" in r for r in reasons) and any("the task has no output" in r for r in reasons)
    node = next(n for n in res.manifest["nodes"] if n["name"] == "grown")
    assert node["rows_in"] + node["rows_created"] == node["rows_out"] + node["rows_set_aside"]

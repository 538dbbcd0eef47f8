"""Model-backed operators: exact mechanics on real offline models (slow) and units without models."""
import math

import numpy as np
import pytest

from recipe.api import load
from recipe.ops.tag import normalise_tags, parse_tags
from recipe.runtime import ModelRuntime
from recipe.templates import Template, load_promptsource, render

from conftest import alpaca_rows, dequantised, read_jsonl, write_jsonl


def run(text, tmp_path, model_cache, out="o"):
    return load(text).run(out=tmp_path / out, cache_dir=tmp_path / "c", runtime=ModelRuntime(model_cache))


# ---- units ---------------------------------------------------------------------------------

def test_parse_tags_tolerates_small_model_output():
    assert parse_tags('[{"tag": "Math", "explanation": "x"}, {"tag": "arithmetic", "explanation": "y"}]') == ["Math", "arithmetic"]
    assert parse_tags('Sure! {"tag": "coding", "explanation": "wants code"} and {"tag": "python", "explan') == ["coding", "python"]
    assert parse_tags("- Creative writing: a poem\n- Poetry: rhyme") == ["Creative writing", "Poetry"]
    assert parse_tags("I cannot help with that.") == []
    # a preamble above a list is not a tag (it was, for most of SmolLM2's answers)
    assert parse_tags("The tag for this user query are:\n- grammar: fixing errors\n- rewriting: style") == [
        "grammar", "rewriting"]
    assert parse_tags("Tags:\n1. Desk: jobs\n2) Email: writing") == ["Desk", "Email"]
    assert parse_tags("Tag: sorting") == ["sorting"]


def test_tagging_that_leaves_most_rows_untagged_warns():
    """More than half the rows without a tag is a warning that says why (a vocabulary's
    threshold above the texts' best cosines, or answers that did not parse); half is not."""
    from recipe.ops.tag import _warn_untagged
    from recipe.table import KernelContext
    ctx = KernelContext(None, "t", {}, {})
    _warn_untagged(ctx, {"threshold": 0.5}, [["a"], [], [], []], np.array([0.6, 0.2, 0.3, 0.1]), 0)
    assert ctx.info["warning"].startswith("3 of 4 rows got no tag: their texts' best cosine to the vocabulary is "
                                          "below threshold=0.5 (the median row's best: 0.250)")
    ctx = KernelContext(None, "t", {}, {})
    _warn_untagged(ctx, {}, [["a"], ["b"], [], []], None, 2)
    assert "warning" not in ctx.info
    _warn_untagged(ctx, {"min_count": 2}, [[], [], ["x"]], None, 1)
    assert ctx.info["warning"] == ("2 of 3 rows got no tag (1 of the model's answers had no parseable tag; "
                                   "min_count=2 dropped the rest)")


def test_tag_normalisation_merges_docstring_cases():
    rows = [["Creative Writing", "python", "coding"], ["creative writings", "coding", "python"], ["coding", "python"],
            ["math problem"], ["mathematics problem"], ["rare tag"], ["coding"]]
    # 1. stemming: the two spellings of creative writing become one tag
    out, st = normalise_tags(rows)
    assert out[0][0] == out[1][0] == "creativ write"
    # a vocabulary's tags (stem=None) are kept as written
    out, _ = normalise_tags(rows, stem=None)
    assert out[0][0] == "Creative Writing" and out[1][0] == "creative writings"
    # 2. frequency filter: tags in fewer than 2 rows go
    out, _ = normalise_tags(rows, min_count=2)
    assert all("rare tag" not in r for r in out) and all("math problem" not in r for r in out)
    # 3. semantic merge: a fake embedding that puts the two math tags together
    def emb(tags):
        v = np.array([[1.0, 0.0] if "math" in t else [0.0, 1.0] if "cod" in t else [0.6, 0.8] if "python" in t
                      else [np.cos(i), np.sin(i)] for i, t in enumerate(tags)], dtype=np.float32)
        return v
    out, st = normalise_tags(rows, merge_embed=emb, merge_similarity=0.99)
    assert out[3] == out[4] and st["semantic_merged"] >= 1
    # 4. association merge: python always appears with coding, and coding is more frequent
    out, st = normalise_tags(rows, association=1.0)
    assert all("python" not in r for r in out) and "code" in out[0]
    assert st["distinct_tags"] == len({t for r in out for t in r})


def test_promptsource_and_flan_rendering(tmp_path):
    y = tmp_path / "templates.yaml"
    y.write_text('dataset: toy\ntemplates:\n  a1: !Template\n    answer_choices: no ||| yes\n    id: a1\n'
                 '    jinja: "Is {{premise}} true? ||| {{ answer_choices[label] }}"\n'
                 '    metadata: !TemplateMetadata\n      original_task: true\n    name: is_true\n'
                 '  b2: !Template\n    id: b2\n    jinja: "{{ cycler.__init__.__globals__ }} ||| x"\n    name: hostile\n')
    ts = load_promptsource(y)
    assert [t.name for t in ts] == ["hostile", "is_true"]
    assert render(ts[1], {"premise": "the sky is blue", "label": 1}) == ("Is the sky is blue true?", "yes")
    with pytest.raises(ValueError, match="hostile"):  # the sandbox refuses attribute games
        render(ts[0], {})
    flan = Template("rte#0", "flan", "{premise}\n\nQ: {hypothesis}?\n\n{options_}", "{answer}")
    inp, tgt = render(flan, {"premise": "P", "hypothesis": "H", "options": ["yes", "no"], "answer": "yes"})
    assert inp == "P\n\nQ: H?\n\nOPTIONS:\n- yes\n- no" and tgt == "yes"
    with pytest.raises(ValueError, match="needs answer, hypothesis, options_"):
        render(flan, {"premise": "P"})


def test_template_op_and_convert_accounting(tmp_path):
    y = tmp_path / "templates.yaml"
    y.write_text('templates:\n  a: !Template\n    answer_choices: no ||| yes\n    jinja: "Is {{premise}} true? ||| {{ answer_choices[label] }}"\n    name: one\n'
                 '  b: !Template\n    jinja: "Premise: {{premise}} ||| {{label}}"\n    name: two\n')
    data = write_jsonl(tmp_path / "raw.jsonl", [{"premise": f"p{i}", "label": i % 2} for i in range(5)] + [{"premise": "p", "label": 7}])
    conv = write_jsonl(tmp_path / "conv.jsonl", [{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
                                                                     {"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}]},
                                                  {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}])
    text = f'''recipe t
source raw = read("{data}", format="raw")
source conv = read("{conv}")
one = raw | format_transfer(method="template", promptsource="{y}", seed=1)
every = raw | format_transfer(method="template", promptsource="{y}", pick="all")
single = conv | format_transfer(method="convert", to="prompt_completion")
write one to "one.jsonl"
write every to "every.jsonl"
write single to "single.jsonl"
'''
    res = load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    nodes = {n["name"]: n for n in res.manifest["nodes"]}
    for n in nodes.values():
        assert n["rows_in"] + n["rows_created"] == n["rows_out"] + n["rows_set_aside"]
    # label 7 has no answer choice: `one` may set it aside, `every` still renders template two
    assert nodes["every"]["rows_created"] == 11 and nodes["every"]["rows_out"] == 11
    every = read_jsonl(tmp_path / "o" / "every.jsonl")
    assert every[0]["_parents"] == ["raw:0"] and every[0]["messages"][0]["content"] == "Is p0 true?"
    assert nodes["single"]["rows_out"] == 1
    aside = [a for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl") if a["node"] == "single"]
    assert "2 turns" in aside[0]["reason"]


# ---- real models ---------------------------------------------------------------------------

@pytest.mark.slow
def test_ifd_equals_direct_computation(tmp_path, model_cache):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(4))
    # fp32 here: this checks the IFD mechanics exactly (bf16 accuracy is tested in test_runtime)
    run(f'''recipe t
model lm = causal_lm("builtin:smollm2", dtype="fp32")
source raw = read("{data}")
s = raw | score(metric="ifd", model=lm)
write s to "s.jsonl"
''', tmp_path, model_cache)
    rows = read_jsonl(tmp_path / "o" / "s.jsonl")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    saved = dequantised(model_cache)
    tok = AutoTokenizer.from_pretrained(saved)
    model = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32).eval()

    def mean_nll(prompt_ids, ids, skip_first):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([prompt_ids + ids])).logits[0].float(), -1)
        pos = range(1 if skip_first else 0, len(ids))
        return -sum(float(logp[len(prompt_ids) + j - 1, ids[j]]) for j in pos) / len(pos)

    for r in rows:
        chat = tok.apply_chat_template([{"role": "user", "content": r["instruction"]}], tokenize=False, add_generation_prompt=True)
        p = tok(chat, add_special_tokens=False)["input_ids"]
        a = tok(r["response"], add_special_tokens=False)["input_ids"]
        want = math.exp(mean_nll(p, a, False)) / math.exp(mean_nll([], a, True))
        assert abs(r["ifd"] - want) <= 0.005 * want, (r["ifd"], want)


@pytest.mark.slow
def test_tokens_with_a_model_count_the_conversation_as_its_chat_template_renders_it(tmp_path, model_cache):
    rows = [{"conversations": [{"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello! How can I help?"},
                               {"from": "human", "value": "Count to three."}, {"from": "gpt", "value": "1, 2, 3."}]}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
source raw = read("{data}", format="sharegpt")
s = raw
  | score(metric="tokens", model=lm, on=conversation, column="chat")
  | score(metric="tokens", model=lm, on=response, column="answer")
write s to "s.jsonl"
''', tmp_path, model_cache)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(dequantised(model_cache))
    msgs = [{"role": r, "content": c} for r, c in zip(["user", "assistant"] * 2, [t["value"] for t in rows[0]["conversations"]])]
    want = len(tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"])
    out = read_jsonl(tmp_path / "o" / "s.jsonl")[0]
    assert out["chat"] == want > sum(len(tok(m["content"])["input_ids"]) for m in msgs)  # the template's tokens count
    assert out["answer"] == len(tok("Hello! How can I help?", add_special_tokens=False)["input_ids"])


@pytest.mark.slow
def test_split_turns_parts_fit_max_tokens_as_the_chat_template_counts_them(tmp_path, model_cache):
    turns = []
    for i in range(6):
        turns += [{"from": "human", "value": f"Question {i}: what is {i} plus {i}?"},
                  {"from": "gpt", "value": f"{i} plus {i} is {2 * i}."}]
    data = write_jsonl(tmp_path / "d.jsonl", [{"conversations": turns}])
    res = run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
source raw = read("{data}", format="sharegpt")
whole = raw | score(metric="tokens", model=lm, on=conversation)
parts = raw | split_turns(max_tokens=90, model=lm) | score(metric="tokens", model=lm, on=conversation)
write whole to "whole.jsonl"
write parts to "parts.jsonl"
''', tmp_path, model_cache)
    whole = read_jsonl(tmp_path / "o" / "whole.jsonl")[0]["tokens"]
    parts = read_jsonl(tmp_path / "o" / "parts.jsonl")
    assert whole > 90 and len(parts) > 1 and all(p["tokens"] <= 90 for p in parts)
    assert [m for p in parts for m in p["messages"]] == read_jsonl(tmp_path / "o" / "whole.jsonl")[0]["messages"]
    assert res.manifest["nodes"][2]["rows_created"] == len(parts) - 1


@pytest.mark.slow
def test_unify_keeps_the_argmin_loss_candidate(tmp_path, model_cache):
    rows = [{"instruction": "x", "input": f"{a} + {b}", "output": str(a + b), "task": "add"}
            for a, b in [(2, 3), (10, 5), (7, 1), (4, 4), (20, 30), (6, 9)]]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    good = "Add the two numbers in the input and output their sum as a number."
    noise = "zebra violin carpet moonlight quantum pickle orbit lantern."
    res = run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
source raw = read("{data}")
u = raw | format_transfer(method="unify", model=lm, candidates=["{noise}", "{good}"], shots=1)
write u to "u.jsonl"
''', tmp_path, model_cache)
    report = res.manifest["nodes"][1]["stats"]["unify"]["add"]
    losses = [c["loss"] for c in report["candidates"]]
    assert report["chosen"] == int(np.argmin(losses)) == 1 and losses[1] < losses[0]
    out = read_jsonl(tmp_path / "o" / "u.jsonl")
    assert all(r["definition"] == good and r["instruction"].startswith(good) for r in out)


@pytest.mark.slow
def test_unify_picks_among_the_candidates_the_data_brings(tmp_path, model_cache):
    """UIT's published transfers: each instance once per candidate definition (as its 32
    files of one task); the candidates come from a column, each instance is scored once."""
    good = "Add the two numbers in the input and output their sum as a number."
    noise = "zebra violin carpet moonlight quantum pickle orbit lantern."
    pairs = [(2, 3), (10, 5), (7, 1), (4, 4), (20, 30), (6, 9)]
    rows = [{"instruction": d, "input": f"{a} + {b}", "output": str(a + b), "task": f"{k}of2_add", "definition": d}
            for k, d in enumerate((noise, good)) for a, b in pairs]
    rows.append({"instruction": "x", "input": "1 + 1", "output": "2", "task": "2of2_add", "definition": " "})
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    res = run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
source raw = read("{data}")
u = raw
  | derive(family = regexp_replace(task, "^[0-9]+of2_", ""))
  | format_transfer(method="unify", model=lm, task_column="family", candidates_from=definition, shots=0)
  | dedupe(method="exact", on=conversation)
write u to "u.jsonl"
''', tmp_path, model_cache)
    report = res.manifest["nodes"][2]["stats"]["unify"]["add"]
    assert [c["definition"] for c in report["candidates"]] == [noise, good]  # a blank value is no candidate
    assert report["chosen"] == 1 and report["instances"] == 7 and "generated" not in report
    out = read_jsonl(tmp_path / "o" / "u.jsonl")
    assert len(out) == 7 and all(r["definition"] == good and r["instruction"].startswith(good) for r in out)


@pytest.mark.slow
def test_necessity_ranks_garbage_above_correct(tmp_path, model_cache):
    rows = [{"instruction": "What is the capital of France?", "input": "", "output": "The capital of France is Paris."},
            {"instruction": "What is the capital of France?", "input": "", "output": "Banana helicopter seventeen purple."}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
source raw = read("{data}")
n = raw | necessity(method="loss", model=lm)
write n to "n.jsonl"
''', tmp_path, model_cache)
    good, bad = read_jsonl(tmp_path / "o" / "n.jsonl")
    assert bad["necessity"] > good["necessity"]


@pytest.mark.slow
def test_fuse_and_tag_account_for_every_row(tmp_path, model_cache):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(4))
    res = run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
model emb = embedding("builtin:minilm")
source raw = read("{data}")
grown = raw
  | fuse(method="expand", model=lm, max_new_tokens=48, rounds=2, max_new=6)
  | tag(method="vocab", model=emb, vocab=["math", "writing", "description", "coding"], threshold=0.1, top=2)
tagged = raw | tag(model=lm, max_new_tokens=48, on_unparsed="set_aside")
write grown to "g.jsonl"
write tagged to "t.jsonl"
''', tmp_path, model_cache)
    nodes = {n["name"]: n for n in res.manifest["nodes"]}
    fz = nodes["grown/fuse"]
    assert fz["rows_in"] + fz["rows_created"] == fz["rows_out"] + fz["rows_set_aside"]
    assert 0 < fz["rows_created"] <= 6 + 0  # capped
    out = read_jsonl(tmp_path / "o" / "g.jsonl")
    new = [r for r in out if r["_parents"]]
    assert len(new) == fz["rows_created"] - fz["rows_set_aside"]
    assert all(p.startswith("raw:") or "+expand" in p for r in new for p in r["_parents"])
    aside = [a for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl") if a["node"] == "grown/fuse"]
    assert all(a["reason"].startswith("fuse: ") for a in aside)
    assert all(1 <= len(r["tags"]) <= 2 for r in out)
    # a vocabulary's tags come out as written (not stemmed: "writing" stayed "writing")
    assert {t for r in out for t in r["tags"]} <= {"math", "writing", "description", "coding"}
    tg = nodes["tagged"]
    assert tg["rows_out"] + tg["rows_set_aside"] == 4 and tg["stats"]["unparsed_rows"] == tg["rows_set_aside"]


def test_reward_score_with_a_tiny_classifier(tmp_path):
    import torch
    from conftest import tiny_reward
    model, fast = tiny_reward(tmp_path / "rm")
    rows = [{"instruction": f"w{i} w{i + 1}", "input": "", "output": f"w{i * 2} w3 w{i}"} for i in range(5)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    load(f'''recipe t
model rm = reward("{tmp_path / 'rm'}")
source raw = read("{data}")
s = raw | score(metric="reward", model=rm)
write s to "s.jsonl"
''').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    got = [r["reward"] for r in read_jsonl(tmp_path / "o" / "s.jsonl")]
    model.eval()
    for r, g in zip(rows, got):
        enc = fast(r["instruction"], r["output"], return_tensors="pt")
        with torch.no_grad():
            want = float(model(**enc).logits[0, 0])
        assert abs(g - want) < 1e-4


@pytest.mark.slow
def test_fuse_pairs_later_rounds_pair_the_rows_made_before(tmp_path, model_cache):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(8))
    res = run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
model emb = embedding("builtin:minilm")
source raw = read("{data}")
grown = raw | fuse(method="pair", model=lm, embedding=emb, max_new_tokens=64, rounds=2)
write grown to "g.jsonl"
''', tmp_path, model_cache)
    out = read_jsonl(tmp_path / "o" / "g.jsonl")
    aside = [a["_id"] for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl") if a["node"] == "grown"]
    made = {r["_id"]: r for r in out if r["_parents"]}
    first = [i for i in made if i.endswith("+pair1")]
    tried_first = first + [i for i in aside if i.endswith("+pair1")]
    tried_second = [i for i in list(made) + aside if i.endswith("+pair2")]
    assert len(tried_first) == 4  # 8 rows, 4 pairs
    assert len(first) >= 2, "the model made too few rows in round 1 for a second round"
    assert len(tried_second) == len(first) // 2  # round 2 pairs the rows round 1 made
    for i in tried_second:
        if i in made:
            assert set(made[i]["_parents"]) <= set(first)
        else:
            assert any(i.startswith(f + "+") for f in first)
    fz = {n["name"]: n for n in res.manifest["nodes"]}["grown"]
    assert fz["rows_in"] + fz["rows_created"] == fz["rows_out"] + fz["rows_set_aside"]


@pytest.mark.slow
def test_respond_answers_questions_turn_by_turn_with_smollm2(tmp_path, model_cache):
    """examples/answers.recipe on the real model: each question answered, later turns after the
    earlier answers, under SmolLM2's chat template."""
    from pathlib import Path
    from recipe.api import load as load_file
    root = Path(__file__).resolve().parent.parent
    res = load_file(str(root / "examples" / "answers.recipe")).run(
        out=tmp_path / "o", cache_dir=tmp_path / "c", runtime=ModelRuntime(model_cache))
    node = next(n for n in res.manifest["nodes"] if n["name"] == "answered/respond")
    out = [r["conversations"] for r in read_jsonl(tmp_path / "o" / "answers.jsonl")]
    asked = [r["turns"] for r in read_jsonl(root / "examples" / "data" / "questions.jsonl")]
    assert node["rows_in"] == 6 and node["rows_out"] + node["rows_set_aside"] == 6 and node["rows_out"] >= 5
    for conv in out:
        turns = next(t for t in asked if t[0] == conv[0]["value"])
        assert [m["from"] for m in conv] == ["human", "gpt"] * len(turns)
        assert [m["value"] for m in conv[::2]] == turns and all(m["value"].strip() for m in conv[1::2])
    by_q = {conv[0]["value"]: conv for conv in out}
    assert "Paris" in by_q["What is the capital of France?"][1]["value"]
    assert "51" in by_q["What is 17 multiplied by 3?"][1]["value"]


@pytest.mark.slow
def test_self_instruct_bootstraps_novel_instructions_with_smollm2(tmp_path, model_cache):
    """SmolLM2 continues the published prompt; what it writes is kept only past the paper's
    filters, and every candidate is accounted for."""
    from rouge_score import rouge_scorer
    from recipe.ops.self_instruct import unusable
    seeds = ["Give three tips for staying healthy.", "What is the capital of Peru?",
             "Rewrite the sentence in the passive voice.", "Summarise the paragraph in one sentence.",
             "Classify the animal as a mammal, bird or fish.", "Suggest a name for a bakery that sells bagels.",
             "Explain why the sky looks blue during the day.", "List four uses for a paperclip."]
    data = write_jsonl(tmp_path / "s.jsonl", [{"instruction": s, "input": "", "output": ""} for s in seeds])
    res = run(f'''recipe t
model lm = causal_lm("builtin:smollm2")
source seeds = read("{data}")
grown = seeds | self_instruct(model=lm, n=3, prompts_per_round=2, max_new_tokens=120, max_rounds=2)
write grown to "g.jsonl"
''', tmp_path, model_cache)
    node = next(n for n in res.manifest["nodes"] if n["name"] == "grown")
    new = read_jsonl(tmp_path / "o" / "g.jsonl")[len(seeds):]
    assert node["rows_in"] + node["rows_created"] == node["rows_out"] + node["rows_set_aside"]
    assert 1 <= len(new) <= 3 and node["stats"]["made"] == len(new)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = list(seeds)
    for r in new:
        assert unusable(r["instruction"]) is None
        assert max(scorer.score(p, r["instruction"])["rougeL"].fmeasure for p in pool) <= 0.7
        pool.append(r["instruction"])

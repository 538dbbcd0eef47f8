"""`respond`: rows answered by an LM, checked against the model itself (a tiny llama built here,
with a chat template): each answer is what `generate` gives for the conversation rendered by the
template, multi-turn rows are answered turn by turn with the earlier answers in the prompt, and
every row not answered is either left as it was or set aside with its reason."""
from __future__ import annotations

import pytest

from recipe.api import load
from recipe.ops.respond import plan_rows
from recipe.runtime.backends import Chat, cache_item

from conftest import read_jsonl, run_recipe, tiny_chat_lm, tiny_reward, write_jsonl

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "lm"
    model, tok = tiny_chat_lm(path)
    return path, model, tok


def direct(tiny, turns, max_new_tokens):
    """What the model writes after the template's rendering of `turns`, greedy."""
    import torch
    _, model, tok = tiny
    text = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def run(tmp_path, tiny, rows, steps: str, fmt="alpaca"):
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    return run_recipe(tmp_path, f'recipe r\nmodel lm = causal_lm("{tiny[0]}", dtype="fp32")\n'
                                f'source raw = read("{data}", format="{fmt}")\n{steps}')


def test_unanswered_rows_get_the_models_answer_and_answered_rows_stay(tmp_path, tiny):
    rows = [{"instruction": "w1 w2 w3", "input": "", "output": ""},
            {"instruction": "w4 w5", "input": "w6", "output": ""},
            {"instruction": "w7 w8", "input": "", "output": "w9 w10 w11"}]
    res, aside = run(tmp_path, tiny, rows, 'a = raw | respond(model=lm, max_new_tokens=6, keep_truncated=true)\n'
                                           'write a to "a.jsonl"\n')
    out = read_jsonl(tmp_path / "o" / "a.jsonl")
    assert aside == {} and [r["answered_by"] for r in out] == ["lm", "lm", None]
    for r in out[:2]:
        user = r["messages"][0]
        assert r["messages"][1] == {"role": "assistant", "content": direct(tiny, [user], 6)} and r["response"]
        assert r["response"] == r["messages"][1]["content"] and len(r["messages"]) == 2
    assert out[1]["messages"][0]["content"] == "w4 w5\n\nw6"  # the input is part of the question
    assert out[2]["response"] == "w9 w10 w11"
    node = next(n for n in res.manifest["nodes"] if n["name"] == "a")
    assert node["stats"]["answered"] == 2 and node["stats"]["left as they were"] == 1


def test_replace_answers_again_and_a_system_prompt_is_written_with_the_turns(tmp_path, tiny):
    rows = [{"instruction": "w7 w8", "input": "", "output": "w9 w10 w11"}]
    run(tmp_path, tiny, rows, 'a = raw | respond(model=lm, replace=true, system="w30 w31", max_new_tokens=5, '
                              'keep_truncated=true)\nwrite a to "a.jsonl"\n')
    (r,) = read_jsonl(tmp_path / "o" / "a.jsonl")
    turns = [{"role": "system", "content": "w30 w31"}, {"role": "user", "content": "w7 w8"}]
    assert r["messages"] == turns + [{"role": "assistant", "content": direct(tiny, turns, 5)}]
    assert r["response"] != "w9 w10 w11" and r["answered_by"] == "lm"


def test_all_turns_answers_every_turn_again_with_the_new_answers_in_the_prompts(tmp_path, tiny):
    conv = lambda *ts: [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(ts)]  # noqa: E731
    rows = [{"messages": conv("w1 w2", "old one", "w3 w4", "old two")},
            {"messages": conv("w5", "old")},
            {"messages": conv("w6", "old") + [{"role": "user", "content": "w7"}, {"role": "user", "content": "w8"}]}]
    res, aside = run(tmp_path, tiny, rows, 'a = raw | respond(model=lm, replace=true, all_turns=true, max_new_tokens=4, '
                                           'keep_truncated=true)\nwrite a to "a.jsonl"\n', fmt="openai")
    out = {r["_id"]: r for r in read_jsonl(tmp_path / "o" / "a.jsonl")}
    new: list[dict] = []
    for q in ("w1 w2", "w3 w4"):
        new.append({"role": "user", "content": q})
        new.append({"role": "assistant", "content": direct(tiny, new, 4)})
    assert out["raw:0"]["messages"] == new and new[1]["content"] != "old one"
    assert out["raw:1"]["messages"][1]["content"] == direct(tiny, conv("w5"), 4)
    assert aside == {"raw:2": "respond: the turns do not alternate between user and assistant (all_turns would "
                              "change the conversation's shape)"}
    # without all_turns only the last answer is new, its prompt holding the old first answer
    run(tmp_path, tiny, rows[:1], 'a = raw | respond(model=lm, replace=true, max_new_tokens=4, '
                                  'keep_truncated=true)\nwrite a to "a.jsonl"\n', fmt="openai")
    (r,) = read_jsonl(tmp_path / "o" / "a.jsonl")
    assert r["messages"][:3] == rows[0]["messages"][:3]
    assert r["messages"][3]["content"] == direct(tiny, rows[0]["messages"][:3], 4)


def test_turns_are_answered_in_order_with_the_earlier_answers_in_the_prompt(tmp_path, tiny):
    rows = [{"turns": ["w1 w2", "w3 w4", "w5"]}, {"turns": ["w6 w7"]}, {"turns": []}, {"turns": "w8"}]
    res, aside = run(tmp_path, tiny, rows, 'a = raw | respond(model=lm, turns=turns, max_new_tokens=4, '
                                           'keep_truncated=true)\nwrite a to "a.jsonl"\n', fmt="raw")
    out = {r["_id"]: r for r in read_jsonl(tmp_path / "o" / "a.jsonl")}
    conv: list[dict] = []
    for q in rows[0]["turns"]:
        conv.append({"role": "user", "content": q})
        conv.append({"role": "assistant", "content": direct(tiny, conv, 4)})
    assert out["raw:0"]["messages"] == conv
    assert out["raw:0"]["instruction"] == "w1 w2" and out["raw:0"]["response"] == conv[1]["content"]
    assert len(out["raw:1"]["messages"]) == 2
    assert aside == {"raw:2": "respond: `turns` holds no turn to answer",
                     "raw:3": "respond: `turns` is not a list of texts"}
    node = next(n for n in res.manifest["nodes"] if n["name"] == "a")
    assert node["rows_in"] == node["rows_out"] + node["rows_set_aside"] == 4


def test_cut_off_answers_and_prompts_too_long_for_the_context_are_set_aside(tmp_path, tiny):
    # the model's context is 64 tokens: with max_new_tokens=8 a prompt may take 56
    long = " ".join(f"w{i % 40}" for i in range(60))
    qs = ("w7 w8", "w20 w21", "w1 w18")
    rows = [{"instruction": q, "input": "", "output": ""} for q in qs + (long,)]
    res, aside = run(tmp_path, tiny, rows, 'a = raw | respond(model=lm, max_new_tokens=8)\nwrite a to "a.jsonl"\n')
    cut, odd, done = (direct(tiny, [{"role": "user", "content": q}], 8) for q in qs)
    _, _, tok = tiny
    assert len(cut.split()) == 8
    # this seed's model: "w20 w21" is answered with 8 tokens, two of which do not decode (so its
    # text is 6 words, and re-counting it, as respond did until session 32, passed it as
    # whole); "w1 w18" writes its end token as the 8th: whole, although it used them all
    assert len(odd.split()) == 6 and len(done.split()) == 6 and len(tok(done)["input_ids"]) == 6
    why = "respond: the answer was cut off at 8 tokens (raise max_new_tokens, or keep_truncated=true)"
    assert aside == {"raw:0": why, "raw:1": why,
                     "raw:3": "respond: the prompt is 62 tokens: with max_new_tokens=8 it does not fit the model's "
                              "context of 64"}
    assert [r["response"] for r in read_jsonl(tmp_path / "o" / "a.jsonl")] == [done]


def test_plan_rows_answers_what_has_no_answer():
    u = lambda t: {"role": "user", "content": t}  # noqa: E731
    a = lambda t: {"role": "assistant", "content": t}  # noqa: E731
    convs = [[u("q")], [u("q"), a("")], [u("q"), a("x")], [a("hello")], [u("q1"), a("x"), u("q2")]]
    plans, drop = plan_rows(convs, None, False, None, None)
    assert plans == {0: ([], ["q"]), 1: ([], ["q"]), 4: ([u("q1"), a("x")], ["q2"])}
    assert drop == {3: "respond: no user turn to answer"}
    plans, _ = plan_rows(convs, None, True, "be brief", None)
    assert plans[2] == ([{"role": "system", "content": "be brief"}], ["q"])


def test_an_endpoint_gets_the_turns_and_keys_them_apart():
    c = Chat.of([{"role": "system", "content": "s"}, {"role": "user", "content": "q1"},
                 {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}])
    assert str(c) == "q2" and c.messages() == [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"},
                                               {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    assert cache_item(c) != cache_item(Chat("q2", "s"))
    assert cache_item(Chat("q2", "s")) == ["chat", "q2", "s"]  # a single turn keys as it always did
    import pickle
    assert pickle.loads(pickle.dumps(c)).messages() == c.messages()


def test_candidates_are_sampled_and_the_reward_model_picks_the_best(tmp_path, tiny):
    import torch
    from recipe.runtime import ModelRuntime
    rm, rtok = tiny_reward(tmp_path / "rm")
    rows = [{"instruction": q, "input": "", "output": ""} for q in ("w1 w2 w3", "w5 w6")]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nmodel lm = causal_lm("{tiny[0]}", dtype="fp32")\nmodel rm = reward("{tmp_path / "rm"}")\n'
                 f'source raw = read("{data}")\n'
                 'a = raw | respond(model=lm, candidates=4, pick=rm, temperature=1.0, seed=7, max_new_tokens=5, '
                 'keep_truncated=true)\nwrite a to "a.jsonl"\n')
    load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    out = read_jsonl(tmp_path / "o" / "a.jsonl")
    lm = {"kind": "causal_lm", "source": str(tiny[0]), "options": {"dtype": "fp32"}, "identity": "tiny-direct"}
    rt = ModelRuntime(tmp_path / "direct")
    for row, r in zip(rows, out):
        prompt = tiny[2].apply_chat_template([{"role": "user", "content": row["instruction"]}], tokenize=False,
                                             add_generation_prompt=True)
        cands = [c.strip() for c in rt.generate(lm, [prompt], n=4, max_new_tokens=5, temperature=1.0, seed=7)[0]]
        assert len(set(cands)) > 1  # sampled: the candidates differ
        with torch.no_grad():
            rewards = [float(rm(**rtok(row["instruction"], c, return_tensors="pt")).logits[0, 0]) for c in cands]
        best = max(range(4), key=lambda c: (rewards[c], -c))
        assert r["response"] == cands[best] and abs(r["answer_reward"] - rewards[best]) < 1e-4


def test_check_warns_of_scores_that_a_replaced_answer_makes_stale(tmp_path):
    """W0414: a column describing the text, computed before `respond(replace=true)`; answering
    unanswered rows leaves what was said of their questions true (no warning)."""
    d = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "w1 w2", "output": "w3"}])
    f = tmp_path / "r.recipe"
    body = (f'recipe r\nmodel lm = causal_lm("builtin:smollm2")\nsource raw = read("{d}")\n'
            'a = raw | score(metric="words", on=response) | derive(n = length(response), k = 1) | respond(model=lm{})\n'
            'write a to "a.jsonl"\n')
    f.write_text(body.format(", replace=true"))
    (w,) = [x for x in load(str(f)).check().diagnostics if x.code == "W0414"]
    assert w.severity == "warning" and w.message.startswith("`words`, `n` were computed from the text before `respond`")
    f.write_text(body.format(""))
    assert not [x for x in load(str(f)).check().diagnostics if x.code == "W0414"]

"""`split_turns`: conversations cut into parts of whole exchanges that fit `max_tokens`."""
from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from recipe.api import load
from recipe.ops.split_turns import _parts, exchanges

from conftest import write_jsonl


def words(items):
    return [sum(len(m["content"].split()) for m in ms) for ms in items]


def conv(*turns):
    roles = {"s": "system", "u": "user", "a": "assistant"}
    return [{"role": roles[t[0]], "content": t[1:]} for t in turns]


def test_exchanges_start_at_each_user_turn_after_the_system_prompt():
    msgs = conv("sbe brief", "aa greeting first", "uq1", "aa1", "aa1 more", "uq2", "aa2")
    assert exchanges(msgs) == ([0], [[1], [2, 3, 4], [5, 6]])


def test_parts_are_greedy_runs_of_exchanges_and_an_exchange_too_long_alone_is_left_out():
    msgs = conv("sx x", "ua", "ab b", "uc c c", "ad d d d d d d", "ue", "af")
    # with the system prompt: exchange 1 = 2+1+2 = 5 words, exchange 2 = 2+3+7 = 12, exchange 3 = 2+1+1 = 4
    parts, dropped = _parts([msgs], 8, words)
    assert parts == [[[0, 1, 2], [0, 5, 6]]] and dropped == [[12]]  # 1 and 3 are not neighbours
    parts, dropped = _parts([msgs], 12, words)
    assert parts == [[[0, 1, 2], [0, 3, 4], [0, 5, 6]]] and dropped == [[]]
    parts, _ = _parts([msgs], 15, words)  # 1 and 2 together: 2+1+2+3+7 = 15 words
    assert parts == [[[0, 1, 2, 3, 4], [0, 5, 6]]]


turn = st.builds(lambda r, n: {"role": r, "content": " ".join(["w"] * n)},
                 st.sampled_from(["user", "assistant"]), st.integers(0, 6))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(turn, min_size=1, max_size=9), min_size=1, max_size=5), st.integers(1, 14),
       st.integers(0, 3))
def test_every_part_fits_and_no_two_neighbours_would(convs, limit, system_words):
    sys = [{"role": "system", "content": " ".join(["s"] * system_words)}] if system_words else []
    convs = [sys + c for c in convs]
    parts, dropped = _parts(convs, limit, words)
    for msgs, ps, dr in zip(convs, parts, dropped):
        s, groups = exchanges(msgs)
        for p in ps:
            assert p[:len(s)] == s and words([[msgs[j] for j in p]])[0] <= limit
        # every exchange is in exactly one part, in order, or was left out for being too long alone
        kept = [j for p in ps for j in p[len(s):]]
        alone = {tuple(g): words([[msgs[j] for j in s + g]])[0] for g in groups}
        assert kept == [j for g in groups if alone[tuple(g)] <= limit for j in g]
        assert sorted(dr) == sorted(n for n in alone.values() if n > limit)
        # greedy: a part followed directly by the next exchange could not have taken it
        for a, b in zip(ps, ps[1:]):
            nxt = next(g for g in groups if g[0] == b[len(s)])
            if a[-1] + 1 == nxt[0]:
                assert words([[msgs[j] for j in a + nxt]])[0] > limit


def test_a_run_splits_rows_into_parts_with_ids_parents_and_sliced_weights(tmp_path):
    long = {"conversations": [{"from": "human", "value": "one two three", "weight": 0},
                              {"from": "gpt", "value": "four five six", "weight": 1},
                              {"from": "human", "value": "seven eight", "weight": 0},
                              {"from": "gpt", "value": "nine ten", "weight": 0}]}
    short = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    huge = {"conversations": [{"from": "human", "value": " ".join(["x"] * 30)}, {"from": "gpt", "value": "ok"}]}
    data = write_jsonl(tmp_path / "d.jsonl", [long, short, huge])
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nsource raw = read("{data}", format="sharegpt")\nx = raw | split_turns(max_tokens=8)\n'
                 'write x to "x.jsonl"\nwrite x to "s.jsonl" (format="sharegpt")\n')
    res = load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    rows = [json.loads(x) for x in (tmp_path / "out" / "x.jsonl").read_text().splitlines()]
    assert [r["_id"] for r in rows] == ["raw:0", "raw:0+part2", "raw:1"]
    assert rows[1]["_parents"] == ["raw:0"] and rows[1]["instruction"] == "seven eight" and rows[1]["response"] == "nine ten"
    assert rows[0]["response"] == "four five six"
    sg = [json.loads(x)["conversations"] for x in (tmp_path / "out" / "s.jsonl").read_text().splitlines()]
    assert [t["weight"] for t in sg[0]] == [0, 1] and [t["weight"] for t in sg[1]] == [0, 0]
    aside = [json.loads(x) for x in (tmp_path / "out" / "set_aside.jsonl").read_text().splitlines()]
    assert aside == [{"_id": "raw:2", "node": "x", "reason": "split_turns: its one exchange is 31 tokens, over max_tokens 8"}]
    step = res.manifest["nodes"][1]
    assert (step["rows_in"], step["rows_created"], step["rows_out"], step["rows_set_aside"]) == (3, 1, 3, 1)
    # a part's own path starts where it was made (explain found no created row before session 30)
    from recipe.explain import explain
    assert explain(tmp_path / "out", "raw:0+part2", tmp_path / "cache") == [
        "x (split_turns): created from raw:0; instruction='seven eight'", f"written to {tmp_path / 'out' / 'x.jsonl'}",
        f"written to {tmp_path / 'out' / 's.jsonl'}"]

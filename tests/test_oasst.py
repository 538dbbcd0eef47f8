"""OASST's exports read as conversations: the message export (nested or one message a line,
linked by `parent_id`), the best path of each tree ending at its last answer, and
`branches="all"` for every conversation of a tree."""
from __future__ import annotations

import pytest

from recipe.io.readers import iter_rows

from conftest import write_jsonl
from test_readers import read_all


def test_oasst_message_exports_nested_and_flat(tmp_path):
    def msg(i, parent, role, text, rank=None, replies=None):
        m = {"message_id": i, "parent_id": parent, "role": role, "text": text, "rank": rank, "lang": "en"}
        return m | ({"replies": replies} if replies is not None else {})
    # one root message per line with its replies nested (OASST's message export)
    nested = msg("r", None, "prompter", "Hi?", replies=[
        msg("a1", "r", "assistant", "worse", rank=1, replies=[]),
        msg("a2", "r", "assistant", "best", rank=0, replies=[msg("p2", "a2", "prompter", "thanks", replies=[])])])
    (good, bad) = read_all(write_jsonl(tmp_path / "n.jsonl", [nested]))
    assert not bad and [m["content"] for m in good[0][1]["messages"]] == ["Hi?", "best"]
    assert good[0][1]["lang"] == "en" and "replies" not in good[0][1]
    # one message per line, linked by parent_id only, in any order; an orphan reply
    flat = [msg("a2", "r", "assistant", "best", rank=0), msg("r", None, "prompter", "Hi?"),
            msg("p2", "a2", "prompter", "thanks"), msg("a1", "r", "assistant", "worse", rank=1),
            msg("x", "missing", "assistant", "lost"), msg("r2", None, "prompter", "Alone?")]
    (good, bad) = read_all(write_jsonl(tmp_path / "f.jsonl", flat))
    assert [[m["content"] for m in g[1]["messages"]] for g in good] == [["Hi?", "best"], ["Alone?"]]
    reasons = {rid.rsplit(":", 1)[1]: why for rid, why in bad}
    assert set(reasons) == {"0", "2", "3", "4"}  # every line is a row or is set aside, with why
    assert "conversation that starts at message r" in reasons["0"] and "not in this file" in reasons["4"]


def test_oasst_branches_all_is_every_conversation_of_a_tree(tmp_path):
    """`read(..., branches="all")`: a row for each path from the prompt to a last answer, in
    rank order (`.0` is the best path), a deleted reply in none, a prompt nobody answered cut
    off and its path not repeated; the flat message form too; `check` refuses another value
    or another format."""
    from recipe.api import load
    from recipe.diagnostics import RecipeError
    tree = {"message_tree_id": "t1", "prompt": {"text": "Hi?", "role": "prompter", "replies": [
        {"text": "second", "role": "assistant", "rank": 1, "replies": [
            {"text": "more?", "role": "prompter", "replies": [{"text": "more.", "role": "assistant", "replies": []}]}]},
        {"text": "gone", "role": "assistant", "rank": 2, "deleted": True, "replies": []},
        {"text": "best", "role": "assistant", "rank": 0, "replies": [
            {"text": "thanks", "role": "prompter", "replies": []}, {"text": "bye", "role": "prompter", "replies": []}]}]}}
    p = write_jsonl(tmp_path / "t.jsonl", [tree, {"message_tree_id": "t2", "prompt": {"text": "Alone?", "role": "prompter"}}])
    got = list(iter_rows("src", [p], None, log=lambda *_: None, branches="all"))
    assert [(rid, [m["content"] for m in row["messages"]]) for rid, row, _, _ in got] == [
        ("src:0.0", ["Hi?", "best"]), ("src:0.1", ["Hi?", "second", "more?", "more."]), ("src:1.0", ["Alone?"])]
    assert all(row["message_tree_id"] == ("t1" if rid.startswith("src:0") else "t2") for rid, row, _, _ in got)
    flat = [{"message_id": "r", "parent_id": None, "role": "prompter", "text": "Q?"},
            {"message_id": "a", "parent_id": "r", "role": "assistant", "text": "A.", "rank": 0},
            {"message_id": "b", "parent_id": "r", "role": "assistant", "text": "B.", "rank": 1}]
    got = list(iter_rows("src", [write_jsonl(tmp_path / "f.jsonl", flat)], None, log=lambda *_: None, branches="all"))
    assert [(rid, row and row["response"], why and why.split(": ")[1][:12]) for rid, row, why, _ in got] == [
        ("src:0.0", "A.", None), ("src:0.1", "B.", None), ("src:1", None, "an OASST rep"), ("src:2", None, "an OASST rep")]
    r = load(f'recipe o\nsource t = read("{p}", branches="all")\nwrite t to "t.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert r.manifest["nodes"][0]["rows_out"] == 3
    for opts, msg in (('branches="every"', "is `best` or `all`"), ('format="alpaca", branches="all"', "format `alpaca` has none")):
        with pytest.raises(RecipeError, match=msg):
            load(f'recipe o\nsource t = read("{p}", {opts})\nwrite t to "t.jsonl"\n').check()

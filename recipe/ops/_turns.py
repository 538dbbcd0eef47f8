"""Rewriting the text of rows, for operators that edit text in place (redact, normalize).

`on="conversation"` is every turn, system prompts included, and the `input` and `context`
columns that a reader joined into the user turn (the Alpaca and Dolly writers split them back
out: left alone they would write the original text again). The turns a reader kept for their
own fields (ShareGPT's `conversations` with a `weight`) are rewritten with them: a canonical
sink writes that column, and it held the original text (an address `redact` had replaced). `instruction` or `response` is
that turn alone (the first user turn; the first assistant turn after it), another column that
column. `instruction` and `response` always follow the rewritten turns.
"""
from __future__ import annotations

from typing import Callable, Iterator

import pyarrow as pa

from ..io.formats import KEPT_TURNS, map_kept

JOINED = ("input", "context")  # columns a reader joined into the user turn (io/formats.py `_join`)
TURN_FIELDS = ("conversation", "instruction", "response")


def reads(on: str) -> list[str]:
    return [] if on in TURN_FIELDS else [on]


def rewrite(src, on: str, fix: Callable[[str], tuple[str, list]], size: int = 10_000,
            unjoin: Callable[[str], bool] | None = None) -> Iterator[tuple[pa.Table, list[list]]]:
    """The columns that hold the texts `on` names, each text replaced by `fix(text)[0]` (row for
    row, types kept), a batch of `size` rows at a time, with each row's findings: the lists
    `fix` returned for its texts, joined. A joined `input`/`context` is fixed again alone; its
    findings were counted in the turn. With `unjoin`, a joined input for which it is true is
    first taken out of its column and its user turn (finding "placeholder_input"), when `on`
    holds the user turn. Streamed: memory holds a batch's texts as Python values, not the
    column's (a whole-column rewrite of 300k P3 rows peaked at 3.4 GB)."""
    turns = on in TURN_FIELDS
    kept = [(c, k) for c, _, k in KEPT_TURNS if c in src.columns()] if turns else []
    cols = (["messages", "instruction", "response"] + [c for c in JOINED if c in src.columns()]
            + [c for c, _ in kept]) if turns else [on]
    for tbl in src.batches(cols, size):
        yield _rewritten(tbl, cols, on, turns, kept, fix, unjoin if on in ("conversation", "instruction") else None)


def stream(parts: Iterator[pa.Table]) -> pa.RecordBatchReader | pa.Table:
    """Tables of new columns, in row order, as the reader `Output.add_columns` streams from
    (an empty table where there are none: no rows)."""
    import itertools
    first = next(parts, None)
    if first is None:
        return pa.table({})
    return pa.RecordBatchReader.from_batches(first.schema, (b for t in itertools.chain([first], parts)
                                                             for b in t.to_batches()))


def _rewritten(tbl: pa.Table, cols: list[str], on: str, turns: bool, kept: list, fix,
               unjoin=None) -> tuple[pa.Table, list[list]]:
    data = {c: tbl.column(c).to_pylist() for c in cols}
    found: list[list] = [[] for _ in range(tbl.num_rows)]
    if unjoin is not None:
        for c in JOINED:
            for i, v in enumerate(data.get(c) or []):
                if isinstance(v, str) and v.strip() and unjoin(v) and _unjoined(data["messages"][i] or [], v):
                    data[c][i] = ""
                    found[i].append("placeholder_input")

    def one(i: int, text):
        if not isinstance(text, str):
            return text
        out, f = fix(text)
        found[i] += f
        return out

    if turns:
        for i, msgs in enumerate(data["messages"]):
            msgs = msgs or []
            for j in targets(msgs, on):
                msgs[j] = {**msgs[j], "content": one(i, msgs[j]["content"])}
            if on == "conversation":
                for c in JOINED:
                    if c in data and isinstance(data[c][i], str):
                        data[c][i] = fix(data[c][i])[0]
            for c, key in kept:
                data[c][i] = _kept_turns(data[c][i], key, len(msgs), targets(msgs, on), fix)
            data["instruction"][i], data["response"][i] = pair(msgs, data["instruction"][i], data["response"][i])
    else:
        data[on] = [one(i, t) for i, t in enumerate(data[on])]
    return pa.table({c: pa.array(data[c], tbl.schema.field(c).type) for c in cols}), found


def _unjoined(msgs: list, joined: str) -> bool:
    """Take `joined` (an input a reader joined to the last user turn, `io/formats._join`)
    out of that turn, in place; False when the turn does not end with it (edited since)."""
    user = [j for j, m in enumerate(msgs) if m.get("role") == "user"]
    tail = "\n\n" + joined
    if not user or not (msgs[user[-1]].get("content") or "").endswith(tail):
        return False
    msgs[user[-1]] = {**msgs[user[-1]], "content": msgs[user[-1]]["content"][:-len(tail)]}
    return True


def _kept_turns(value, key: str, n: int, at: list[int], fix):
    """A kept-turns value with the text `key` of the turns at `at` fixed, when it has the
    messages' `n` turns; of every turn when it does not (a turn dropped or fused since: which is
    which is unknown, and none may keep its old text); text that is no JSON list, fixed whole."""
    def fixed(turns):
        which = set(at) if len(turns) == n else set(range(len(turns)))
        return [{**t, key: fix(t[key])[0]} if j in which and isinstance(t, dict) and isinstance(t.get(key), str) else t
                for j, t in enumerate(turns)]
    return map_kept(value, fixed, bad=lambda v: fix(v)[0] if isinstance(v, str) else v)


def targets(msgs: list, on: str) -> list[int]:
    """The turns `on` names: all; the first user turn; the first assistant turn after it."""
    if on == "conversation":
        return list(range(len(msgs)))
    user = next((i for i, m in enumerate(msgs) if m.get("role") == "user"), None)
    if on == "instruction":
        return [] if user is None else [user]
    start = 0 if user is None else user + 1
    return [i for i in range(start, len(msgs)) if msgs[i].get("role") == "assistant"][:1]


def pair(msgs: list, instruction, response) -> tuple:
    """`instruction` and `response` as the readers derive them from the turns (the first user
    turn, the first assistant turn after it); unchanged where there is no such turn."""
    user = targets(msgs, "instruction")
    answer = targets(msgs, "response")
    return (msgs[user[0]]["content"] if user else instruction, msgs[answer[0]]["content"] if answer else response)

"""split_turns: cut conversations longer than a context into parts that fit, as FastChat's
`split_long_conversation` does for Vicuna's ShareGPT data: a part is a run of whole exchanges (a
user turn and the turns after it up to the next user turn), each part starts with the
conversation's system prompt, and every part's tokens, counted as the model's chat template
renders it (`score(metric="tokens")`'s count), are at most `max_tokens`. A trainer would cut the
rest off instead.

The first part keeps the row's `_id`; the others are new rows `ID+part2`, `ID+part3`, ...
whose `_parents` name the row. An exchange longer than `max_tokens` by itself fits no part: it
is left out (counted, with a warning), and a row left with no part is set aside saying so.
Columns computed before the split (scores, tags) are copied to every part. Rows that fit are
kept as they are. Parts are found greedily, every candidate counted exactly, in rounds batched
over the rows. Memory: the rows of one node.
"""
from __future__ import annotations

import pyarrow as pa

from . import _turns
from .base import Op, P
from ._common import approx_tokens, fetch_rows, set_aside, write_rows
from ..io.formats import KEPT_TURNS, map_kept

PARENTS = pa.field("_parents", pa.list_(pa.string()))


class SplitTurns(Op):
    name = "split_turns"
    kind = "map"
    version = 1
    creates_rows = True
    rewrites_turns = "cuts each conversation into parts"
    doc = "Cut conversations longer than max_tokens into parts of whole exchanges that fit (FastChat's split)."
    params = (
        P("max_tokens", "int", required=True, min=1, doc="the most tokens a part may have (the training context)"),
        P("model", "model", doc="whose tokenizer and chat template count the tokens (default: an estimate from "
                                "words and punctuation)"),
        P("chat_template", "bool", default=True, doc="count a part as the model's chat template renders it"),
    )

    def adds(self, args):
        return ["_parents"]

    def types(self, args):
        return {"_parents": "list"}

    def model_kinds(self, args):
        return {"model": ("causal_lm", "embedding", "classifier", "reward")}

    def run(self, ctx, args, inputs):
        src = inputs[0]
        rows, schema = fetch_rows(ctx, src)
        limit = int(args["max_tokens"])
        count = _counter(ctx, args)
        whole = count([r["messages"] or [] for r in rows])
        over = [i for i, n in enumerate(whole) if n > limit]
        parts, dropped = _parts([rows[i]["messages"] or [] for i in over], limit, count)
        out, aside, created = [], [], 0
        split = dict(zip(over, zip(parts, dropped)))
        for i, r in enumerate(rows):
            if i not in split:
                out.append(r)
                continue
            pieces, left_out = split[i]
            if not pieces:
                aside.append((r["_id"], f"split_turns: every exchange is over max_tokens {limit} by itself "
                                        f"({left_out[0]} tokens and more)" if len(left_out) > 1 else
                              f"split_turns: its one exchange is {left_out[0]} tokens, over max_tokens {limit}"))
                continue
            out += _rows_of(r, pieces)
            created += len(pieces) - 1
        n_dropped = sum(len(d) for d in dropped)
        ctx.info["rows split"] = sum(1 for p in parts if len(p) > 1)
        if created:
            ctx.info["parts created"] = created
        if n_dropped:
            ctx.warn(f"{n_dropped} exchanges are over max_tokens {limit} by themselves and were left out of their "
                     f"rows' parts (a larger max_tokens, or a filter on tokens first, keeps or drops them whole)")
        write_rows(ctx, out, schema, [PARENTS])
        set_aside(ctx, aside)


def _counter(ctx, args):
    """Tokens of each message list: the model's tokenizer (under its chat template, or of the
    turns' text joined), else the words-and-punctuation estimate of the turns' text."""
    model = args.get("model")
    if model is None:
        return lambda items: approx_tokens(["\n".join(m["content"] or "" for m in ms) for ms in items]).astype(int).tolist()
    rt, decl = ctx.runtime, ctx.models[model]
    if args.get("chat_template", True):
        return lambda items: rt.token_counts(decl, [list(ms) for ms in items]) if items else []
    return lambda items: rt.token_counts(decl, ["\n".join(m["content"] or "" for m in ms) for ms in items]) if items else []


def exchanges(msgs: list) -> tuple[list, list[list]]:
    """(the leading system turns, the exchanges after them: each a user turn and the turns up to
    the next user turn; turns before the first user turn are an exchange of their own)."""
    k = 0
    while k < len(msgs) and msgs[k]["role"] == "system":
        k += 1
    groups: list[list] = []
    for j in range(k, len(msgs)):
        if msgs[j]["role"] == "user" or not groups:
            groups.append([])
        groups[-1].append(j)
    return list(range(k)), groups


def _parts(convs: list[list], limit: int, count) -> tuple[list[list[list[int]]], list[list[int]]]:
    """For each conversation, its parts (lists of message positions) and the token counts of
    the exchanges left out; greedy, one batched count per round over all conversations."""
    shapes = [exchanges(ms) for ms in convs]
    # each exchange alone (with the system turns): those over the limit fit no part
    alone_items, where = [], []
    for c, (sys, groups) in enumerate(shapes):
        for g, idx in enumerate(groups):
            alone_items.append([convs[c][j] for j in sys + idx])
            where.append((c, g))
    alone = dict(zip(where, count(alone_items)))
    parts: list[list[list[int]]] = [[] for _ in convs]
    dropped: list[list[int]] = [[] for _ in convs]
    state = [[0, []] for _ in convs]  # per conversation: (next exchange, the open part's exchanges)
    active = set(range(len(convs)))
    while active:
        trial, who = [], []
        for c in sorted(active):
            sys, groups = shapes[c]
            at, open_ = state[c]
            if at == len(groups):
                if open_:
                    parts[c].append(sys + [j for g in open_ for j in groups[g]])
                active.discard(c)
                continue
            if alone[c, at] > limit:  # fits no part: left out, and the open part closes before it
                dropped[c].append(alone[c, at])
                if open_:
                    parts[c].append(sys + [j for g in open_ for j in groups[g]])
                state[c] = [at + 1, []]
                continue
            if not open_:  # alone it fits (counted above)
                state[c] = [at + 1, [at]]
                continue
            trial.append([convs[c][j] for j in sys + [j for g in open_ + [at] for j in groups[g]]])
            who.append(c)
        for c, n in zip(who, count(trial)):
            sys, groups = shapes[c]
            at, open_ = state[c]
            if n <= limit:
                state[c] = [at + 1, open_ + [at]]
            else:
                parts[c].append(sys + [j for g in open_ for j in groups[g]])
                state[c] = [at + 1, [at]]
    for c in range(len(convs)):
        dropped[c].sort()
    return parts, dropped


def _rows_of(row: dict, pieces: list[list[int]]) -> list[dict]:
    """The row's parts: its messages at each part's positions (and its kept turns, sliced
    alike), `instruction` and `response` from them; the first part keeps the `_id`."""
    msgs = row["messages"] or []
    out = []
    for k, pos in enumerate(pieces):
        part = [msgs[j] for j in pos]
        new = dict(row)
        new["messages"] = part
        new["instruction"], new["response"] = _turns.pair(part, row.get("instruction"), row.get("response"))
        for col, _, _ in KEPT_TURNS:
            if col in row:
                new[col] = _slice_kept(row[col], len(msgs), pos)
        for col in _turns.JOINED:  # only the part holding the turn it was joined into keeps it
            v = row.get(col)
            if isinstance(v, str) and v.strip() and not any(m["content"].endswith("\n\n" + v) for m in part
                                                             if m["role"] == "user"):
                new[col] = None
        if k:
            new["_id"], new["_parents"] = f"{row['_id']}+part{k + 1}", [row["_id"]]
        out.append(new)
    return out


def _slice_kept(value, n: int, pos: list[int]):
    """Kept turns at the part's positions when they align with the messages; none when they do
    not (their fields could not be placed)."""
    return map_kept(value, lambda turns: [turns[j] for j in pos] if len(turns) == n else None)


OP = SplitTurns()

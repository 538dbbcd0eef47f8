"""redact: replace personal data and secrets in the text (e-mail addresses, public IP addresses,
keys and tokens by default; phone and card numbers when asked), as datatrove's PII formatter and
StarCoder's data pipeline do, or set aside the rows that hold any (`drop=true`).

`on="conversation"` (the default) covers every turn, system prompts included, and the `input`
and `context` columns that a user turn was joined from (the Alpaca and Dolly writers split them
back out: left alone they would write the original text again). `instruction` or `response`
covers that turn alone; another column, that column. `instruction` and `response` always
follow the rewritten turns. Patterns and validators: `algorithms/pii.py`. Memory: the texts of
one node.
"""
from __future__ import annotations

from collections import Counter

import pyarrow as pa

from .base import Op, P

JOINED = ("input", "context")  # columns a reader joined into the user turn (io/formats.py `_join`)


class Redact(Op):
    name = "redact"
    kind = "map"
    version = 1
    doc = "Replace e-mail addresses, public IPs and secrets (and phone or card numbers) in the text, or drop such rows."
    params = (
        P("kinds", "strs", default=["email", "ip", "key"],
          doc="what to find: email, ip (public v4 and v6), key (API keys, tokens, private keys), phone, credit_card"),
        P("on", "column", default="conversation",
          doc="conversation (every turn, and the input/context columns), instruction, response, or a text column"),
        P("replace", "str", default="tag", choices=("tag", "fake"),
          doc="tag: <EMAIL>, <IP_ADDRESS>, <KEY>, ...; fake: a value reserved for examples (email@example.com, "
              "192.0.2.1, 555-0100), the same for the same value"),
        P("drop", "bool", default=False, doc="set aside the rows that hold any instead of rewriting them"),
        P("column", "str", default="redactions", doc="the new column: how many values were replaced in the row"),
    )

    def reads(self, args):
        on = args.get("on", "conversation")
        return [] if on in ("conversation", "instruction", "response") else [on]

    def adds(self, args):
        return [] if args.get("drop") else [args.get("column", "redactions")]

    def types(self, args):
        return {c: "int" for c in self.adds(args)}

    def check(self, args):
        from ..algorithms.pii import KINDS
        from ..diagnostics import did_you_mean
        kinds = args.get("kinds", ["email", "ip", "key"])
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            hint = did_you_mean(bad[0], KINDS)
            return [("kinds", f"unknown kind `{bad[0]}`: kinds are {', '.join(KINDS)}"
                              + (f" ({hint[0]})" if hint else ""))]
        if not kinds:
            return [("kinds", "`kinds` names nothing to find (leave it out for email, ip and key)")]
        return []

    def run(self, ctx, args, inputs):
        from ..algorithms.pii import Redactor, masked
        src = inputs[0]
        red = Redactor(args.get("kinds", ["email", "ip", "key"]), args.get("replace", "tag"))
        on = args.get("on", "conversation")
        turns = on in ("conversation", "instruction", "response")
        cols = (["messages", "instruction", "response"] + [c for c in JOINED if c in src.columns()]
                if turns else [on])
        tbl = src.arrow(cols)
        data = {c: tbl.column(c).to_pylist() for c in cols}
        n = tbl.num_rows
        found: list[list] = [[] for _ in range(n)]

        def fix(i: int, text):
            if not isinstance(text, str):
                return text
            out, f = red.redact(text)
            found[i] += f
            return out

        if turns:
            for i, msgs in enumerate(data["messages"]):
                for j in _targets(msgs or [], on):
                    msgs[j] = {**msgs[j], "content": fix(i, msgs[j]["content"])}
                if on == "conversation":
                    for c in JOINED:  # found again inside the turn: counted there, not twice
                        if c in data:
                            data[c][i] = red.redact(data[c][i])[0] if isinstance(data[c][i], str) else data[c][i]
                data["instruction"][i], data["response"][i] = _pair(msgs or [], data["instruction"][i],
                                                                    data["response"][i])
        else:
            data[on] = [fix(i, t) for i, t in enumerate(data[on])]
        counts = Counter(k for f in found for k, _ in f)
        if counts:
            ctx.info["found"] = dict(sorted(counts.items()))
        if args.get("drop"):
            reasons = {i: _reason(f, masked) for i, f in enumerate(found) if f}
            ctx.out.keep(src, [i for i in range(n) if not found[i]], reasons)
            return
        ctx.info["rows changed"] = sum(1 for f in found if f)
        new = {c: pa.array(data[c], tbl.schema.field(c).type) for c in cols}
        new[args.get("column", "redactions")] = pa.array([len(f) for f in found], pa.int64())
        ctx.out.add_columns(src, pa.table(new))


def _targets(msgs: list, on: str) -> list[int]:
    """The turns `on` names: all; the first user turn; the first assistant turn after it."""
    if on == "conversation":
        return list(range(len(msgs)))
    user = next((i for i, m in enumerate(msgs) if m.get("role") == "user"), None)
    if on == "instruction":
        return [] if user is None else [user]
    start = 0 if user is None else user + 1
    return [i for i in range(start, len(msgs)) if msgs[i].get("role") == "assistant"][:1]


def _pair(msgs: list, instruction, response) -> tuple:
    """`instruction` and `response` as the readers derive them from the turns (the first user
    turn, the first assistant turn after it); unchanged where there is no such turn."""
    user = _targets(msgs, "instruction")
    answer = _targets(msgs, "response")
    return (msgs[user[0]]["content"] if user else instruction, msgs[answer[0]]["content"] if answer else response)


def _reason(found: list, masked) -> str:
    kinds = Counter(k for k, _ in found)
    what = ", ".join(f"{c} {_NAMES[k][c != 1]}" for k, c in kinds.items())
    return f"redact: holds {what} (first: {masked(found[0][1])})"


_NAMES = {"email": ("e-mail address", "e-mail addresses"), "ip": ("IP address", "IP addresses"), "key": ("key", "keys"),
          "phone": ("phone number", "phone numbers"), "credit_card": ("card number", "card numbers")}

OP = Redact()

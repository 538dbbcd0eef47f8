"""redact: replace personal data and secrets in the text (e-mail addresses, public IP addresses,
keys and tokens by default; phone and card numbers when asked), as datatrove's PII formatter and
StarCoder's data pipeline do, or set aside the rows that hold any (`drop=true`).

Which texts: `ops/_turns.py` (by default every turn, and the `input`/`context` columns a user
turn was joined from). Patterns and validators: `algorithms/pii.py`. Memory: the texts of one
node.
"""
from __future__ import annotations

from collections import Counter

import pyarrow as pa

from . import _turns
from .base import Op, P


class Redact(Op):
    name = "redact"
    kind = "map"
    describes_text = True
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
        return _turns.reads(args.get("on", "conversation"))

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
        counts: Counter = Counter()
        reasons: dict[int, str] = {}  # drop: the rows that hold something, by position
        changed = at = 0

        def batches():  # streamed: the counts grow as add_columns reads the batches
            nonlocal changed, at
            for new, found in _turns.rewrite(src, args.get("on", "conversation"), red.redact):
                counts.update(k for f in found for k, _ in f)
                changed += sum(1 for f in found if f)
                if args.get("drop"):
                    reasons.update((at + i, _reason(f, masked)) for i, f in enumerate(found) if f)
                at += len(found)
                yield new.append_column(args.get("column", "redactions"), pa.array([len(f) for f in found], pa.int64()))
        if args.get("drop"):
            for _ in batches():
                pass
            ctx.out.keep(src, [i for i in range(at) if i not in reasons], reasons)
        else:
            ctx.out.add_columns(src, _turns.stream(batches()))
        if counts:
            ctx.info["found"] = dict(sorted(counts.items()))
        if not args.get("drop"):
            ctx.info["rows changed"] = changed


def _reason(found: list, masked) -> str:
    kinds = Counter(k for k, _ in found)
    what = ", ".join(f"{c} {_NAMES[k][c != 1]}" for k, c in kinds.items())
    return f"redact: holds {what} (first: {masked(found[0][1])})"


_NAMES = {"email": ("e-mail address", "e-mail addresses"), "ip": ("IP address", "IP addresses"), "key": ("key", "keys"),
          "phone": ("phone number", "phone numbers"), "credit_card": ("card number", "card numbers")}

OP = Redact()

"""filter: keep rows where a row expression is true; the rest are set aside with the condition."""
from __future__ import annotations

from ..ir import Binary, Unary, walk
from ..syntax import to_text
from .base import Op, P


class Filter(Op):
    name = "filter"
    version = 2  # 2: words/trim/log/sqrt/% translated anew
    doc = "Keep rows where the condition holds (null counts as false); set the others aside."
    params = (P("where", "expr", required=True, doc="row condition, e.g. `length(response) > 20`"),)
    positional = ("where",)

    def expr_type(self, param):
        return "bool"

    def run(self, ctx, args, inputs):
        # a condition `a and b and c` is passed as its parts, so a row set aside is told which
        # part failed (a heuristic filter's five thresholds, say), not that the whole was false;
        # SQL null logic drops a row whose condition reads a null (a column another source
        # lacks, say): its reason says so, since "not true" alone reads as "false"
        parts = tuple(conjuncts(args["where"]))
        texts = [to_text(p) for p in parts]
        false = tuple(f"filter: `{t}` is false" for t in texts)
        null = tuple(f"filter: `{t}` is null (a value it reads is null or missing"
                     + (", or text where a number is needed)" if reads_numbers(p) else ")") for t, p in zip(texts, parts))
        ctx.out.filter(inputs[0], parts, false, null)


_NUMERIC = ("+", "-", "*", "/", "%", "<", "<=", ">", ">=")


def reads_numbers(e) -> bool:
    """Whether a condition does arithmetic or orders values: a text column read there as
    numbers is null where a value is not one (see the engine's SQL translation)."""
    return any(isinstance(x, (Binary, Unary)) and x.op in _NUMERIC for x in walk(e))


def conjuncts(e) -> list:
    """The parts of a top-level `and` chain, in order (`e` itself when it is not one)."""
    if isinstance(e, Binary) and e.op == "and":
        return conjuncts(e.left) + conjuncts(e.right)
    return [e]


OP = Filter()

"""sample: a seeded random subset of n rows (or a fraction)."""
from __future__ import annotations

import numpy as np

from .base import Op, P


def seeded_choice(n_rows: int, n: int, seed: int) -> list[int]:
    """n distinct positions out of n_rows, in table order; the same for the same seed everywhere."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return sorted(rng.permutation(n_rows)[:n].tolist())


class Sample(Op):
    name = "sample"
    version = 1
    doc = "Keep a seeded random sample of `n` rows or a `fraction` of them, in their original order."
    def exclusive(self):
        return (("n", "fraction"),)

    params = (P("n", "int", min=0, doc="rows to keep"),
              P("fraction", "float", min=0.0, max=1.0, doc="share of rows to keep"),
              P("seed", "int", default=0, doc="random seed"))

    def check(self, args):
        if ("n" in args) == ("fraction" in args):
            return [("n", "give exactly one of `n` and `fraction`")]
        return []

    def run(self, ctx, args, inputs):
        total = inputs[0].count()
        n = args["n"] if "n" in args else int(round(args["fraction"] * total))
        keep = seeded_choice(total, min(n, total), args.get("seed", 0))
        if n > total:
            ctx.warn(f"sampled {total} of the {n} rows asked: the input has only {total} rows")
        ctx.out.keep(inputs[0], keep, f"sample: not among the {len(keep)} sampled rows (seed {args.get('seed', 0)})")


OP = Sample()

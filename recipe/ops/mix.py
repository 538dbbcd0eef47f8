"""mix: a weighted, seeded mixture of several nodes."""
from __future__ import annotations

import numpy as np

from .base import Op, P
from .sample import seeded_choice


def mix_counts(sizes: list[int], weights: list[float], k: int | None) -> list[int]:
    """Rows to take from each input: proportional to the weights, never more than an input has.
    Without `k`, the largest total the weights allow."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    if k is None:
        k = int(min(s / wi for s, wi in zip(sizes, w) if wi > 0))
    raw = w * k
    counts = np.floor(raw).astype(int)
    # hand out the remainder by largest fractional part, ties to the earlier input
    for i in np.argsort(-(raw - counts), kind="stable")[: k - counts.sum()]:
        counts[i] += 1
    return [int(min(c, s)) for c, s in zip(counts, sizes)]


class Mix(Op):
    name = "mix"
    version = 1
    doc = "Sample from several nodes in given proportions (seeded); rows not drawn are set aside."
    multi_input = True
    params = (P("weights", "floats", required=True, doc="one weight per input"),
              P("k", "int", min=0, doc="total rows (default: as many as the weights allow)"),
              P("seed", "int", default=0, doc="random seed"))

    def check(self, args):
        w = args.get("weights") or []
        if any(x < 0 for x in w) or not sum(w) > 0:
            return [("weights", "weights must be non-negative and not all zero")]
        return []

    def check_inputs(self, args, n_inputs):
        w = args.get("weights") or []
        return [] if len(w) == n_inputs else [("weights", f"{len(w)} weights for {n_inputs} inputs")]

    def run(self, ctx, args, inputs):
        if len(args["weights"]) != len(inputs):
            raise ValueError(f"mix: {len(inputs)} inputs but {len(args['weights'])} weights")
        sizes = [t.count() for t in inputs]
        counts = mix_counts(sizes, args["weights"], args.get("k"))
        seed = args.get("seed", 0)
        keep = [seeded_choice(sizes[i], n, seed + i) for i, n in enumerate(counts)]
        ctx.out.concat(inputs, keep, [f"mix: not drawn ({n} of {sizes[i]} rows taken from input {i + 1})"
                                      for i, n in enumerate(counts)])
        ctx.info["drawn"] = counts
        want = mix_counts([10 ** 18] * len(sizes), args["weights"], args.get("k")) if args.get("k") is not None else counts
        short = [f"input {i + 1} has only {s} of the {w} rows its weight asks" for i, (s, w) in enumerate(zip(sizes, want))
                 if s < w]
        if short:  # the mixture is smaller than `k`, and its proportions are not the weights'
            ctx.warn(f"drew {sum(counts)} of the {args['k']} rows asked: {'; '.join(short)}")


OP = Mix()

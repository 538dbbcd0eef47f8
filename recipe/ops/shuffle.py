"""shuffle: the rows in a seeded random order, for a training file that should not come
grouped by source or sorted by score.

Each row's place is the 128-bit MurmurHash3 of its `_id` under the seed, so the order is the
same on every engine and machine, and does not depend on the rows' positions: a row added to
or removed from the pool leaves the others in the same relative order (a permutation drawn
by position would move every row after it)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .base import Op, P


def id_order(ids: pa.Array, seed: int) -> np.ndarray:
    """Positions 0..n-1 ordered by the hash of each id under `seed` (ties by position)."""
    from ..algorithms.kernels import murmur3_rows
    ids = ids.cast(pa.large_string()) if ids.type != pa.large_string() else ids
    n = len(ids)
    offs = np.frombuffer(ids.buffers()[1], np.int64)[ids.offset:ids.offset + n + 1]
    data = np.frombuffer(ids.buffers()[2], np.uint8) if n and ids.buffers()[2] is not None else np.zeros(1, np.uint8)
    hi, lo = np.empty(n, np.uint64), np.empty(n, np.uint64)
    murmur3_rows(data, offs, seed & 0xFFFFFFFF, hi, lo)
    return np.lexsort((np.arange(n), lo, hi))


class Shuffle(Op):
    name = "shuffle"
    version = 1
    kind = "global"
    doc = "Put the rows in a seeded random order (by a hash of each `_id`: the same on every engine; no row is set aside)."
    params = (P("seed", "int", default=0, min=0, doc="random seed: another seed, another order"),)

    def run(self, ctx, args, inputs):
        src = inputs[0]
        ids = src.arrow(["_id"]).column(0).combine_chunks()
        ctx.out.keep(src, id_order(ids, args.get("seed", 0)).tolist(), "shuffle: not kept")


OP = Shuffle()

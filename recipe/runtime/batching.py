"""Length-sorted batches under a token budget, with identical requests computed once."""
from __future__ import annotations

from typing import Callable, Hashable, Sequence


def unique_order(keys: Sequence[Hashable]) -> tuple[list[int], list[int]]:
    """(index of the first occurrence of each distinct key, map from every item to its unique slot)."""
    first: dict = {}
    uniq: list[int] = []
    back: list[int] = []
    for i, k in enumerate(keys):
        if k not in first:
            first[k] = len(uniq)
            uniq.append(i)
        back.append(first[k])
    return uniq, back


def token_batches(lengths: Sequence[int], budget: int, max_batch: int = 256) -> list[list[int]]:
    """Indices grouped so that (longest in batch) x (batch size) <= budget, longest first;
    an item longer than the budget goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0
    for i in order:
        L = max(1, lengths[i])
        new_max = max(cur_max, L)
        if cur and (new_max * (len(cur) + 1) > budget or len(cur) >= max_batch):
            batches.append(cur)
            cur, new_max = [], L
        cur.append(i)
        cur_max = new_max
    if cur:
        batches.append(cur)
    return batches


def run_batched(items: list, lengths: list[int], budget: int, fn: Callable[[list], list],
                progress: Callable[[int, int], None] | None = None) -> list:
    """Apply `fn` to token-budgeted batches of `items`; results come back in the caller's order."""
    out: list = [None] * len(items)
    done = 0
    for b in token_batches(lengths, budget):
        res = fn([items[i] for i in b])
        for i, r in zip(b, res):
            out[i] = r
        done += len(b)
        if progress:
            progress(done, len(items))
    return out

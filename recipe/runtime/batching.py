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


def pack_rows(lengths: Sequence[int], row_len: int) -> list[list[int]]:
    """Item indices packed into rows of at most `row_len` tokens (worst-fit decreasing: each
    item, longest first, goes into the emptiest open row, or a new one); an item longer than
    `row_len` gets a row of its own."""
    import heapq
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    room: list[tuple[int, int]] = []  # (-free tokens, row number)
    for i in order:
        L = max(1, lengths[i])
        if room and -room[0][0] >= L:
            free, r = heapq.heappop(room)
            rows[r].append(i)
            heapq.heappush(room, (free + L, r))
        else:
            rows.append([i])
            heapq.heappush(room, (-(row_len - L), len(rows) - 1))
    return rows


def run_packed(items: list, lengths: list[int], row_len: int, budget: int, fn: Callable[[list], list],
               progress: Callable[[int, int], None] | None = None) -> list:
    """Like `run_batched`, for callers that pack several items per sequence: `fn` gets a list
    of rows (each a list of items) holding about `budget` tokens and returns one result per
    item, row by row."""
    rows = pack_rows(lengths, row_len)
    fill = [sum(max(1, lengths[i]) for i in r) for r in rows]
    # an over-long item's row is not batched with short ones
    groups = [[rows[j] for j in b] for b in token_batches(fill, budget)]
    return _scatter(items, groups, lambda g: fn([[items[i] for i in r] for r in g]),
                    lambda g: [i for r in g for i in r], progress)


def run_batched(items: list, lengths: list[int], budget: int, fn: Callable[[list], list],
                progress: Callable[[int, int], None] | None = None) -> list:
    """Apply `fn` to token-budgeted batches of `items`; results come back in the caller's order."""
    return _scatter(items, token_batches(lengths, budget), lambda b: fn([items[i] for i in b]),
                    lambda b: b, progress)


def run_batched_apart(keys: Sequence[Hashable], lengths: Sequence[int], budget: int, fn: Callable[[list], list],
                      progress: Callable[[int, int], None] | None = None) -> list:
    """`run_batched` over item positions, with batches that never hold two keys: prompts of
    one token length only, so a batch needs no padding (in float32 a row then comes out as it
    does alone). `fn` gets a list of positions."""
    by_key: dict = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)
    batches = [[g[j] for j in b] for g in by_key.values() for b in token_batches([lengths[i] for i in g], budget)]
    return _scatter(list(keys), batches, fn, lambda b: b, progress)


def _scatter(items, groups, call, indices, progress) -> list:
    """Results of `call(group)` for each group, put back at `indices(group)` (caller's order)."""
    out: list = [None] * len(items)
    done = 0
    for g in groups:
        at = indices(g)
        for i, r in zip(at, call(g)):
            out[i] = r
        done += len(at)
        if progress:
            progress(done, len(items))
    return out


def token_counts(tok, items: list) -> list[int]:
    """Tokens of each item under a Hugging Face tokenizer: a text as it is (no special tokens
    added), a conversation (a list of {role, content}) rendered by the tokenizer's chat template
    as training sees it (its own special tokens included; turns joined by newlines when it has
    no template). Tokenized in one batched call."""
    def render(msgs) -> str:
        turns = [{"role": m["role"], "content": m["content"] or ""} for m in msgs]
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(turns, tokenize=False)
        return "\n".join(t["content"] for t in turns)
    texts = [render(x) if isinstance(x, list) else (x or "") for x in items]
    return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []


def word_counts(items: list) -> list[int]:
    """Words of each text or conversation: the count for a model without a tokenizer."""
    return [sum(len((m["content"] or "").split()) for m in x) if isinstance(x, list) else len((x or "").split())
            for x in items]

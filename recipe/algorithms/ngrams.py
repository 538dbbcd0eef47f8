"""Word n-gram overlap with a reference set: decontamination as GPT-3 and the evaluation
harnesses define it (a training text that shares any sequence of n words with an evaluation
text is dirty; n = 13 by default).

Words are the runs of letters, digits and underscores of the case-folded text (`\\w+`), so
punctuation and spacing do not hide an overlap ("France?" and "france." are one word). Each
window of n words gets a 64-bit hash (Python's string hash of each word, combined with fixed
odd multipliers, all in one process); a hash found among the reference's windows is checked
word for word before it counts, so a collision never removes a row.
"""
from __future__ import annotations

import re
from typing import Iterable

import numpy as np

_WORD = re.compile(r"\w+")
_MULT = np.random.default_rng(13).integers(1, 2 ** 63, size=4096, dtype=np.uint64) | np.uint64(1)
CHUNK_WORDS = 1 << 21  # words hashed at a time (a window matrix of this many rows is not built)


def words(text: str | None) -> list[str]:
    return _WORD.findall(text.casefold()) if text else []


def _window_hashes(toks: list[list[str]], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hash, row, start) of every window of n words that lies inside one text."""
    flat = [w for ws in toks for w in ws]
    lens = np.fromiter((len(ws) for ws in toks), dtype=np.int64, count=len(toks))
    if len(flat) < n:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    h = np.fromiter(map(hash, flat), dtype=np.int64, count=len(flat)).view(np.uint64)
    m = len(flat) - n + 1
    acc = np.zeros(m, dtype=np.uint64)
    for k in range(n):  # sum of h[p + k] * MULT[k], wrapping at 64 bits
        acc += h[k:k + m] * _MULT[k % len(_MULT)]
    ends = np.cumsum(lens)
    row = np.repeat(np.arange(len(toks)), lens)[:m]
    start = np.arange(m) - (ends - lens)[row]
    inside = start + n <= lens[row]
    return acc[inside], row[inside], start[inside]


def _chunks(texts: Iterable[str | None]) -> Iterable[tuple[int, list[list[str]]]]:
    """(index of the first text, the texts' words), about CHUNK_WORDS words at a time."""
    buf, first, size = [], 0, 0
    for i, t in enumerate(texts):
        ws = words(t)
        buf.append(ws)
        size += len(ws)
        if size >= CHUNK_WORDS:
            yield first, buf
            buf, first, size = [], i + 1, 0
    if buf:
        yield first, buf


class ReferenceNgrams:
    """The reference texts' windows of n words, for lookups (`matches`)."""

    def __init__(self, ref_texts: Iterable[str | None], n: int):
        self.n = n
        self.short = 0  # reference texts with fewer than n words: nothing to look for
        keys, where, self.words = [], [], {}
        for first, toks in _chunks(ref_texts):
            self.short += sum(1 for ws in toks if len(ws) < n)
            h, row, start = _window_hashes(toks, n)
            keys.append(h)
            where.append(np.stack([row + first, start], axis=1))
            for r in np.unique(row):
                self.words[int(r) + first] = toks[r]
        keys_all = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        where_all = np.concatenate(where) if where else np.zeros((0, 2), np.int64)
        # the first reference window of each hash (a repeated window: its first row)
        order = np.argsort(keys_all, kind="stable")
        self.keys, first_of = np.unique(keys_all[order], return_index=True)
        self.where = where_all[order][first_of]

    def matches(self, texts: Iterable[str | None]) -> list[tuple[int, str] | None]:
        """Per text: (the reference row it shares n words with, those words), or None; the
        first shared window of the text."""
        out: list[tuple[int, str] | None] = []
        n = self.n
        for first, toks in _chunks(texts):
            got: list[tuple[int, str] | None] = [None] * len(toks)
            h, row, start = _window_hashes(toks, n)
            if len(self.keys) and len(h):
                pos = np.searchsorted(self.keys, h).clip(0, len(self.keys) - 1)
                for i in np.flatnonzero(self.keys[pos] == h):  # rows in order, windows in order
                    r = int(row[i])
                    if got[r] is not None:
                        continue
                    ref, at = (int(x) for x in self.where[pos[i]])
                    mine = toks[r][start[i]:start[i] + n]
                    if mine == self.words[ref][at:at + n]:  # not a hash collision
                        got[r] = (ref, " ".join(mine))
            out += got
        return out

"""Word n-gram overlap with a reference set: decontamination as GPT-3 and the evaluation
harnesses define it (a training text that shares any sequence of n words with an evaluation
text is dirty; n = 13 by default).

Words are the runs of letters, digits and underscores of the case-folded text (`\\w+`), so
punctuation and spacing do not hide an overlap ("France?" and "france." are one word). The
reference's windows of n words are the keys of one dict (their words joined by spaces, which no
word contains: exact, no hash to collide), and a text is looked up a window at a time until one
is found. Measured against 64-bit window hashes in numpy (bench/decontaminate.py): the dict was
faster and smaller, since both spend about half their time splitting words and a text stops at
its first shared window.
"""
from __future__ import annotations

import re
from typing import Iterable

_WORD = re.compile(r"\w+")


def words(text: str | None) -> list[str]:
    return _WORD.findall(text.casefold()) if text else []


class ReferenceNgrams:
    """The reference texts' windows of n words, for lookups (`matches`)."""

    def __init__(self, ref_texts: Iterable[str | None], n: int):
        self.n = n
        self.short = 0  # reference texts with fewer than n words: nothing to look for
        self.first: dict[str, int] = {}  # a window's words -> the first reference row that has it
        for j, t in enumerate(ref_texts):
            ws = words(t)
            if len(ws) < n:
                self.short += 1
            for i in range(len(ws) - n + 1):
                self.first.setdefault(" ".join(ws[i:i + n]), j)

    def matches(self, texts: Iterable[str | None]) -> list[tuple[int, str] | None]:
        """Per text: (the reference row it shares n words with, those words), or None; the
        first shared window of the text."""
        n, first = self.n, self.first
        out: list[tuple[int, str] | None] = []
        for t in texts:
            ws = words(t)
            got = None
            for i in range(len(ws) - n + 1):
                key = " ".join(ws[i:i + n])
                ref = first.get(key)
                if ref is not None:
                    got = (ref, key)
                    break
            out.append(got)
        return out

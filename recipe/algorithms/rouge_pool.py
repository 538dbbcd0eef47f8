"""A growing pool of texts and, for a new text, the most similar of them by ROUGE-L F1 as
rouge-score computes it (Self-Instruct's and Alpaca's novelty filter), without scoring every
pair: the longest common subsequence of two token lists is at most their shared tokens
counted with multiplicity, which is at most the dot product of their token-count vectors, so
F1 = 2 LCS / (|a| + |b|) <= 2 min(dot, |a|, |b|) / (|a| + |b|). One sparse matrix product
gives that bound for the whole pool; rouge-score scores only the texts whose bound passes the
threshold, so the answer is exactly the brute-force one (a test compares them)."""
from __future__ import annotations

from collections import Counter

import numpy as np


class RougePool:
    REBUILD = 256  # texts added since the matrix was built, checked one by one until then

    def __init__(self):
        from rouge_score import rouge_scorer
        self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        self.keys: list[str] = []
        self.texts: list[str] = []
        self._counts: list[Counter] = []
        self._lens: list[int] = []
        self._vocab: dict[str, int] = {}
        self._matrix = None  # sparse (texts at build x vocabulary at build)
        self._built = 0

    @staticmethod
    def tokens(text: str) -> list[str]:
        from rouge_score import tokenize
        return tokenize.tokenize(text, None)

    def add(self, key: str, text: str) -> None:
        toks = self.tokens(text)
        for t in toks:
            self._vocab.setdefault(t, len(self._vocab))
        self.keys.append(key)
        self.texts.append(text)
        self._counts.append(Counter(toks))
        self._lens.append(len(toks))
        if len(self.keys) - self._built >= self.REBUILD:
            self._build()

    def _build(self) -> None:
        from scipy.sparse import csr_matrix
        rows, cols, vals = [], [], []
        for i, c in enumerate(self._counts):
            for t, n in c.items():
                rows.append(i)
                cols.append(self._vocab[t])
                vals.append(n)
        self._matrix = csr_matrix((np.asarray(vals, np.float64), (rows, cols)), shape=(len(self._counts), len(self._vocab)))
        self._built = len(self._counts)

    def most_similar(self, text: str, threshold: float) -> tuple[str, float] | None:
        """(key, F1) of the pool text most similar to `text` when that F1 is above `threshold`
        (ties: the earliest added), else None."""
        toks = self.tokens(text)
        if not toks or not self.keys:
            return None
        q = Counter(toks)
        n = len(toks)
        dots = np.zeros(len(self.keys))
        if self._built:
            known = [(self._vocab[t], c) for t, c in q.items() if t in self._vocab and self._vocab[t] < self._matrix.shape[1]]
            if known:
                vec = np.zeros(self._matrix.shape[1])
                for j, c in known:
                    vec[j] = c
                dots[:self._built] = self._matrix @ vec
        for i in range(self._built, len(self.keys)):
            dots[i] = sum(c * self._counts[i].get(t, 0) for t, c in q.items())
        lens = np.asarray(self._lens, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.where(lens > 0, 2 * np.minimum(np.minimum(dots, n), lens) / (n + lens), 0.0)
        best: tuple[str, float] | None = None
        for i in np.flatnonzero(bound > threshold):
            f = self._scorer.score(self.texts[i], text)["rougeL"].fmeasure
            if f > threshold and (best is None or f > best[1]):
                best = (self.keys[i], f)
        return best

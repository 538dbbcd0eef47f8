"""MinHash dedupe of the P3 set (../shared/datasets/p3_t0_train_50k) against datasketch's
MinHashLSH with the same shingles (char 5-grams of lower-cased, whitespace-collapsed text),
the same number of permutations and the same threshold, each in its own process.

    .venv/bin/python bench/dedupe.py [--limit 0] [--threshold 0.8]

Recall is measured on the union of the pairs either method reports, each verified by exact
Jaccard: recall = true pairs a method clusters together / all true pairs found by either.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import measure  # noqa: E402


def texts(limit):
    from _data import p3_texts
    return p3_texts(limit=limit or None)


def ours(limit, threshold, num_perm):
    from recipe.algorithms import minhash_clusters
    labels = minhash_clusters(texts(limit), threshold, ngram=5, num_perm=num_perm)
    return {"labels": labels.tolist()}


def baseline(limit, threshold, num_perm):
    import numpy as np
    from datasketch import MinHash, MinHashLSH
    from recipe.algorithms.clusters import connected_labels
    from recipe.algorithms.minhash import normalise
    ts = texts(limit)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs = []
    for i, t in enumerate(ts):
        s = normalise(t)
        sh = {s[j:j + 5] for j in range(max(1, len(s) - 4))}
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([x.encode("utf-8") for x in sh])
        sigs.append(m)
        lsh.insert(i, m)
    a, b = [], []
    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            if j > i and m.jaccard(sigs[j]) >= threshold:
                a.append(i)
                b.append(j)
    return {"labels": connected_labels(len(ts), np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)).tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=256)
    a = ap.parse_args()
    o = measure("dedupe", "ours", limit=a.limit, threshold=a.threshold, num_perm=a.num_perm)
    b = measure("dedupe", "baseline", limit=a.limit, threshold=a.threshold, num_perm=a.num_perm)
    lo, lb = o["result"]["labels"], b["result"]["labels"]
    # candidate true pairs: every pair inside a cluster of either method, checked exactly
    from collections import defaultdict
    from recipe.algorithms.minhash import normalise
    ts = texts(a.limit)
    groups = defaultdict(set)
    for lab in (lo, lb):
        byc = defaultdict(list)
        for i, c in enumerate(lab):
            byc[c].append(i)
        for members in byc.values():
            if 1 < len(members) <= 200:
                for i in members:
                    groups[i].update(members)
    sh = {}

    def S(i):
        if i not in sh:
            s = normalise(ts[i])
            sh[i] = {s[j:j + 5] for j in range(max(1, len(s) - 4))}
        return sh[i]
    true_pairs = [(i, j) for i, js in groups.items() for j in js if j > i
                  and len(S(i) & S(j)) / max(1, len(S(i) | S(j))) >= a.threshold]
    rec = lambda lab: sum(lab[i] == lab[j] for i, j in true_pairs) / max(1, len(true_pairs))
    print(json.dumps({"rows": len(ts), "threshold": a.threshold, "num_perm": a.num_perm,
                      "ours_s": round(o["seconds"], 2), "datasketch_s": round(b["seconds"], 2),
                      "speedup": round(b["seconds"] / o["seconds"], 2),
                      "ours_peak_mib": round(o["peak_mib"]), "datasketch_peak_mib": round(b["peak_mib"]),
                      "true_pairs_checked": len(true_pairs), "ours_recall": round(rec(lo), 4),
                      "datasketch_recall": round(rec(lb), 4),
                      "ours_clusters": len(set(lo)), "datasketch_clusters": len(set(lb))}))


if __name__ == "__main__":
    main()

"""13-gram decontamination (`dedupe(method="ngram")`, `algorithms/ngrams.py`) of P3's rows
(../shared/datasets/p3_t0_train_50k) against a reference drawn from them, next to the usual
Python script (word n-gram strings looked up in a dict, as in the decontamination scripts of s1
and Tulu), each in its own process; the same words (case-folded `\\w+`), so both must flag the
same rows. The op's index is that lookup (64-bit window hashes in numpy, tried first, were
slower and larger: half the time is splitting words, and a text stops at its first hit), so the
figure to watch is that the op stays at the script's speed and memory.

    .venv/bin/python bench/decontaminate.py [--limit 0] [--reference 2000] [--ngram 13]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import measure  # noqa: E402


def texts(limit, reference):
    import random
    from _data import p3_texts
    ts = p3_texts(limit=limit or None)
    ref = random.Random(0).sample(ts, min(reference, len(ts)))
    return ts, ref


def ours(limit, reference, ngram):
    from recipe.algorithms.ngrams import ReferenceNgrams
    ts, ref = texts(limit, reference)
    found = ReferenceNgrams(ref, ngram).matches(ts)
    return {"flagged": [i for i, m in enumerate(found) if m is not None]}


def baseline(limit, reference, ngram):
    from recipe.algorithms.ngrams import words
    ts, ref = texts(limit, reference)
    lookup = {}
    for j, t in enumerate(ref):
        ws = words(t)
        for i in range(len(ws) - ngram + 1):
            lookup.setdefault(" ".join(ws[i:i + ngram]), j)
    flagged = []
    for k, t in enumerate(ts):
        ws = words(t)
        if any(" ".join(ws[i:i + ngram]) in lookup for i in range(len(ws) - ngram + 1)):
            flagged.append(k)
    return {"flagged": flagged}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--reference", type=int, default=2000)
    ap.add_argument("--ngram", type=int, default=13)
    a = ap.parse_args()
    kw = {"limit": a.limit, "reference": a.reference, "ngram": a.ngram}
    o = measure("decontaminate", "ours", **kw)
    b = measure("decontaminate", "baseline", **kw)
    print(json.dumps({"rows": len(texts(a.limit, a.reference)[0]), "reference": a.reference, "ngram": a.ngram,
                      "ours_s": round(o["seconds"], 2), "python_dict_s": round(b["seconds"], 2),
                      "speedup": round(b["seconds"] / o["seconds"], 2),
                      "ours_peak_mib": round(o["peak_mib"]), "python_dict_peak_mib": round(b["peak_mib"]),
                      "flagged": len(o["result"]["flagged"]),
                      "same_rows": o["result"]["flagged"] == b["result"]["flagged"]}))


if __name__ == "__main__":
    main()

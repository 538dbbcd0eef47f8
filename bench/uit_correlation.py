"""UIT's perplexity denoising, ours against the paper's: rank correlation of our candidate
losses (SmolLM2-135M) with the losses GPT-J gave the same 32 candidate definitions.

    .venv/bin/python bench/uit_correlation.py [--instances 4] [--shots 1]

Data: ../shared/datasets/uit_unified_format (one P3 task transferred 32 times, and UIT's
res.jsonl with each candidate's cross-entropy loss).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import DATASETS  # noqa: E402


def spearman(a, b) -> float:
    import numpy as np
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--shots", type=int, default=1)
    a = ap.parse_args()
    from recipe.ops.format_transfer import definition_losses, examples_text
    from recipe.runtime import ModelRuntime
    root = DATASETS / "uit_unified_format"
    res = json.loads((root / "ppl_annotation_examples" / "res.jsonl").read_text().splitlines()[0])
    names = sorted(res["CEloss"], key=lambda n: int(n.split("of")[0]))
    tasks = [json.loads((root / "ppl_annotation" / "tasks" / n).read_text()) for n in names]
    cands = [" ".join(t["Definition"]) for t in tasks]
    inst = tasks[0]["Instances"]
    inputs = [i["input"] for i in inst]
    outputs = [i["output"][0] if isinstance(i["output"], list) else i["output"] for i in inst]
    # each candidate with its own file's positive examples, as UIT's main_ppl_annotation.py
    # (until session 41 every candidate was shown the first file's)
    examples = [examples_text([(p["input"], p["output"]) for p in t.get("Positive Examples", [])[: a.shots]])
                for t in tasks]
    rt = ModelRuntime(Path("/tmp/recipe-uit-bench"))
    lm = {"kind": "causal_lm", "source": "builtin:smollm2", "options": {}, "identity": "uit-lm"}
    t = time.perf_counter()
    ours = definition_losses(rt, lm, cands, inputs, outputs, examples, a.instances)
    secs = time.perf_counter() - t
    theirs = [res["CEloss"][n] for n in names]
    import numpy as np
    print(json.dumps({"candidates": len(cands), "instances": a.instances, "shots": a.shots, "seconds": round(secs, 1),
                      "spearman_vs_gptj": round(spearman(ours, theirs), 3),
                      "our_best": int(np.argmin(ours)), "gptj_best": int(np.argmin(theirs)),
                      "gptj_rank_of_our_best": int(np.argsort(np.argsort(theirs))[int(np.argmin(ours))]) + 1}))


if __name__ == "__main__":
    main()

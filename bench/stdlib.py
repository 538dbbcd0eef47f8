"""Each library recipe on real data from ../shared/datasets: per-node time and rows, cold
(empty caches) and warm (same command again), plus proxy quality of each selection next
to a seeded random selection of the same size.

    .venv/bin/python bench/stdlib.py [--rows 300] [--k 60] [--recipes qdit,mods,...]

Proxies (higher is better): `coverage` = facility-location objective of the selection over
all input rows / N (MiniLM cosine, how well the selection represents the set); `ifd` = mean
IFD of the selected rows under SmolLM2 (Cherry-LLM difficulty); `tag_coverage` = share of
the InsTag tags of the whole input that the selection covers (tags from stdlib:instag).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import alpaca_like, write_jsonl  # noqa: E402

SELECTING = ["qdit", "superfiltering", "deita", "mods", "instag", "lift"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--k", type=int, default=60)
    ap.add_argument("--recipes", default="qdit,superfiltering,deita,mods,instag,lift,uit")
    a = ap.parse_args()
    import numpy as np
    import recipe
    from recipe.algorithms import facility_objective
    from recipe.runtime import ModelRuntime

    tmp = Path(tempfile.mkdtemp())
    rows = alpaca_like(a.rows)
    for i, r in enumerate(rows):
        r["task"] = "code" if "code" in r["instruction"].lower() or "function" in r["instruction"].lower() else "general"
    data = write_jsonl(rows, tmp / "data.jsonl")
    models = tmp / "models"
    report = {"rows": a.rows, "k": a.k, "recipes": {}}
    selections = {}
    for name in a.recipes.split(","):
        r = recipe.load(f"stdlib:{name}")
        params = {"k": str(a.k)} if any(p.name == "k" for p in r.recipe.params) else {}
        if name == "mods":
            params.update(k_seed=str(a.k // 3), k_extra=str(a.k - a.k // 3))
        if name == "lift":
            params.update(max_new=str(a.rows // 3))
        if name == "uit":
            params.update(eval_instances="8")
        entry = {}
        for phase in ("cold", "warm"):
            t = time.perf_counter()
            res = r.run(params=params, sources={"raw": str(data)}, out=tmp / f"out-{name}-{phase}",
                        cache_dir=tmp / f"cache-{name}", runtime=ModelRuntime(models if phase == "warm" else tmp / f"m-{name}"))
            entry[f"{phase}_s"] = round(time.perf_counter() - t, 1)
            entry[f"{phase}_nodes"] = [[n["name"], n["rows_in"], n["rows_out"], round(n["seconds"], 2)] for n in res.manifest["nodes"]]
            if phase == "cold":
                models = tmp / f"m-{name}"
        main_sink = res.manifest["sinks"][0]
        entry["rows_out"] = main_sink["rows"]
        selections[name] = [json.loads(l)["_id"] for l in Path(main_sink["path"]).read_text().splitlines()]
        if name == "instag":
            entry["tags"] = json.loads((tmp / "out-instag-warm" / "all_tags.json").read_text())["distinct_tags"]
        report["recipes"][name] = entry
        print(name, json.dumps(entry), flush=True)
    # proxies, on the same rows: embeddings and IFD through one runtime (all cached once)
    rt = ModelRuntime(tmp / "proxy-models")
    ids = [f"raw:{i}" for i in range(len(rows))]
    emb = rt.embed("builtin:minilm", [r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "") for r in rows])
    lm = {"kind": "causal_lm", "source": "builtin:smollm2", "options": {}, "identity": "proxy-lm"}
    inst = [r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "") for r in rows]
    resp = [r["output"] for r in rows]
    cond = rt.loglik(lm, [rt.chat_prompt(lm, i) for i in inst], resp)
    alone = rt.loglik(lm, [""] * len(resp), resp)
    ppl = lambda x: math.exp(-x["logprob"] / x["tokens"]) if x["tokens"] else float("nan")
    ifd = np.array([ppl(c) / ppl(u) for c, u in zip(cond, alone)])
    tags = None
    if "instag" in report["recipes"]:
        tag_rows = recipe.load("stdlib:instag").run(params={"k": str(a.k)}, sources={"raw": str(data)},
                                                    out=tmp / "out-instag-tags", cache_dir=tmp / "cache-instag",
                                                    runtime=ModelRuntime(tmp / "m-instag")).table("tagged").to_pylist()
        tags = {r["_id"]: set(r["tags"] or []) for r in tag_rows}
    all_tags = set().union(*tags.values()) if tags else set()
    pos = {rid: i for i, rid in enumerate(ids)}

    def proxies(sel_ids):
        idx = [pos[s] for s in sel_ids if s in pos]
        out = {"n": len(idx), "coverage": round(facility_objective(emb, idx) / len(rows), 4) if idx else 0.0,
               "ifd": round(float(np.nanmean(ifd[idx])), 4) if idx else None}
        if tags:
            covered = set().union(*(tags.get(ids[i], set()) for i in idx)) if idx else set()
            out["tag_coverage"] = round(len(covered) / max(1, len(all_tags)), 4)
        return out
    rng = np.random.default_rng(0)
    for name in SELECTING:
        if name in selections:
            own = [s for s in selections[name] if s in pos]
            rand = [ids[i] for i in sorted(rng.choice(len(ids), size=len(own), replace=False))] if own else []
            report["recipes"][name]["proxy"] = proxies(own)
            report["recipes"][name]["proxy_random_same_size"] = proxies(rand)
    print(json.dumps(report))


if __name__ == "__main__":
    main()

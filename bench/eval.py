"""Library recipes against random rows, by training: `recipe eval` on real data.

    python bench/eval.py [--pool-rows 2000] [--k 200] [--seeds 3] [--recipes qdit,deita,...] [--work DIR]
                         [--set lift.max_new=500] [--judge MODEL] [--json RESULTS.jsonl]
    python bench/eval.py --write-inputs DIR        # pool.jsonl and eval.jsonl only, to run elsewhere
    python bench/eval.py --pool DIR/pool.jsonl --eval DIR/eval.jsonl ...   # on another machine (a GPU)

The pool: rows mixed in turn from code_alpaca, the Cherry-LLM 5% Alpaca subset and GSM8K (in
../shared/datasets, never copied). The evaluation set: MT-Bench's first-turn questions with
GPT-4's reference answers, and the self-instruct user-oriented tasks (instruction + input ->
output). Each recipe runs with k rows (where it takes `k`), then SmolLM2-135M is fine-tuned
(LoRA, one epoch) on its selection and on `--seeds` random subsets of the same size; the
table prints each recipe's eval loss of the reference answers next to the random runs' mean
and spread, and `recipe eval`'s verdict, as measured, whatever it shows.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import DATASETS, write_jsonl  # noqa: E402

LIBRARY = ["qdit", "deita", "superfiltering", "instag", "mods", "lift", "uit"]


def pool_rows(n: int, root: Path = DATASETS) -> list[dict]:
    sets = []
    for f in ("code_alpaca/code_alpaca_2k.json", "cherry_llm/cherry_alpaca_5_percent.json",
              "alpaca_data_cleaned_repo/gsm_8k_train.json"):
        rows = [r for r in json.loads((root / f).read_text()) if isinstance(r, dict) and r.get("instruction")]
        sets.append(rows)
    out, i = [], 0
    while len(out) < n and any(i < len(s) for s in sets):
        for s, task in zip(sets, ("code", "general", "math")):
            if i < len(s) and len(out) < n:
                # `task` names the source set: stdlib:uit writes one definition per task
                out.append({**{k: s[i].get(k, "") for k in ("instruction", "input", "output")}, "task": task})
        i += 1
    return out


def eval_rows(root: Path = DATASETS, user_oriented: int = 70) -> list[dict]:
    qs = {}
    for line in (root / "fastchat/mt_bench/question.jsonl").open():
        q = json.loads(line)
        qs[q["question_id"]] = q["turns"][0]
    out = []
    for line in (root / "fastchat/mt_bench/reference_answer_gpt-4.jsonl").open():
        a = json.loads(line)
        if a["question_id"] in qs:
            out.append({"instruction": qs[a["question_id"]], "input": "", "output": a["choices"][0]["turns"][0]})
    for line in list((root / "self_instruct/user_oriented_instructions.jsonl").open())[:user_oriented]:
        t = json.loads(line)
        inst = t["instances"][0]
        out.append({"instruction": t["instruction"], "input": inst.get("input", ""), "output": inst["output"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool-rows", type=int, default=2000)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--recipes", default=",".join(LIBRARY))
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-eval"))
    ap.add_argument("--write-inputs", type=Path, metavar="DIR", help="write pool.jsonl and eval.jsonl there, then stop")
    ap.add_argument("--pool", type=Path, help="a pool file written by --write-inputs (else built from the datasets)")
    ap.add_argument("--eval", type=Path, help="an eval file written by --write-inputs")
    ap.add_argument("--set", action="append", default=[], metavar="RECIPE.PARAM=VALUE",
                    help="a parameter for one recipe, e.g. lift.max_new=500 (repeatable)")
    ap.add_argument("--judge", metavar="MODEL", help="also a judge's win rate of each model's answers against the base's")
    ap.add_argument("--json", type=Path, help="append each recipe's eval.json and timing here as one JSON line")
    a = ap.parse_args()
    if a.write_inputs:
        a.write_inputs.mkdir(parents=True, exist_ok=True)
        write_jsonl(pool_rows(a.pool_rows), a.write_inputs / "pool.jsonl")
        write_jsonl(eval_rows(), a.write_inputs / "eval.jsonl")
        return
    a.work.mkdir(parents=True, exist_ok=True)
    pool = a.pool or write_jsonl(pool_rows(a.pool_rows), a.work / "pool.jsonl")
    ev = a.eval or write_jsonl(eval_rows(), a.work / "eval.jsonl")
    overrides: dict[str, dict[str, str]] = {}
    for item in a.set:
        key, eq, value = item.partition("=")
        recipe, dot, param = key.partition(".")
        if not (eq and dot and recipe and param):
            ap.error(f"--set {item}: expected RECIPE.PARAM=VALUE, e.g. lift.max_new=500")
        overrides.setdefault(recipe, {})[param] = value
    import torch

    from recipe.api import load
    from recipe.evaluate import evaluate, table
    from recipe.runtime.hf import pick_device
    device = pick_device()
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""), flush=True)
    results = {}
    for name in a.recipes.split(","):
        r = load(f"stdlib:{name}")
        params = {"k": str(a.k)} if any(p.name == "k" for p in r.recipe.params) else {}
        params |= overrides.get(name, {})
        t = time.time()
        rep = evaluate(r, params, {"raw": str(pool)}, str(ev), a.work / name, seeds=a.seeds, judge=a.judge,
                       cache_dir=str(a.work / "cache"), log=lambda m: print("   ", m, flush=True),
                       quiet=False)
        seconds = time.time() - t
        print(f"== stdlib:{name} ({seconds:.0f} s)\n{table(rep)}\n", flush=True)
        results[name] = rep["verdict"] | {"rows": rep["selection"]["rows"], "base": rep["base"]["eval_loss"]}
        if a.json:
            with a.json.open("a") as fh:
                fh.write(json.dumps({"recipe": name, "params": params, "seconds": round(seconds, 1),
                                     "device": device, "report": rep}) + "\n")
    print("| recipe | rows | eval loss | random mean ± sd | z | verdict |\n|---|---|---|---|---|---|")
    for name, v in results.items():
        print(f"| {name} | {v['rows']} | {v['selection_loss']:.4f} | {v['random_mean']:.4f} ± {v['random_sd']:.4f} "
              f"| {v['z']} | {v['text']} |")


if __name__ == "__main__":
    main()

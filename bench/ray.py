"""The Ray engine against the DuckDB engine on one machine, same run, each in its own process:

    python bench/ray.py                              # 1M rows of bench/scale.py, qdit on 20,000 rows
    python bench/ray.py --rows 200000 --qdit-rows 5000

1. bench/scale.py's recipe (filter, exact dedupe, MinHash) on its P3-built file;
2. `stdlib:qdit` on Alpaca-like rows from ../shared/datasets (each engine with its own, empty
   model-result cache, so each computes its embeddings; converted weights are shared).
Printed per case: seconds, peak memory and the overhead ratio Ray / DuckDB (goal: at most 2x).
Peak memory is the largest sum of RSS over the run's process tree, sampled every 0.2 s
(Ray's raylet, object store and workers included; pages shared between processes count
once per process, so Ray's figure is an upper bound). Both engines must write the same bytes:
the sinks are compared and the result printed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import alpaca_like, write_jsonl  # noqa: E402
from scale import RECIPE, build  # noqa: E402


def run_tree(cmd: list[str], env: dict | None = None) -> dict:
    """Run `cmd`; its seconds and the peak of its process tree's summed RSS (MiB)."""
    import os
    import psutil
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    peak = [0]

    def sample():
        root = psutil.Process(p.pid)
        while p.poll() is None:
            try:
                procs = [root] + root.children(recursive=True)
                peak[0] = max(peak[0], sum(x.memory_info().rss for x in procs if x.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = p.communicate()
    secs = time.perf_counter() - t
    th.join()
    if p.returncode != 0:
        raise SystemExit(err[-3000:])
    return {"seconds": secs, "peak_mib": peak[0] / 2**20}


def recipe_cmd(recipe: str, work: Path, engine: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "recipe", "run", recipe, "--engine", engine, "--out", str(work / f"out-{engine}"),
            "--cache-dir", str(work / f"cache-{engine}"), "--quiet", *extra]


def compare(work: Path, label: str, engines=("duckdb", "ray"), extra=(), env=None) -> None:
    res = {}
    for eng in engines:
        # cold: a step cache an earlier run left would answer every step (the fingerprints
        # hold the operators' code, not the engines')
        shutil.rmtree(work / f"cache-{eng}", ignore_errors=True)
        res[eng] = run_tree(recipe_cmd(label, work, eng, list(extra) + (["--model-cache", str(work / f"models-{eng}")]
                                                                     if "qdit" in label else [])), env)
        man = json.loads((work / f"out-{eng}" / "manifest.json").read_text())
        steps = ", ".join(f"{n['name']} {n['seconds']:.1f}" for n in man["nodes"])
        print(f"  {eng:7s} {res[eng]['seconds']:7.1f} s  peak {res[eng]['peak_mib']:7.0f} MiB  ({steps})", flush=True)
    a, b = work / "out-duckdb", work / "out-ray"
    same = all((a / p.name).read_bytes() == p.read_bytes() for p in b.iterdir() if p.name != "manifest.json")
    ratio = res["ray"]["seconds"] / res["duckdb"]["seconds"]
    print(f"  ray / duckdb: {ratio:.2f}x time (goal <= 2x: {'met' if ratio <= 2 else 'not met'}), "
          f"{res['ray']['peak_mib'] / res['duckdb']['peak_mib']:.2f}x peak memory; same bytes: {same}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--qdit-rows", type=int, default=20_000)
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {"RECIPE_RAY_CPUS": "2"}
    if args.rows:
        data = work / f"p3_{args.rows}.jsonl"
        if not data.exists():
            build(data, args.rows)
        w = work / "scale"
        w.mkdir(exist_ok=True)
        f = w / "scale.recipe"
        f.write_text(RECIPE.format(data=data))
        print(f"scale recipe, {args.rows:,} rows:", flush=True)
        compare(w, str(f), env=env)
    if args.qdit_rows:
        w = work / "qdit"
        w.mkdir(exist_ok=True)
        data = write_jsonl(alpaca_like(args.qdit_rows), w / "pool.jsonl")
        print(f"stdlib:qdit, {args.qdit_rows:,} rows (k=1000):", flush=True)
        compare(w, "stdlib:qdit", extra=["--source", f"raw={data}", "--set", "k=1000"], env=env)


if __name__ == "__main__":
    main()

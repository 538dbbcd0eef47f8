"""A sink written as shards on Ray (a task per file) against one file written by the driver:

    python bench/shards.py [--rows 500000] [--shards 2] [--runs 3]

bench/scale.py's P3-built rows go through a filter (a view over the read's blocks, as most
steps that drop rows leave them) into a JSON-lines sink. The steps run once to fill the cache;
then each case re-runs the recipe on that cache (every step cached: what is timed is starting
Ray and writing the sink), alternating, each run in its own process: the one-file sink, the same
rows with `shards=N` (written by N tasks), and the same two on the DuckDB engine.
Printed: each case's best seconds and the driver's peak RSS, and the ratio one-file / shards on
each engine (the DuckDB engine writes shards on threads). The bytes are checked: the shards,
joined, are the one-file sink, on both engines.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = 'recipe s\nsource raw = read("{data}", format="alpaca")\nkept = raw | filter(length(instruction) > 20)\n' \
         'write kept to "kept.jsonl"{opts}\n'


def run(work: Path, data: Path, engine: str, shards: int, out: str) -> dict:
    """One run in its own process: seconds and the driver's peak RSS (MiB)."""
    f = work / f"{out}.recipe"
    f.write_text(RECIPE.format(data=data, opts=f" (shards={shards})" if shards > 1 else ""))
    code = ("import resource, sys, time, json; from recipe.api import load\n"
            f"t = time.perf_counter(); load({str(f)!r}).run(out={str(work / out)!r}, "
            f"cache_dir={str(work / ('c-' + engine))!r}, engine={engine!r}, quiet=True)\n"
            "print(json.dumps({'seconds': time.perf_counter() - t, "
            "'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recipe-shards-"))
    try:
        data = work / "p3.jsonl"
        build(data, a.rows)
        t = time.perf_counter()
        run(work, data, "ray", 1, "warm-ray")  # the steps, once per engine
        run(work, data, "duckdb", 1, "warm-duckdb")
        print(f"{a.rows:,} rows; steps run once per engine in {time.perf_counter() - t:.1f} s")
        cases = {"ray, one file": ("ray", 1), f"ray, shards={a.shards}": ("ray", a.shards),
                 "duckdb, one file": ("duckdb", 1), f"duckdb, shards={a.shards}": ("duckdb", a.shards)}
        best: dict[str, dict] = {}
        for i in range(a.runs):
            for name, (eng, n) in cases.items():
                r = run(work, data, eng, n, f"o{i}-{eng}-{n}")
                if name not in best or r["seconds"] < best[name]["seconds"]:
                    best[name] = r
        one = (work / f"o0-ray-1" / "kept.jsonl").read_bytes()
        parts = b"".join((work / f"o0-ray-{a.shards}" / f"kept-{i:05d}-of-{a.shards:05d}.jsonl").read_bytes()
                         for i in range(a.shards))
        for name, r in best.items():
            print(f"{name:<20} {r['seconds']:6.1f} s  driver peak {r['peak_mib']:,.0f} MiB")
        for eng in ("ray", "duckdb"):
            ratio = best[f"{eng}, one file"]["seconds"] / best[f"{eng}, shards={a.shards}"]["seconds"]
            print(f"one file / shards on {eng}: {ratio:.2f}x")
        dparts = b"".join((work / f"o0-duckdb-{a.shards}" / f"kept-{i:05d}-of-{a.shards:05d}.jsonl").read_bytes()
                          for i in range(a.shards))
        print(f"the shards joined are the one file: {one == parts == dparts}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

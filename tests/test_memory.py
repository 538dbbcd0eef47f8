"""Memory stays flat in the number of rows: a 400k-row run (read, filter, normalize, exact
dedupe, jsonl and parquet sinks, set_aside.jsonl) peaks at about what a 100k-row run does, each
measured in its own subprocess. The bound is half the extra input (about 150 MB): a copy of
the extra rows, as Python rows (more than the JSON) or as Arrow (each text twice: messages
and instruction/response), would break it; run-to-run noise in DuckDB's memory is about
60 MB, so the 200k rows the issue names would leave too small a margin. `normalize` rewrote
the whole conversation column as Python values until session 40 (300k P3 rows: 3.4 GB).

DuckDB's limit is set low (128 MB) so that both runs fill it: below that, the cache grows
with the data until the limit, which is what the limit is for (the default is 1 GB)."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

RECIPE = """recipe memory
source raw = read("{path}", format="alpaca")
clean = raw
  | filter(length(instruction) > 20 and length(response) > 0)
  | normalize()
  | dedupe(method="exact", on=instruction)
write clean to "clean.jsonl"
write clean to "clean.parquet"
"""

# the peak of this process's own memory since exec (VmHWM): ru_maxrss would also count the
# parent's size when it forked the child (Linux keeps that high-water mark across exec), so a
# large test process would inflate the smaller run's figure
CHILD = """
import sys
import recipe
recipe.load(open(sys.argv[1]).read()).run(out=sys.argv[2], cache_dir=sys.argv[3])
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


def make_rows(path: Path, n: int) -> int:
    """`n` rows of random words: every tenth filtered out, every tenth but one a duplicate, the
    others distinct (random texts drawn from a pool with the row's number: drawing 180 words
    a row took 20 s of this test's minute)."""
    rng = random.Random(n)
    words = [f"w{i}" for i in range(5000)]
    texts = [" ".join(rng.choices(words, k=60)) for _ in range(997)]
    outs = [" ".join(rng.choices(words, k=120)) for _ in range(1009)]
    with open(path, "w") as fh:
        for i in range(n):
            inst = f"{texts[rng.randrange(997)]} {i}"
            if i % 10 == 0:
                inst = "short"                       # filtered out
            elif i % 10 == 1:
                inst = "DUPLICATE " + " ".join(words[:40])  # all but one set aside by dedupe
            fh.write(json.dumps({"instruction": inst, "input": "", "output": outs[rng.randrange(1009)]}) + "\n")
    return path.stat().st_size


def peak_kib(tmp: Path, n: int) -> tuple[int, int]:
    tmp.mkdir(exist_ok=True)
    data = tmp / f"rows{n}.jsonl"
    size = make_rows(data, n)
    rec = tmp / f"m{n}.recipe"
    rec.write_text(RECIPE.format(path=data))
    env = {**os.environ, "RECIPE_DUCKDB_MEMORY": "128MB"}  # DuckDB spills beyond this: its share is bounded
    out = subprocess.run([sys.executable, "-c", CHILD, str(rec), str(tmp / f"out{n}"), str(tmp / f"cache{n}")],
                         capture_output=True, text=True, env=env, check=True)
    with open(tmp / f"out{n}" / "clean.jsonl", "rb") as fh:  # streamed: this process stays small
        lines = sum(1 for _ in fh)
    assert lines == n - n // 10 - (n // 10 - 1), lines  # every row accounted: the filter and dedupe ran
    return int(out.stdout.strip().splitlines()[-1]), size


def test_peak_memory_is_flat_in_rows(tmp_path):
    small, small_size = peak_kib(tmp_path, 100_000)
    big, big_size = peak_kib(tmp_path, 400_000)
    if big - small >= (big_size - small_size) // 2048:
        # DuckDB's own peak varies run to run (by up to 300 MB under CPU contention once):
        # a second pair of runs tells noise from growth, which a whole-table copy repeats
        small = min(small, peak_kib(tmp_path / "again", 100_000)[0])
        big = min(big, peak_kib(tmp_path / "again", 400_000)[0])
    extra = (big_size - small_size) // 1024
    assert extra > 280_000  # the big input is about 300 MB more JSON
    assert big - small < extra // 2, f"peak grew {big - small} KiB for {extra} KiB more input ({small} -> {big})"

"""The scale benchmark: a large Alpaca file built from the P3 rows in ../shared/datasets (each
row repeated unchanged, with a suffix and with a prefix), the recipe below, and next to it, in
the same run and each in its own process, pyarrow's JSON reader on the same file.

    python bench/scale.py --rows 1000000        # the execution-layer issue's 1M-row case
    python bench/scale.py --rows 200000 --keep  # keep the built file for another run
    python bench/scale.py --rows 1000000 --datatrove  # and datatrove's MinHash on the same rows
    python bench/scale.py --rows 10000000 --work /big/disk  # 10M rows: 11.5 GB of input, ~50 GB of cache

Prints the whole run's time and peak RSS, each step's seconds (from the manifest) and the
ratio to pyarrow's read (the fastest of --baseline-runs reads, 3 by default: its time moves
a lot from run to run here, and the fastest is the hardest baseline). The goals (1M rows: peak RSS at most 3 GiB, the run within 6x
pyarrow's read; 10M rows: the run completes within this machine's 24 GiB) are printed as met
or not, never asserted. Above 2M rows pyarrow's whole-table read would not fit in memory, so
its streaming reader is the baseline there. A measured process whose memory passes
--max-rss-gib is killed rather than let it take the machine down.

With --datatrove: the rows the MinHash step sees (after the filter and exact dedupe, written
from the step cache) go, in two shards, to datatrove's MinHash pipeline (its four-stage
example, local executor, 2 workers, in its own virtual environment under bench/, made on first
use) and to `recipe`'s MinHash with the same shingles (word 5-grams), each in its own process;
printed: time, peak RSS, rows kept and recall of each. Recall is measured on what the build
knows: rows that are copies of one P3 row (another prefix or suffix) are true near-duplicates,
and each side's recall is the share of them removed. Ours runs at the threshold where its
recall reaches datatrove's (`THRESHOLD`).

With --datajuicer: the same rows, in one file, to Data-Juicer's single-machine MinHash
deduplicator (`document_minhash_deduplicator`, 2 processes, threshold 0.7, word 5-grams), in
its own virtual environment under bench/ (made on first use, about 2 GB), next to ours.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import DATASETS  # noqa: E402

RECIPE = '''recipe scale
source raw = read("{data}", format="alpaca")
clean = raw
  | filter(length(instruction) > 20 and length(response) > 0)
  | dedupe(method="exact", on=instruction)
  | dedupe(method="minhash", on=instruction, threshold=0.8)
write clean to "clean.jsonl"
'''


def build(path: Path, rows: int, root: Path = DATASETS) -> int:
    """Write `rows` Alpaca rows to `path` (streamed) from P3's prompt/completion rows."""
    base = []
    for f in sorted((root / "p3_t0_train_50k").glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                base.append((r["prompt"], r.get("completion", "")))
    if not base:
        raise SystemExit(f"no P3 data under {root}")
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        copy = 0
        while n < rows:
            for prompt, completion in base:
                if n >= rows:
                    break
                kind = copy % 3
                inst = prompt if kind == 0 else (f"{prompt} (variant {copy})" if kind == 1 else f"[{copy}] {prompt}")
                out.write(json.dumps({"instruction": inst, "input": "", "output": completion}, ensure_ascii=False) + "\n")
                n += 1
            copy += 1
    return n


# a child whose resident memory passes this is killed: this machine has no swap, and a process
# that exhausts its memory takes everything else on it down too (set by --max-rss-gib)
MAX_RSS_GIB = 22.0


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def _child(code: str) -> dict:
    """Run Python code in a fresh process; its seconds and its own peak RSS (MiB). Killed,
    with a clear message, if its memory passes MAX_RSS_GIB."""
    code += "\nimport resource\nprint('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=err, text=True)
        while p.poll() is None:
            if _rss_kib(p.pid) > MAX_RSS_GIB * 2 ** 20:
                p.kill()
                p.wait()
                raise SystemExit(f"killed: the child passed {MAX_RSS_GIB} GiB of resident memory")
            time.sleep(0.5)
        secs = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if p.returncode != 0:
        raise SystemExit(stderr[-3000:])
    peak = next(int(x.split()[1]) for x in stdout.splitlines() if x.startswith("PEAK "))
    return {"seconds": secs, "peak_mib": peak / 1024, "stdout": stdout}


def pyarrow_read(path: Path, stream: bool = False) -> dict:
    """pyarrow's JSON reader on the file: `read_json` (the whole table in memory, as the goal
    names), or with `stream` its streaming reader, batch by batch (above STREAM_ROWS rows the
    whole table would not fit this machine: 10M rows are about 24 GB of Arrow)."""
    if stream:
        return _child("import pyarrow.json as pj\n"
                      f"r = pj.open_json({str(path)!r}, read_options=pj.ReadOptions(block_size=1 << 24))\n"
                      "print(sum(b.num_rows for b in r))")
    return _child("import pyarrow.json as pj, sys\n"
                  f"t = pj.read_json({str(path)!r}, read_options=pj.ReadOptions(block_size=1 << 24))\n"
                  "print(t.num_rows)")


STREAM_ROWS = 2_000_000


def recipe_run(path: Path, work: Path) -> dict:
    """The recipe, cold: a step cache left in the work folder by an earlier run is removed
    first (finished steps would be reused and the times would mean nothing)."""
    import shutil
    for d in ("cache", "out", "mh", "mh_shards", "mo", "mo_cache", "dt"):
        shutil.rmtree(work / d, ignore_errors=True)
    f = work / "scale.recipe"
    f.write_text(RECIPE.format(data=path))
    code = ("import sys\nfrom recipe.cli import main\n"
            f"rc = (main(['run', {str(f)!r}, '--out', {str(work / 'out')!r}, '--cache-dir', "
            f"{str(work / 'cache')!r}, '--quiet']) or 0)\nif rc: sys.exit(rc)")
    res = _child(code)
    res["manifest"] = json.loads((work / "out" / "manifest.json").read_text())
    return res


# ours verifies every candidate pair against the threshold; datatrove joins any bucket match,
# so it removes well below its S-curve's 0.72: at 0.6 ours reaches its recall (README)
THRESHOLD = 0.6
DATATROVE = ["datatrove==0.10.1", "regex", "xxhash==3.5.0", "tokenizers", "orjson"]
# what its minhash and jsonl steps import; xxhash 4 no longer hashes str, which datatrove passes
# Data-Juicer's dependencies leave out what its operators import (it installs them at run time,
# torch unpinned: several GB of CUDA wheels), so they are named here; the CPU torch is local
DATAJUICER = ["py-data-juicer==1.6.1", "aiohttp", "ray", "scipy", "torch==2.13.0"]
DJ_THRESHOLD = 0.7  # Data-Juicer's default; like datatrove it removes any bucket match unverified
MINHASH_ONLY = '''recipe minhash
source rows = read("{data}", format="alpaca")
kept = rows | dedupe(method="minhash", on=instruction, unit="word", ngram=5, threshold={threshold})
write kept to "kept.jsonl" (columns=["instruction"])
'''


def _datatrove_python() -> Path:
    return _venv_python(".venv-datatrove", DATATROVE)


def _venv_python(name: str, packages: list[str]) -> Path:
    """The Python of a virtual environment under bench/ holding `packages` (made on first use)."""
    venv = Path(__file__).resolve().parent / name
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"installing {' '.join(packages)} into {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True)
    return py


def minhash_input(data: Path, work: Path) -> tuple[Path, int]:
    """The rows the recipe's MinHash step sees, from the step cache, in two JSON-lines shards
    (made once per work folder)."""
    if (work / "mh_shards" / "part1.jsonl").exists():
        with open(work / "mh" / "minhash_input.jsonl", "rb") as fh:
            return work / "mh" / "minhash_input.jsonl", sum(1 for _ in fh)
    head = RECIPE.format(data=data).split("  | dedupe(method=\"minhash\"")[0]
    f = work / "minhash_input.recipe"
    f.write_text(head + '\nwrite clean to "minhash_input.jsonl" (format="alpaca")\n')
    _child("import sys\nfrom recipe.cli import main\n"
           f"rc = main(['run', {str(f)!r}, '--out', {str(work / 'mh')!r}, '--cache-dir', "
           f"{str(work / 'cache')!r}, '--quiet']) or 0\nif rc: sys.exit(rc)")
    with open(work / "mh" / "minhash_input.jsonl", "rb") as fh:  # split on \n only: texts hold U+2028
        rows = fh.readlines()
    shards = work / "mh_shards"
    shards.mkdir(exist_ok=True)
    half = (len(rows) + 1) // 2
    for i, part in enumerate((rows[:half], rows[half:])):
        with open(shards / f"part{i}.jsonl", "w", encoding="utf-8") as fh:
            for j, line in enumerate(part):
                rec = json.loads(line)
                fh.write(json.dumps({"_id": f"{i}:{j}", "instruction": rec["instruction"]}, ensure_ascii=False) + "\n")
    return work / "mh" / "minhash_input.jsonl", len(rows)


def _tool(py: Path, script: str, args: list, cwd: Path) -> tuple[dict, int]:
    """Another tool's script (bench/<script>) in its own Python, from `cwd`, measured: (its
    seconds and largest process's peak, the rows it printed as `KEPT n`)."""
    cmd = [str(py), str(Path(__file__).resolve().parent / script), *map(str, args)]
    code = (f"import subprocess, sys\np = subprocess.run({cmd!r}, capture_output=True, text=True, cwd={str(cwd)!r})\n"
            "print(p.stdout)\nimport resource\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # its largest process\n"
            "sys.exit(p.returncode and (p.stderr[-3000:] or 1))")
    res = _child(code)
    return res, next(int(x.split()[1]) for x in res["stdout"].splitlines() if x.startswith("KEPT "))


def compare_datatrove(data: Path, work: Path) -> None:
    py = _datatrove_python()
    rows_file, n = minhash_input(data, work)
    dt, dt_kept = _tool(py, "_datatrove_minhash.py", [work / "mh_shards", work / "dt", "instruction", 2], work)
    groups = _groups(line_texts(rows_file, "instruction"))
    dt_texts = [t for g in sorted((work / "dt" / "out").glob("*.jsonl")) for t in line_texts(g, "text")]
    dt_recall = variant_recall(groups, dt_texts)
    print(f"\nMinHash on the same {n:,} rows (word 5-grams; datatrove 14x8 buckets, ours threshold {THRESHOLD}):")
    print(f"  datatrove (4 stages, 2 workers): {dt['seconds']:.1f} s, kept {dt_kept:,} rows, "
          f"variant recall {dt_recall:.4%}, {_lost(groups, dt_texts)}, largest process {dt['peak_mib']:,.0f} MiB")
    _ours_against("datatrove's MinHash pipeline", dt["seconds"], dt_recall, rows_file, groups, work)


def compare_datajuicer(data: Path, work: Path) -> None:
    """Data-Juicer's single-machine MinHash deduplicator on the same rows, one file, 2 processes."""
    py = _venv_python(".venv-datajuicer", DATAJUICER)
    rows_file, n = minhash_input(data, work)
    out = work / "dj_kept.jsonl"
    dj, dj_kept = _tool(py, "_datajuicer_minhash.py", [rows_file, out, "instruction", 2, DJ_THRESHOLD], work)
    groups = _groups(line_texts(rows_file, "instruction"))
    dj_texts = line_texts(out, "text")
    dj_recall = variant_recall(groups, dj_texts)
    print(f"\nMinHash on the same {n:,} rows (word 5-grams; Data-Juicer threshold {DJ_THRESHOLD}, 256 permutations):")
    print(f"  Data-Juicer document_minhash_deduplicator (2 processes): {dj['seconds']:.1f} s, kept {dj_kept:,} rows, "
          f"variant recall {dj_recall:.4%}, {_lost(groups, dj_texts)}, largest process {dj['peak_mib']:,.0f} MiB")
    _ours_against("Data-Juicer's MinHash deduplicator", dj["seconds"], dj_recall, rows_file, groups, work)


_OURS: dict = {}


def _ours_against(name: str, their_seconds: float, their_recall: float, rows_file: Path, groups, work: Path) -> None:
    """Our MinHash step on the same rows (run once per benchmark), next to another tool's."""
    if not _OURS:
        f = work / "minhash_only.recipe"
        f.write_text(MINHASH_ONLY.format(data=rows_file, threshold=THRESHOLD))
        ours = _child("import sys\nfrom recipe.cli import main\n"
                      f"rc = main(['run', {str(f)!r}, '--out', {str(work / 'mo')!r}, '--cache-dir', "
                      f"{str(work / 'mo_cache')!r}, '--quiet']) or 0\nif rc: sys.exit(rc)")
        man = json.loads((work / "mo" / "manifest.json").read_text())
        kept = line_texts(work / "mo" / "kept.jsonl", "instruction")
        _OURS.update(ours=ours, step=next(x for x in man["nodes"] if x["op"] == "dedupe"),
                     recall=variant_recall(groups, kept), lost=_lost(groups, kept))
    ours, step, our_recall = _OURS["ours"], _OURS["step"], _OURS["recall"]
    print(f"  recipe dedupe step:              {step['seconds']:.1f} s, kept {step['rows_out']:,} rows, "
          f"variant recall {our_recall:.4%}, {_OURS['lost']} (whole run with read and write: {ours['seconds']:.1f} s, "
          f"peak {ours['peak_mib']:,.0f} MiB)")
    equal = our_recall >= their_recall
    print(f"  speed-up of the step over {name}: {their_seconds / max(step['seconds'], 1e-9):.1f}x (goal: >= 3x at "
          f"equal recall: {'met' if their_seconds >= 3 * step['seconds'] and equal else 'not met'}; our recall is "
          f"{'at least' if equal else 'below'} theirs)")


def _lost(groups: Counter, kept: list[str]) -> str:
    return f"{originals_lost(groups, kept):,} of {len(groups):,} P3 rows with no copy kept"


def line_texts(path: Path, key: str) -> list[str]:
    with open(path, "rb") as fh:  # split on \n only: texts hold U+2028
        return [json.loads(line)[key] for line in fh]


_VARIANT = re.compile(r"^\[\d+\] |\s\(variant \d+\)$")  # the marks `build` adds to a copy


def _groups(texts: list[str]) -> Counter:
    return Counter(_VARIANT.sub("", t) for t in texts)


def variant_recall(groups: Counter, kept: list[str]) -> float:
    """Of the rows that are copies of another row of the input by construction (same P3 row,
    another prefix or suffix), the share removed: 1 - (rows kept beyond one per P3 row) /
    (rows beyond one per P3 row). Removing more than that (whole rows near another P3 row)
    does not count against either side."""
    left = _groups(kept)
    extra = sum(max(0, left[g] - 1) for g in groups)
    return 1 - extra / max(1, sum(v - 1 for v in groups.values()))


def originals_lost(groups: Counter, kept: list[str]) -> int:
    """The other side of recall: of the input's distinct originals (P3 rows, copies counted
    once), how many have no copy kept: removed as near-duplicates of a *different* row. A
    method that removed every row would have perfect recall and lose them all."""
    left = _groups(kept)
    return sum(1 for g in groups if left[g] == 0)


def main() -> None:
    global MAX_RSS_GIB
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, help="folder for the data, cache and outputs (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--datatrove", action="store_true", help="also run datatrove's MinHash on the same rows")
    ap.add_argument("--datajuicer", action="store_true", help="also run Data-Juicer's MinHash on the same rows")
    ap.add_argument("--baseline-runs", type=int, default=3, help="runs of pyarrow's read; the fastest is the baseline")
    ap.add_argument("--max-rss-gib", type=float, default=MAX_RSS_GIB,
                    help="kill a measured process whose resident memory passes this (default %(default)s)")
    a = ap.parse_args()
    MAX_RSS_GIB = a.max_rss_gib
    work = a.work or Path(tempfile.mkdtemp(prefix="recipe-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"p3_{a.rows}.jsonl"
    if not data.exists():
        t = time.perf_counter()
        n = build(data, a.rows)
        print(f"built {n:,} rows ({data.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s")
    # each measured in its own process, one after the other (never side by side)
    stream = a.rows > STREAM_ROWS
    # the baseline's best of a few runs: its time moves 4-15 s from one run to the next on this
    # machine (page cache, memory compaction), and noise only ever slows a run down
    tries = [pyarrow_read(data, stream) for _ in range(a.baseline_runs)]
    base = min(tries, key=lambda r: r["seconds"])
    print(f"pyarrow.json.{'open_json (streamed)' if stream else 'read_json'}: {base['seconds']:.1f} s, "
          f"{base['peak_mib']:,.0f} MiB (best of {len(tries)}: "
          f"{', '.join(format(r['seconds'], '.1f') for r in tries)} s)")
    run = recipe_run(data, work)
    peak = run["peak_mib"]
    print(f"\n{'step':<24} {'seconds':>9} {'rows in':>10} {'rows out':>10}")
    for n in run["manifest"]["nodes"]:
        print(f"{n['name']:<24} {n['seconds']:>9.1f} {n['rows_in']:>10,} {n['rows_out']:>10,}")
    ratio = run["seconds"] / base["seconds"]
    cache = sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file())
    print(f"\nwhole run: {run['seconds']:.1f} s, {ratio:.1f}x pyarrow's read"
          + (f" (goal at 1M rows: <= 6x: {'met' if ratio <= 6 else 'not met'})" if not stream else ""))
    if stream:  # the goal above 1M rows is only to finish within this machine's memory
        print(f"peak RSS: {peak:,.0f} MiB (goal at 10M rows: completes within 24 GiB: "
              f"{'met' if peak <= 24 * 1024 else 'not met'})")
    else:
        print(f"peak RSS: {peak:,.0f} MiB (goal at 1M rows: <= 3,072 MiB: "
              f"{'met' if peak <= 3072 else 'not met'}); pyarrow's read alone peaked at {base['peak_mib']:,.0f} MiB")
    print(f"step cache on disk: {cache / 1e9:.1f} GB")
    if a.datatrove:
        compare_datatrove(data, work)
    if a.datajuicer:
        compare_datajuicer(data, work)
    if not a.keep and not a.work:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

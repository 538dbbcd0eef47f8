"""What a plan will cost on this machine, before it runs: per step the rows in and out, the
model requests and tokens, and seconds. Rows come from the input files (lines of JSON-lines
files, else what the last read of the same contents gave) and each operator's arithmetic
(limit, sample, select) or the keep rate of its last run; seconds, requests and tokens per
row come from the rates this step cache measured (the same operator with the same models,
else the same operator). A step served from the cache costs nothing. Unknown stays unknown."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Estimate:
    rows_in: float | None
    rows_out: float | None
    requests: float | None = None
    tokens: float | None = None
    seconds: float | None = None
    cached: bool = False
    basis: str = ""          # where the seconds come from


def estimate(plan, store, weights_dir=None) -> dict[str, Estimate]:
    """Each step's rows and seconds; `weights_dir`: the model cache that training steps'
    weights must be in for them to count as cached."""
    from .plan import finished
    history = store.history() if store is not None else []
    runs = store.runs() if store is not None else []  # every size a step ran at: its rates
    out: dict[str, Estimate] = {}
    loaded: set[str] = set()  # models an earlier step of this run will have loaded
    for s in plan.steps:
        done = finished(store, s, weights_dir)
        if done is not None:
            out[s.name] = Estimate(done["rows_in"], done["rows_out"], 0, 0, 0.0, cached=True, basis="cached")
            continue
        if s.op == "read":
            rows_in = None
            rows_out = _source_rows(s, history)
        else:
            from . import ops as registry
            main = len(s.inputs) - len(registry.get(s.op, internal=True).extra_inputs(s.args))
            ins = [out[i].rows_out for i in s.inputs[:main]]
            rows_in = None if any(x is None for x in ins) else float(sum(ins))
            rows_out = _rows_out(s, rows_in, history, ins)
        e = Estimate(rows_in, rows_out)
        rate, e.basis = _rates(s, runs)
        n = rows_out if s.op == "read" else rows_in
        if rate is not None and n is None:
            e.basis = "rows unknown until the source's first read"
        if rate is not None and n is not None:
            # model calls are counted as computed, none served from the result cache: an
            # upper bound where texts repeat across runs
            e.requests = rate["requests"] * n if s.models else None
            e.tokens = rate["tokens"] * n if s.models else None
            e.seconds = rate["fixed"] + rate["other"] * n + rate["per_call"] * (e.requests or 0)
            if s.models and not set(s.models) <= loaded:
                e.seconds += rate["load"]
            if rate["fixed"] == 0 and n > 10 * rate["rows"]:  # one size of run: its fixed cost counted per row
                e.basis += f", from runs of at most {rate['rows']:,.0f} rows: likely high"
        loaded |= set(s.models)
        out[s.name] = e
    return out


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def _source_rows(step, history) -> float | None:
    """Rows a read will give: as many as the files hold, at most its `head`."""
    rows = _file_rows(step, history)
    head = step.args.get("head")
    return float(head) if head and (rows is None or rows > head) else rows


def _file_rows(step, history) -> float | None:
    from .io.readers import list_files
    try:
        files = list_files(step.args["path"])
    except Exception:  # a path `check` already accepted but that is gone now: say unknown
        return None
    # the last whole read of the same files (a `head` read counted only its first records)
    past = [h for h in history if h["parts"].get("op") == "read" and h["parts"].get("data") == step.parts.get("data")
            and not (h["parts"].get("args") or {}).get("head")]
    if past:
        return float(past[-1]["rows_out"])  # the last read of the same files
    counts = [_count_records(f, bool(step.args.get("columns"))) for f in files]
    return None if any(c is None for c in counts) else float(sum(counts))


COUNT_BYTES = 256 << 20  # a CSV larger than this is not counted before its first read


def _count_records(f: Path, headerless: bool) -> int | None:
    """Records in a file, as cheaply as its kind allows: lines of JSON lines, Parquet's
    metadata, CSV records at the csv module's speed (quoted line breaks counted right), a
    JSON array's elements by a compiled scan, an Arrow file's batches; None for the rest
    (known after a first read)."""
    from .io.readers import is_compressed
    kind = f.suffix.lower()
    if is_compressed(f):
        return None  # known after its first read: counting would decompress it all
    if kind in (".jsonl", ".ndjson"):
        return _count_lines(f)
    try:
        if kind == ".parquet":
            import pyarrow.parquet as pq
            return pq.ParquetFile(f).metadata.num_rows
        if kind == ".json":
            from .io.arrow_array import count_elements
            return count_elements(f)
        if kind == ".arrow":  # memory-mapped: the batches' lengths, no copy of their data
            from .io.hf_disk import arrow_batches
            return sum(b.num_rows for b in arrow_batches(f, size=1 << 62))
        if kind in (".csv", ".tsv") and f.stat().st_size <= COUNT_BYTES:
            import csv
            with open(f, newline="", encoding="utf-8-sig", errors="replace") as fh:
                n = sum(1 for rec in csv.reader(fh, delimiter="\t" if kind == ".tsv" else ",") if rec)
            return n if headerless else max(n - 1, 0)
    except Exception:  # unreadable: the read will say why; the estimate says unknown
        return None
    return None


def _rows_out(step, rows_in, history, ins=()) -> float | None:
    if rows_in is None:
        return None
    a = step.args
    if step.op == "mix":  # what the op itself would draw from inputs of these sizes
        from .ops.mix import mix_counts
        return float(sum(mix_counts([int(x) for x in ins], a["weights"], a.get("k"))))
    if step.op == "limit":
        return min(rows_in, float(a.get("n", rows_in)))
    if step.op in ("sample", "select") and isinstance(a.get("n", a.get("k")), (int, float)):
        return min(rows_in, float(a.get("n", a.get("k"))))
    same = [h for h in history if h["name"] == step.name and h["rows_in"]]
    if same:  # this step's keep rate last time (a filter or dedupe keeps about as much again)
        return rows_in * same[-1]["rows_out"] / same[-1]["rows_in"]
    return rows_in


def _rates(step, history) -> tuple[dict | None, str]:
    """Per row: seconds outside the models and model requests and tokens; per computed model
    call: seconds; and a model load's seconds. From runs of the same operator with the same
    models, else of the same operator with models (without, when the step has none): a
    `score` by word count says nothing of one by a model (it made an IFD step look free)."""
    models = step.parts.get("models", [])
    kind = _kind(step.parts)
    for pick, basis in ((lambda h: h["parts"].get("op") == step.op and h["parts"].get("models", []) == models
                         and _kind(h["parts"]) == kind,
                         "measured: this operator with these models" if models else "measured: this operator"),
                        (lambda h: h["parts"].get("op") == step.op and h["parts"].get("models", []) == models,
                         "measured: this operator with these models" if models else "measured: this operator"),
                        (lambda h: h["parts"].get("op") == step.op and bool(h["parts"].get("models")) == bool(models),
                         "measured: this operator with other models" if models else "measured: this operator")):
        runs = [h for h in history if pick(h)]
        sizes = [float((h["rows_out"] if step.op == "read" else h["rows_in"]) or 0) for h in runs]
        rows = sum(sizes)
        if runs and rows:
            use = [h["usage"] or {} for h in runs]
            model_s = sum(u.get("seconds", 0) for u in use)
            computed = sum(u.get("computed", 0) for u in use)
            # seconds outside the models, run by run
            others = [max(h["seconds"] - u.get("seconds", 0) - u.get("load_seconds", 0), 0.0) for h, u in zip(runs, use)]
            fixed, per_row = _fit(sizes, others)
            return ({"fixed": fixed, "other": per_row, "rows": max(sizes),
                     "requests": sum(u.get("requests", 0) for u in use) / rows,
                     "tokens": sum(u.get("tokens", 0) for u in use) / rows,
                     "per_call": model_s / computed if computed else 0.0,
                     "load": max((u.get("load_seconds", 0) for u in use), default=0.0)}, basis)
    return None, ("no measured rate for this operator with a model in this cache" if models
                  else "no measured rate for this operator in this cache")


def _fit(sizes: list[float], seconds: list[float]) -> tuple[float, float]:
    """(seconds a run costs whatever its size, seconds a row) by least squares over runs of
    several sizes, both at least 0: a step's start (a connection, a model's warm-up, a first
    import) is no per-row cost. A 80-row read of 1.3 s said 4.5 hours for 1M rows that take 20 s.
    With runs of one size: no fixed cost, every second per row (an upper bound)."""
    n = len(sizes)
    mean_x, mean_y = sum(sizes) / n, sum(seconds) / n
    var = sum((x - mean_x) ** 2 for x in sizes)
    if var > 0:
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(sizes, seconds)) / var
        fixed = mean_y - slope * mean_x
        if slope >= 0 and fixed >= 0:
            return fixed, slope
        if slope < 0:  # bigger runs no slower (noise): the largest run's rate
            big = max(range(n), key=lambda i: sizes[i])
            return 0.0, seconds[big] / sizes[big]
    return 0.0, sum(seconds) / sum(sizes)


def _kind(parts: dict):
    """What an operator does with its models, where one operator does several things: score's
    `metric` (a token count costs nothing next to an IFD), select's and dedupe's `method`."""
    args = parts.get("args") or {}
    return args.get("metric", args.get("method"))


def fmt(e: Estimate) -> str:
    """One line: `~rows in -> ~rows out, ~requests, ~tokens, ~seconds`."""
    if e.cached:
        return "cached"

    def n(x, unit=""):
        return "?" if x is None else f"~{x:,.0f}{unit}"
    parts = [f"{n(e.rows_in)} -> {n(e.rows_out)} rows" if e.rows_in is not None else f"{n(e.rows_out)} rows"]
    if e.requests:
        parts.append(f"{n(e.requests)} model requests, {n(e.tokens)} tokens")
    parts.append("? s" if e.seconds is None else f"~{e.seconds:,.1f} s")
    return ", ".join(parts)

"""Execute a plan: each step in its own transaction, cached by fingerprint; then the sinks,
`set_aside.jsonl` and `manifest.json`, each written atomically."""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import compiled, ops as registry
from ..diagnostics import UserError
from ..faults import atomic_file, atomic_write, fault  # noqa: F401  (re-exported for callers)
from ..plan import Plan, finished, status
# Reporter re-exported: callers import it from here
from ..ui import Reporter, n_rows  # noqa: F401
from ..io.json_lines import joined, set_aside_records
from ..manifest import sink_files
from ..io.formats import left_out
from ..table import KernelContext
from ..io.features import hub_features, unified
from .writers import finite, safe_sink_path, write_sink


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    steps: list[dict] = field(default_factory=list)


def check_out_dir(out: Path) -> None:
    """Fail before any work when --out cannot be written; remove temporary files a killed
    run left behind (they were never visible under their final names)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.rglob(".*.tmp-*"):
            stale.unlink()
        probe = out / f".recipe-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        if blocked is not None:  # mkdir's "File exists" named no file
            raise UserError(f"cannot write to output directory {out}: `{blocked}` is a file, not a directory")
        raise UserError(f"cannot write to output directory {out}: {e.strerror}")


def execute(plan: Plan, store, out_dir: Path, reporter: Reporter, runtime_factory,
            manifest_extra: dict, release=lambda model: None, finish=lambda manifest: None,
            fail_fast: bool = False) -> RunResult:
    """Run the steps, write the sinks, `set_aside.jsonl` and (once, last) `manifest.json`;
    `finish(manifest)` adds what only the caller knows (the model runtime's counters).
    `store` is an engine's step cache (engine/store.py for DuckDB, engine/ray_store.py for
    Ray): it makes each step's `Output`, hands out finished steps as `Table`s, reads sources
    and records finished steps; this loop does not know which engine it drives. Each
    expectation is evaluated once the steps it reads are finished; with `fail_fast` the first
    unmet one stops the run there (`expect.UnmetExpectations`)."""
    from ..plan import last_use
    # two declarations of the same model share one loaded copy: release after the last of both
    ident = {m: d["identity"] for m, d in plan.models.items()}
    last_by_ident: dict[str, tuple[int, str]] = {}
    order = {s.name: i for i, s in enumerate(plan.steps)}
    for m, s in last_use(plan.steps).items():
        cur = last_by_ident.get(ident[m])
        if cur is None or order[s] > order[cur[1]]:
            last_by_ident[ident[m]] = (m, s)
    finished_with = {}
    for m, s in last_by_ident.values():
        finished_with.setdefault(s, []).append(m)
    rows: list[dict] = []
    step_fp: dict[str, str] = {}  # step name -> the fingerprint its table is stored under
    noted = False
    from .expect import Watch
    watch = Watch(plan.expects, plan.params, fail_fast)
    node_of = {s.name: s.node for s in plan.steps}

    def settle() -> None:
        watch.settle(set(step_fp), lambda step: store.table_of(step_fp[step]),
                     lambda node: sum(r["rows_set_aside"] for r in rows if node_of[r["name"]] == node), reporter.log)
    for step in plan.steps:
        t0 = time.time()
        # a training step's record counts only while its weights are in the model cache
        weights = runtime_factory().weights_dir if step.op == "finetune" else None
        done = finished(store, step, weights)
        if done is not None:
            step_fp[step.name] = step.fingerprint
            rows.append({"name": step.name, "op": step.op, **{k: done[k] for k in
                         ("rows_in", "rows_created", "rows_out", "rows_set_aside")},
                         "seconds": 0.0, "cached": True, "info": done["info"], "why": "cached"})
            reporter.log(f"  {step.name}: cached ({n_rows(done['rows_out'])})")
            if (done["info"] or {}).get("warning"):  # said again: the manifest repeats it too
                reporter.log(f"  warning: {step.name}: {done['info']['warning']}")
            store.used(step)
            for m in finished_with.get(step.name, []):
                release(m)
            settle()
            continue
        why = status(store, step, weights)
        if not noted and not reporter.quiet:  # once, before the first step that runs
            noted = True
            compiled.note(reporter.log)
        reporter.log(f"  {step.name}: running {step.op} ({why})")
        store.begin_step(step.fingerprint)
        ctx = KernelContext(store.output(step.fingerprint, plan.params), step.name, plan.params,
                            {m: plan.models[m] for m in step.models}, runtime_factory,
                            pmap=getattr(store, "pmap", None), fingerprint=step.fingerprint)
        inputs = [store.table_of(step_fp[i]) for i in step.inputs]
        usage0 = _model_usage(runtime_factory, step)
        try:
            with reporter.progress(step.name) as prog:
                ctx.progress = prog
                if step.op == "read":
                    store.read(step.fingerprint, ctx, step.node, step.args, reporter.log)
                else:
                    op = registry.get(step.op, internal=True)
                    op.run(ctx, step.args, inputs)
                    if not ctx.out.made:
                        raise RuntimeError(f"operator {step.op} built no output")
                    op.finish(ctx, step.args, store.table_of(step.fingerprint))
            n_in = sum(t.count() for t in inputs[:_main_inputs(step)])
            n_out = store.table_of(step.fingerprint).count()
            n_aside = store.aside_count(step.fingerprint)
            created = n_out + n_aside - n_in
            spec = registry.get(step.op, internal=True)
            if created < 0 or (created > 0 and not (step.op == "read" or (spec and spec.creates_rows))):
                raise RuntimeError(f"accounting broken in step {step.name}: in={n_in} out={n_out} set aside={n_aside}")
            if step.op == "read" and n_aside and not n_out and not ctx.info.get("warning"):
                ctx.info["warning"] = _nothing_read(store, step, n_aside)
            secs = time.time() - t0
            usage = None
            if usage0 is not None:  # what the step asked of its models: `recipe plan` estimates from it
                u = _model_usage(runtime_factory, step)
                usage = {k: u[k] - usage0[k] for k in u}
            store.record_step(step, (n_in, created, n_out, n_aside), secs, ctx.info, usage)
            fault(f"step:{step.name}:before_commit")
            store.commit()
            fault(f"step:{step.name}:after_commit")
        except BaseException as e:
            store.rollback(step.fingerprint)
            if getattr(e, "name_step", False):  # a model server stayed down: one line, naming the step
                raise UserError(f"step `{step.name}` ({step.op}): {e}") from None
            if isinstance(e, (UserError, KeyboardInterrupt, SystemExit)) or os.environ.get("RECIPE_DEBUG"):
                raise
            if _interrupted(e):  # Ctrl-C inside a DuckDB query: an interrupt, not the step's failure
                raise KeyboardInterrupt from e
            # a failure inside an operator or a model library: say where, keep the cache intact
            raise UserError(f"step `{step.name}` ({step.op}) failed: {_cause(e)}\n"
                            f"  finished steps are cached; set RECIPE_DEBUG=1 for the traceback") from e
        step_fp[step.name] = step.fingerprint
        if ctx.info.get("warning"):
            reporter.log(f"  warning: {step.name}: {ctx.info['warning']}")
        for m in finished_with.get(step.name, []):
            release(m)
        rows.append({"name": step.name, "op": step.op, "rows_in": n_in, "rows_created": created,
                     "rows_out": n_out, "rows_set_aside": n_aside, "seconds": round(secs, 3),
                     "cached": False, "info": ctx.info, "why": why})
        settle()
    # outputs
    tables = [store.table_of(step_fp[s["step"]]) for s in plan.sinks]
    files = [_sink_files(safe_sink_path(out_dir, s["path"]), t, s["options"]) for s, t in zip(plan.sinks, tables)]
    stale = _stale_outputs(out_dir, [p for f in files for p, _ in f])
    for f in stale:
        reporter.log(f"  warning: {f} is an earlier run's output that this run does not write; its manifest "
                     f"is replaced: remove the file or use another --out")
    sinks = []
    aside_lines = []
    sink_warnings: list[str] = []
    for s, table, parts in zip(plan.sinks, tables, files):
        done = _write_files(store, parts, s)
        n, rejected, nulled, dropped, shape = summed_writes(done)
        features = hub_features(shape)
        shards = [{"path": str(path), "rows": d[0]} for (path, _), d in zip(parts, done)]
        path = Path(shards[0]["path"]) if len(shards) == 1 else safe_sink_path(out_dir, s["path"])
        # a format's record has no place for other columns unless `columns=` names them: said
        left = left_out(s["format"], table.columns(), s["options"].get("columns"))
        sinks.append({"name": s["name"], "step": s["step"], "path": shards[0]["path"], "file": s["path"],
                      "format": s["format"] or "jsonl",
                      "rows": n, "rows_not_written": len(rejected)}
                     | ({"files": shards} if _sharded(s["options"]) else {})
                     | ({"features": features} if features is not None else {})
                     | ({"rows_with_nan_as_null": len(nulled)} if nulled else {})
                     | ({"columns_not_written": left} if left else {}))
        if nulled:
            sink_warnings.append(f"write {s['path']}: {len(nulled)} row(s) held NaN or infinite numbers, written as "
                                 f"null (JSON has neither; the first: {nulled[0]})")
            reporter.log(f"  warning: {sink_warnings[-1]}")
        if dropped:  # said, not silent: a dropped `weight` unmasks a turn the data meant to mask
            sink_warnings.append(f"write {s['path']}: {s['format']} has no place for the turns' own "
                                 + ", ".join(f"`{k}` ({v} rows)" for k, v in sorted(dropped.items()))
                                 + ": not written (sharegpt and openai keep them)")
            reporter.log(f"  warning: {sink_warnings[-1]}")
        aside_lines += [json.dumps({"_id": rid, "node": f"write {s['path']}", "reason": why}, ensure_ascii=False)
                        for rid, why in rejected]
        reporter.log(f"  wrote {n_rows(n)} to {path}" + (f" in {len(shards)} files ({Path(shards[0]['path']).name}, ...)"
                                                        if len(shards) > 1 else "")
                     + (f" ({len(rejected)} not written: {s['format']} cannot hold them; "
                        f"each is in set_aside.jsonl)" if rejected else ""))
        if left:
            reporter.log(f"  {s['format']} leaves out the columns " + ", ".join(f"`{c}`" for c in left[:8])
                         + (f" and {len(left) - 8} more" if len(left) > 8 else "")
                         + f"; `columns=[...]` on the write carries them")
    with atomic_file(out_dir / "set_aside.jsonl", "wb") as fh:  # streamed, 10,000 rows at a time
        for step in plan.steps:
            for batch in store.aside_batches(step.fingerprint):
                if batch.num_rows:
                    fh.write(joined(set_aside_records(batch, step.name), "\n") + b"\n")
        for line in aside_lines:
            fh.write(line.encode("utf-8") + b"\n")
    expectations = watch.all()
    manifest = {**manifest_extra,
                "nodes": [{k: r[k] for k in ("name", "op", "rows_in", "rows_created", "rows_out",
                                             "rows_set_aside", "seconds", "cached")}
                          | {"fingerprint": s.fingerprint, "inputs": list(s.inputs[:_main_inputs(s)])}
                          | ({"stats": r["info"]} if r["info"] else {})
                          for r, s in zip(rows, plan.steps)],
                "sinks": sinks,
                "warnings": [f"{r['name']}: {r['info']['warning']}" for r in rows if (r["info"] or {}).get("warning")]
                + sink_warnings
                + [f"{f}: an earlier run's output that this run does not write" for f in stale],
                "stale_outputs": stale} | ({"expectations": expectations} if plan.expects else {})
    finish(manifest)
    # a statistic that came out NaN is null: the manifest stays JSON that any reader takes
    atomic_write(out_dir / "manifest.json", (json.dumps(finite(manifest), indent=2, ensure_ascii=False,
                                                        allow_nan=False) + "\n").encode())
    reporter.summary(rows)
    reporter.stats(rows)
    return RunResult(out_dir, manifest, rows)


def _write_one(table, path: Path, fmt: str | None, options: dict) -> tuple[int, list, list, Counter, object]:
    """One sink file: (rows written, rows the format cannot hold, rows whose NaN went null,
    turn fields dropped, the Arrow schema of what it holds or None); a module-level function,
    so an engine may run it in a worker."""
    nulled: list = []
    dropped: Counter = Counter()
    shapes: list = []
    n, rejected = write_sink(table, path, fmt, options, atomic_write, nulled, dropped, shapes)
    return n, rejected, nulled, dropped, unified(shapes)


def summed_writes(done: list) -> tuple[int, list, list, Counter, object]:
    """Files' `_write_one` results as one: rows written, then the rows rejected, nulled and
    the turn fields dropped, in the files' order, and one schema for them all."""
    n, rejected, nulled, dropped = 0, [], [], Counter()
    for k, rej, nul, drop, _ in done:
        n += k
        rejected += rej
        nulled += nul
        dropped.update(drop)
    return n, rejected, nulled, dropped, unified(d[4] for d in done if d[0])


def _write_files(store, parts: list, sink: dict) -> list:
    """Each of a sink's files written (one, or a shard per range of rows), as `_write_one`
    returns: on Ray each shard is a task's and a JSON-lines file is written in pieces by tasks
    and joined; here, shards on threads."""
    fmt, options = sink["format"], sink["options"]
    if len(parts) > 1 and hasattr(store, "write_files"):
        return store.write_files(parts, fmt, options)
    if len(parts) == 1 and hasattr(store, "write_joined"):
        whole = store.write_joined(parts[0][1], parts[0][0], fmt, options)
        if whole is not None:
            return [whole]
    return _write_side_by_side(parts, sink)


def _write_side_by_side(parts: list, sink: dict) -> list:
    """A sink's files on threads, a few at a time (the JSON text is built by compiled loops that
    release the GIL, and each file reads its rows through a cursor of its own)."""
    if len(parts) == 1:
        return [_write_one(parts[0][1], parts[0][0], sink["format"], sink["options"])]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=min(len(parts), os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda pp: _write_one(pp[1], pp[0], sink["format"], sink["options"]), parts))


def _sharded(options: dict) -> bool:
    return bool(options.get("shards") or options.get("shard_rows"))


def _sink_files(path: Path, table, options: dict) -> list[tuple[Path, object]]:
    """The files a sink writes and the rows of each: the whole table at `path`, or with
    `shards=`/`shard_rows=` consecutive ranges of rows, as equal as they divide, at the Hub's
    shard names (`train-00000-of-00004.parquet`); a sharded sink's files are named so even
    when there is one."""
    from ..io.sinks import shard_count, shard_path
    if not _sharded(options):
        return [(path, table)]
    rows = table.count()
    n = shard_count(rows, options.get("shards"), options.get("shard_rows"))
    if options.get("shard_rows"):
        cuts = [min(i * options["shard_rows"], rows) for i in range(n + 1)]
    else:
        cuts = [i * rows // n for i in range(n + 1)]
    return [(shard_path(path, i, n), table.rows_between(cuts[i], cuts[i + 1])) for i in range(n)]


def _stale_outputs(out_dir: Path, writing: list[Path]) -> list[str]:
    """Sinks of the run whose manifest is in `out_dir` (and files it named as stale) that
    this run does not write and that are still there: files with no manifest once this one
    replaces it. The new manifest names them too, so each later run says so again."""
    try:
        old = json.loads((out_dir / "manifest.json").read_text())
        paths = [Path(p) for s in old.get("sinks", []) for p in sink_files(s)] + [Path(p) for p in old.get("stale_outputs", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    mine = {p.resolve() for p in writing}
    return list(dict.fromkeys(str(p) for p in paths if p.resolve() not in mine and p.is_file()
                              and p.resolve().is_relative_to(out_dir.resolve())))


def _nothing_read(store, step, n_aside: int) -> str:
    """What a read that set every row aside says: the first reason, and the format when it
    was given (the commonest cause: a file in another format than the recipe names)."""
    first = next((b for b in store.aside_batches(step.fingerprint, 1) if b.num_rows), None)
    why = first.column("reason")[0].as_py() if first is not None else "?"
    fmt = step.args.get("format")
    return (f"every row ({n_aside}) was set aside; the first: {why}"
            + (f" (format=\"{fmt}\" is given: is it the file's format?)" if fmt else ""))


def _interrupted(e: BaseException) -> bool:
    """DuckDB turns Ctrl-C inside a query into its own error ("Query interrupted")."""
    import duckdb
    return isinstance(e, (duckdb.InterruptException, RuntimeError)) and "interrupted" in str(e).lower()


def _cause(e: BaseException) -> str:
    """One line for a failure inside an operator or a library: the message's first line
    (DuckDB appends the SQL and a caret; libraries append tracebacks of their own)."""
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    text = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _model_usage(runtime_factory, step) -> dict | None:
    """The runtime's requests, computed (not cached) calls, tokens and model seconds so far,
    over all models (steps run one at a time, so a step's share is the difference); None
    for a step without models or a runtime that does not count."""
    if not step.models or runtime_factory is None:
        return None
    usage = getattr(runtime_factory(), "usage", None)
    return usage() if usage else None


def _main_inputs(step) -> int:
    """How many of a step's inputs count as rows in (dedupe's `against` is a reference only)."""
    spec = registry.get(step.op, internal=True)
    if spec is None:
        return 0
    return len(step.inputs) - len(spec.extra_inputs(step.args))



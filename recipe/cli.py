"""The `recipe` command line. Every user mistake ends in a rendered diagnostic or a one-line
error and a non-zero exit, never a traceback."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import cache_cli
from .diagnostics import RecipeError, UserError, render_all
from .io.sinks import sink_shape
from .ui import n_rows


def _kv(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise UserError(f"{flag} {it}: write {flag} NAME=VALUE")
        k, v = it.split("=", 1)
        out[k.strip()] = v
    return out


def _at_least(lo, kind=int, above: bool = False):
    """An argparse type: a number of `kind` that is at least `lo` (above it with `above`), as
    the recipe's own parameter of that name is checked."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}")
        if v < lo or above and v == lo:
            raise argparse.ArgumentTypeError(f"{text} must be {'above' if above else 'at least'} {lo}")
        return v
    return parse


def _load(target: str):
    from .api import load
    return load(target)


def cmd_check(a) -> int:
    status = 0
    all_json = []
    for f in a.files:
        try:
            r = _load(f)
            c = r.diagnose(_kv(a.set, "--set"), _kv(a.source, "--source"))
            diags = c.diagnostics
        except RecipeError as e:
            diags, r = e.diagnostics, None
        sources = {r.file: r.text} if r else None
        if a.format == "json":
            all_json += [{"file": f, **d.to_json()} for d in diags]
        elif diags:
            print(render_all(diags, sources), file=sys.stderr)
        if any(d.is_error for d in diags):
            status = 1
        elif a.format != "json":
            print(f"{f}: ok" + (f" ({len(diags)} warning(s))" if diags else ""))
    if a.format == "json":
        print(json.dumps(all_json, indent=2))
    return status


def cmd_fmt(a) -> int:
    from .frontend import parse_any
    from .frontend.printer import to_text, to_yaml
    status = 0
    for f in a.files:
        from .link import read_text, resolve_path
        path = resolve_path(f)
        text = read_text(path)
        r = parse_any(text, str(path))
        if a.to:
            sys.stdout.write(to_yaml(r) if a.to == "yaml" else to_text(r))
            continue
        new = to_yaml(r) if path.suffix in (".yaml", ".yml") else to_text(r)
        if new != text:
            if a.check:
                print(f"{f}: would reformat", file=sys.stderr)
                status = 1
            else:
                path.write_text(new, encoding="utf-8")
                print(f"{f}: formatted")
    return status


def cmd_compile(a) -> int:
    r = _load(a.file)
    if a.emit == "ir":
        sys.stdout.write(r.recipe.dumps())
        return 0
    plan = r.plan(_kv(a.set, "--set"), _kv(a.source, "--source"))
    sys.stdout.write(plan_text(plan, None))
    return 0


def _shown_path(p: str) -> str:
    import os
    rel = os.path.relpath(p)
    return p if rel.startswith("..") else rel


def plan_text(plan, store, fingerprints: bool = True, weights_dir=None) -> str:
    from .ui import expectation_text
    lines = []
    costs = None
    if store is not None:
        from .estimate import estimate, fmt
        costs = estimate(plan, store, weights_dir)
    # columns as wide as the longest step name and op (a long one shifted its row's arrows)
    nw = max([24] + [len(s.name) for s in plan.steps])
    ow = max([10] + [len(s.op) for s in plan.steps])
    for s in plan.steps:
        status = ""
        if store is not None:
            from .plan import status as step_status
            status = f"  [{step_status(store, s, weights_dir)}]"
        ins = ", ".join(s.inputs) or _shown_path(s.args.get("path", ""))
        models = f"  models: {', '.join(s.models)}" if s.models else ""
        lines.append(f"{s.name:<{nw}} {s.op:<{ow}} <- {ins}{models}{status}")
        if fingerprints:
            lines.append(f"{'':<{nw}} fingerprint {s.fingerprint[:16]}")
        if costs is not None and not costs[s.name].cached:
            lines.append(f"{'':<{nw}} estimate {fmt(costs[s.name])} ({costs[s.name].basis})")
    for s in plan.sinks:
        o = s.get("options") or {}
        shards = (f", {o['shards']} files" if o.get("shards") else f", files of {o['shard_rows']:,} rows"
                  if o.get("shard_rows") else "")
        lines.append(f"write {s['name']} -> {s['path']} ({sink_shape(s['path'], s['format'])}{shards})")
    for e in plan.expects:
        lines.append(f"{expectation_text({**e, 'expect': e['text']})} (checked on {e['step']}'s rows as soon as "
                     f"that step is finished)")
    if plan.models:
        lines.append("models (each loaded once, shared by every step that names it, released after its last step):")
        for name, m in plan.models.items():
            users = [s.name for s in plan.steps if name in s.models]
            ft = m.get("finetune")
            src = f"{ft['base']} fine-tuned on {ft['on']}" if ft else m["source"]
            lines.append(f"  {name}: {m['kind']} {src} -> {', '.join(users) or 'unused'}")
    return "\n".join(lines) + "\n"


def cmd_plan(a) -> int:
    r = _load(a.file)
    params, sources = _kv(a.set, "--set"), _kv(a.source, "--source")
    plan = r.plan(params, sources, probe=True, model_cache=getattr(a, "model_cache", None), head=a.head)
    if a.format != "text" and not a.against:
        raise UserError("--format json|markdown is for `--against OLD` (what a change does)")
    store = _plan_cache(Path(a.cache_dir))
    try:
        if a.against:
            sys.stdout.write(_plan_against(a, r, plan, params, sources, store))
        else:
            sys.stdout.write(plan_text(plan, store, weights_dir=cache_cli.weights_dir(a)))
    finally:
        if store:
            store.close()
    return 0


def _plan_cache(cache_dir: Path):
    """The step caches of both engines in `cache_dir`, read without starting Ray (None: none)."""
    stores = []
    if (cache_dir / "cache.duckdb").exists():
        from .engine.store import Store
        stores.append(Store(cache_dir))
    if (cache_dir / "ray" / "steps").is_dir():
        from .engine.ray_store import EitherCache, RayStore
        return EitherCache(stores + [RayStore.reader(cache_dir)])
    return stores[0] if stores else None


def _plan_against(a, r, plan, params, sources, store) -> str:
    from . import review
    from .api import Loaded
    from .frontend import parse_any
    text, label = review.old_text(a.against, r.file)
    old = None
    if text is not None:
        try:  # parsed as if it were the file itself, so relative paths resolve alike
            old = Loaded(parse_any(text, r.file), text, r.file).plan(params, sources)
        except RecipeError as e:
            raise UserError(f"--against {label}: the old recipe does not check ({e.diagnostics[0].message})")
    changes = review.compare(old, plan, store, cache_cli.weights_dir(a))
    if store is not None:
        from .estimate import estimate, fmt
        costs = estimate(plan, store, cache_cli.weights_dir(a))
        for c in changes:
            if c.name in costs and not costs[c.name].cached:
                c.estimate = fmt(costs[c.name])
    sinks = review.sink_changes(old, plan)
    if a.format == "json":
        return review.as_json(changes, label, sinks)
    if a.format == "markdown":
        return review.as_markdown(changes, label, mermaid(r.check(params, sources)), sinks)
    return review.as_text(changes, label, sinks)


def cmd_run(a) -> int:
    r = _load(a.file)
    res = r.run(_kv(a.set, "--set"), _kv(a.source, "--source"), a.out, a.cache_dir, quiet=a.quiet,
                model_cache=a.model_cache, engine=a.engine, address=a.address, replicas=a.replicas, head=a.head,
                fail_fast=a.fail_fast)
    main = res.manifest["sinks"][0] if res.manifest["sinks"] else None
    if main:
        from .manifest import sink_shown
        print(f"done: {n_rows(main['rows'])} in {sink_shown(main)}; manifest.json and set_aside.jsonl in {a.out}")
        print(f"why a row left: recipe explain --out {a.out} --row ID (ids are in set_aside.jsonl)")
    if a.report:
        from .report import write_report
        print(f"report: {write_report(Path(a.out), Path(a.cache_dir), model_cache=a.model_cache)}")
    if a.card:
        from .card import write_card
        print(f"dataset card: {write_card(Path(a.out), cache_dir=Path(a.cache_dir))}")
    return _expectations_met(res.manifest, trial=a.head is not None)


def _expectations_met(manifest: dict, trial: bool = False) -> int:
    """0, or 3 when an `expect` of the recipe is not met (the outputs are written): said on
    stderr with each one's place, so a CI job fails on data that breaks its expectations. A
    `--head` trial reads part of each source: its unmet expectations are said, not enforced."""
    from .ui import expectation_text, expectation_values
    failed = [e for e in manifest.get("expectations", []) if not e["ok"]]
    if failed and trial:
        print(f"note: {len(failed)} of {len(manifest['expectations'])} expectation(s) not met on this --head trial "
              f"(not enforced: it reads part of each source)", file=sys.stderr)
        return 0
    for e in failed:
        print(f"{e['file']}:{e['line']}: expectation not met: {expectation_text(e)} ({expectation_values(e)})",
              file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} of {len(manifest['expectations'])} expectation(s) not met; the outputs are "
              f"written (exit code 3)", file=sys.stderr)
    return 3 if failed else 0


def cmd_card(a) -> int:
    from .card import write_card
    print(f"dataset card: {write_card(Path(a.out), Path(a.to) if a.to else None, Path(a.cache_dir))}")
    return 0


def cmd_eval(a) -> int:
    from .evaluate import evaluate, table
    from .ui import Reporter
    r = _load(a.file)
    report = evaluate(r, _kv(a.set, "--set"), _kv(a.source, "--source"), a.eval, Path(a.out), seeds=a.seeds,
                      base=a.base, pool=a.pool, judge=a.judge, cache_dir=a.cache_dir, model_cache=a.model_cache,
                      settings={"epochs": a.epochs, "lr": a.lr, "lora": not a.full, "max_tokens": a.max_tokens},
                      log=(lambda *_: None) if a.quiet else (lambda m: print(m, file=sys.stderr)), quiet=a.quiet,
                      reporter=Reporter(quiet=a.quiet))
    print(table(report))
    print(f"\neval.json in {a.out}")
    return 0


def cmd_report(a) -> int:
    from .report import write_report
    path = write_report(Path(a.out), Path(a.cache_dir), Path(a.to) if a.to else None, a.model_cache)
    print(f"report: {path} (one self-contained HTML file)")
    return 0


def mermaid(checked) -> str:
    """The recipe as a Mermaid flowchart (for a pull-request comment)."""
    from .check import deps

    def nid(name: str) -> str:
        return "n_" + "".join(ch if ch.isalnum() else "_" for ch in name)
    r = checked.recipe
    lines = ["flowchart LR"]
    for s in r.sources:
        lines.append(f'  {nid(s.name)}[("{s.name}")]')
    for n in r.nodes:
        ops = " | ".join(o.op for o in n.ops) or "="
        lines.append(f'  {nid(n.name)}["{n.name}<br/>{ops}"]')
        direct = {i.name for i in n.inputs}
        for d in dict.fromkeys(deps(checked, n)):
            arrow = "-->" if d in direct else "-. reference .->"
            lines.append(f"  {nid(d)} {arrow} {nid(n.name)}")
    for i, s in enumerate(r.sinks):
        path = s.path.value if hasattr(s.path, "value") else str(s.path)
        lines.append(f'  sink{i}[/"{path}"/]')
        lines.append(f"  {nid(s.input.name)} --> sink{i}")
    from .syntax import to_text
    for i, e in enumerate(r.expects):  # what a reviewer is promised of a node's rows
        text = (f"expect{' by ' + e.by_text if e.by else ''}: {to_text(e.expr)}"
                .replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;"))
        lines.append(f'  expect{i}{{{{"{text}"}}}}')
        lines.append(f"  {nid(e.node.name)} -.- expect{i}")
    return "\n".join(lines) + "\n"


def cmd_graph(a) -> int:
    r = _load(a.file)
    c = r.check(_kv(a.set, "--set"), sniff=False)
    sys.stdout.write(mermaid(c))
    return 0


def cmd_diff(a) -> int:
    from .diff import diff
    lines = diff(_load(a.a).linked, _load(a.b).linked)
    print("\n".join(lines) if lines else "no change in meaning")
    return 1 if lines and a.exit_code else 0


def cmd_compare(a) -> int:
    from .compare import as_text, compare
    changes, steps, notes = compare(Path(a.old), Path(a.new), a.show)
    if a.format == "json":
        print(json.dumps({"sinks": [c.as_json(a.show) for c in changes], "steps": steps, "notes": notes},
                         indent=2, ensure_ascii=False))
    else:
        print(as_text(changes, steps, notes, a.show, markdown=a.format == "markdown"), end="")
    differ = any(c.removed_keys or c.added_keys or c.changed_keys for c in changes) or bool(notes)
    return 1 if differ and a.exit_code else 0


def cmd_schema(a) -> int:
    from .schema import build_schema
    print(json.dumps(build_schema(plugins_too=True), indent=2, ensure_ascii=False))
    return 0


def cmd_ops(a) -> int:
    from . import ops
    from .syntax import FUNCTIONS
    from .types import SIGNATURES
    from .link import STDLIB, stdlib_names
    from .check_expect import AGGREGATE_DOCS
    stdlib = stdlib_names()
    wanted = set(a.names or ())
    unknown = sorted(wanted - set(ops.names()) - set(FUNCTIONS) - set(stdlib) - set(AGGREGATE_DOCS))
    if unknown:
        import difflib
        near = difflib.get_close_matches(unknown[0], [*ops.names(), *FUNCTIONS, *stdlib], n=1)
        raise UserError(f"no operator, function or library recipe is named `{unknown[0]}`"
                        + (f"; did you mean `{near[0]}`?" if near else "; `recipe ops` lists them all"))
    show = (lambda n: n in wanted) if wanted else (lambda n: True)
    for name in filter(show, ops.names()):
        spec = ops.get(name)
        origin = ops.plugin_of(name)
        print(f"{name} (v{spec.version}{', plugin: ' + origin if origin else ''}): {spec.doc}")
        for p in spec.params:
            extra = []
            if p.choices:
                extra.append("one of " + "|".join(map(str, p.choices)))
            if p.default is not None:
                extra.append(f"default {p.default!r}")
            if p.required:
                extra.append("required")
            print(f"    {p.name}: {p.type}" + (f" ({', '.join(extra)})" if extra else "") + (f"  {p.doc}" if p.doc else ""))
        if spec.variadic:
            print(f"    NAME=...: {spec.variadic}")
    if names := [n for n in stdlib if show(n)]:
        print("\nlibrary recipes (`recipe run stdlib:NAME --source raw=FILE`; each file's header says more):")
    for name in names:
        head = (STDLIB / f"{name}.recipe").read_text(encoding="utf-8").split("\n", 1)[0].lstrip("# ")
        print(f"    {name:<15} {head}")
    if names := [n for n in FUNCTIONS if show(n)]:
        print("\nrow-expression functions (in filter, derive, score(metric=\"expr\")):")
    for name in names:
        f = FUNCTIONS[name]
        takes, gives = SIGNATURES[name]
        gives = "the arguments' type" if gives == "T" else gives
        print(f"    {name}({', '.join('any' if t == 'T' else t for t in takes)}) -> {gives}  {f.doc}")
    if names := [n for n in AGGREGATE_DOCS if show(n)]:
        print("\naggregates (in `expect NODE: CONDITION`, over the node's rows once it is finished; "
              "a run whose expectation is not met exits with code 3):")
    for name in names:
        print(f"    {AGGREGATE_DOCS[name]}")
    return 0


def cmd_explain(a) -> int:
    from .explain import NotCached, explain
    from .manifest import read_manifest
    man = read_manifest(a.out)
    if (Path(a.cache_dir) / "cache.duckdb").exists() or (Path(a.cache_dir) / "ray" / "steps").is_dir():
        try:
            print("\n".join(f"{a.row}: " + line if i == 0 else "  " + line
                            for i, line in enumerate(explain(Path(a.out), a.row, Path(a.cache_dir)))))
            return 0
        except NotCached:
            print(f"(the step cache {a.cache_dir} does not hold this run: give the run's --cache-dir for "
                  f"the values at each step)", file=sys.stderr)
    out = Path(a.out)  # without the step cache: what set_aside.jsonl and the sinks say
    lines = []
    aside = out / "set_aside.jsonl"
    if aside.exists():
        with open(aside, encoding="utf-8") as fh:
            for line in fh:
                if a.row in line and (rec := json.loads(line)).get("_id") == a.row:
                    lines.append(f"set aside at `{rec['node']}`: {rec['reason']}")
    from .manifest import sink_files
    for s in man.get("sinks", []):  # each sink that holds it: a row set aside on one branch may be kept on another
        for f in sink_files(s):
            if sink_holds(Path(f), a.row):
                lines.append(f"kept: written to {f} (node `{s['name']}`)")
    if not lines:
        print(f"{a.row}: not found in {out} (not in any sink or in set_aside.jsonl)", file=sys.stderr)
        return 1
    print("\n".join(f"{a.row}: {line}" if i == 0 else f"  {line}" for i, line in enumerate(lines)))
    return 0


def cmd_inspect(a) -> int:
    from .inspect import inspect, render
    columns = [c.strip() for c in a.columns.split(",")] if a.columns else None
    if a.near is not None and a.near > 1:
        raise UserError(f"--near {a.near}: a Jaccard threshold is at most 1 (e.g. 0.8)")
    facts = inspect(a.path, a.data_format, a.id, a.cache_dir, a.head, columns, a.near, a.languages, a.pii, a.repairs)
    print(json.dumps(facts, indent=2, ensure_ascii=False) if a.format == "json" else render(facts))
    return 0


def cmd_new(a) -> int:
    from .starter import write_starter
    columns = [c.strip() for c in a.columns.split(",")] if a.columns else None
    text = write_starter(a.file, a.source, a.head, a.force, a.data_format, a.id, columns)
    sys.stdout.write(text)
    print(f"wrote {a.file}: `recipe plan {a.file}` shows what it will do", file=sys.stderr)
    return 0


def sink_holds(path: Path, row: str) -> bool:
    """Whether a sink file holds the row `row` (by `_id`; a format without ids, as Alpaca's, never does)."""
    import io

    from .io.readers import open_bytes
    from .io.sinks import sink_kind
    if not path.exists():
        return False
    kind, _ = sink_kind(path)
    if kind == ".parquet":
        import pyarrow.parquet as pq
        if "_id" not in pq.read_schema(path).names:
            return False
        return row in pq.read_table(path, columns=["_id"]).column(0).to_pylist()
    with io.TextIOWrapper(open_bytes(path), encoding="utf-8", newline="" if kind in (".csv", ".tsv") else None) as fh:
        if kind in (".csv", ".tsv"):
            import csv
            return any(r.get("_id") == row for r in csv.DictReader(fh, delimiter="\t" if kind == ".tsv" else ","))
        if kind == ".json":  # an array: one record a line, as the writer puts them
            return any(row in line and json.loads(line.strip().rstrip(",")).get("_id") == row
                       for line in fh if line.strip() not in ("[", "]", ""))
        return any(row in line and json.loads(line).get("_id") == row for line in fh)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="recipe", description="Declarative data recipes for instruction-tuning data.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def common(p, sources=True):
        p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param")
        if sources:
            p.add_argument("--source", action="append", metavar="NAME=PATH", help="read a source from PATH")

    p = sub.add_parser("check", help="check recipes without running anything")
    p.add_argument("files", nargs="+")
    p.add_argument("--format", choices=("text", "json"), default="text")
    common(p)
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("fmt", help="format recipes canonically (or convert with --to)")
    p.add_argument("files", nargs="+")
    p.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    p.add_argument("--to", choices=("yaml", "text"), help="print the other form")
    p.set_defaults(fn=cmd_fmt)
    p = sub.add_parser("compile", help="print a compiler stage: the IR or the plan")
    p.add_argument("file")
    p.add_argument("--emit", choices=("ir", "plan"), default="ir")
    common(p)
    p.set_defaults(fn=cmd_compile)
    p = sub.add_parser("plan", help="show the steps, their cache status and the models")
    p.add_argument("file")
    p.add_argument("--cache-dir", default=".recipe")
    p.add_argument("--against", metavar="OLD", help="what changes against OLD: a recipe file, or git:REF "
                   "(this file at a git revision, e.g. git:main)")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                   help="with --against: markdown is ready for a pull-request comment")
    p.add_argument("--head", type=_at_least(1), metavar="N",
                   help="every source reads only its first N records: a trial run (a source's own head= wins)")
    common(p)
    p.set_defaults(fn=cmd_plan)
    p = sub.add_parser("run", help="run a recipe")
    p.add_argument("file")
    p.add_argument("--out", default="out")
    p.add_argument("--cache-dir", default=".recipe")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--model-cache", metavar="DIR",
                   help="converted weights and model results (default: $RECIPE_CACHE_HOME, else $XDG_CACHE_HOME/recipe)")
    p.add_argument("--report", action="store_true", help="also write OUT/report.html (see `recipe report`)")
    p.add_argument("--card", action="store_true", help="also write OUT/README.md, a dataset card (see `recipe card`)")
    p.add_argument("--engine", choices=("duckdb", "ray"), default="duckdb",
                   help="duckdb: this machine (default); ray: Ray Data, a local instance or --address")
    p.add_argument("--address", metavar="ADDR", help="with --engine ray: a running cluster (auto, or ray://HOST:10001)")
    p.add_argument("--replicas", type=_at_least(1), default=1, metavar="N",
                   help="with --engine ray: actors per model unless the model says replicas= (default 1)")
    p.add_argument("--head", type=_at_least(1), metavar="N",
                   help="every source reads only its first N records: a trial run (a source's own head= wins)")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first unmet `expect`, as soon as its node is finished: later steps and the "
                        "outputs do not run (exit code 3; not on a --head trial)")
    common(p)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("eval", help="fine-tune on the recipe's output and on random rows; compare on an eval set")
    p.add_argument("file")
    p.add_argument("--eval", required=True, metavar="FILE", help="instruction/answer pairs to evaluate on (any supported format)")
    p.add_argument("--out", default="out/eval")
    p.add_argument("--seeds", type=_at_least(0), default=3, help="random subsets of the selection's size (default 3)")
    p.add_argument("--base", default="builtin:smollm2", help="the model every run fine-tunes (default builtin:smollm2)")
    p.add_argument("--pool", action="store_true", help="also fine-tune on the whole pool")
    p.add_argument("--judge", metavar="MODEL", help="a causal LM that judges answers against the base's (win rate)")
    p.add_argument("--epochs", type=_at_least(0.01, float), default=1.0)
    p.add_argument("--lr", type=_at_least(0.0, float, above=True), default=2e-4)
    p.add_argument("--max-tokens", type=_at_least(8), default=256, help="tokens per packed training sequence")
    p.add_argument("--full", action="store_true", help="train every weight (default: LoRA adapters)")
    p.add_argument("--cache-dir", default=".recipe")
    p.add_argument("--model-cache", metavar="DIR")
    p.add_argument("-q", "--quiet", action="store_true")
    common(p)
    p.set_defaults(fn=cmd_eval)
    p = sub.add_parser("inspect", help="what a data file holds: format, columns, lengths, duplicates, bad rows")
    p.add_argument("path", help="a file, a folder or a glob, as a source reads it")
    from .io.formats import FORMATS
    p.add_argument("--data-format", choices=FORMATS, metavar="FORMAT",
                   help=f"read it as this format (default: detected): {', '.join(FORMATS)}")
    p.add_argument("--id", metavar="COLUMN", help="the column that holds each row's id (as read(..., id=))")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--cache-dir", help="keep the read in this step cache (default: a temporary one)")
    p.add_argument("--head", type=_at_least(1), metavar="N", help="only the first N records (a quick look at a large file)")
    p.add_argument("--columns", metavar="A,B,...", help="a CSV/TSV file without a header row: its fields' names")
    p.add_argument("--near", type=_at_least(0.0, float, above=True), metavar="T",
                   help="also count the instructions MinHash dedupe sets aside at Jaccard threshold T (e.g. 0.8)")
    p.add_argument("--languages", action="store_true", help="also the languages builtin:lid176 finds (as `language()`)")
    p.add_argument("--pii", action="store_true", help="also the personal data and keys `redact` finds, every kind")
    p.add_argument("--repairs", action="store_true", help="also the rows `normalize()` would repair")
    p.set_defaults(fn=cmd_inspect)
    p = sub.add_parser("new", help="a starter recipe for a data file, from what inspect finds in it")
    p.add_argument("file", help="the recipe file to write (NAME.recipe)")
    p.add_argument("--source", required=True, metavar="PATH", help="the data: a file, a folder or a glob")
    p.add_argument("--head", type=_at_least(1), default=2000, metavar="N",
                   help="inspect the first N records (default 2000)")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    p.add_argument("--data-format", choices=FORMATS, metavar="FORMAT",
                   help="read it as this format (default: detected), as read(..., format=)")
    p.add_argument("--id", metavar="COLUMN", help="the column that holds each row's id (as read(..., id=))")
    p.add_argument("--columns", metavar="A,B,...", help="a CSV/TSV file without a header row: its fields' names")
    p.set_defaults(fn=cmd_new)
    p = sub.add_parser("card", help="a dataset card (README.md for the Hugging Face Hub) of a finished run")
    p.add_argument("--out", default="out", help="the run's --out (default: out)")
    p.add_argument("--to", metavar="FILE", help="where to write it (default: OUT/README.md)")
    p.add_argument("--cache-dir", default=".recipe", help="the run's step cache: the written rows' languages (default: .recipe)")
    p.set_defaults(fn=cmd_card)
    p = sub.add_parser("report", help="an HTML report of a finished run (self-contained, no network)")
    p.add_argument("--out", default="out", help="the run's --out (default: out)")
    p.add_argument("--cache-dir", default=".recipe", help="the run's --cache-dir (default: .recipe)")
    p.add_argument("--model-cache", metavar="DIR", help="the run's --model-cache, for the embedding map")
    p.add_argument("--to", metavar="FILE", help="where to write it (default: OUT/report.html)")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("graph", help="print the recipe as a Mermaid flowchart")
    p.add_argument("file")
    p.add_argument("--set", action="append", metavar="NAME=VALUE")
    p.set_defaults(fn=cmd_graph)
    p = sub.add_parser("diff", help="what changed between two recipes, by meaning")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when they differ")
    p.set_defaults(fn=cmd_diff)
    p = sub.add_parser("compare", help="what a change did to the rows: two runs' outputs, row by row, "
                                       "with the step that set each removed row aside")
    p.add_argument("old", help="the --out folder of the run before the change")
    p.add_argument("new", help="the --out folder of the run after it")
    p.add_argument("--show", type=_at_least(0), default=5, metavar="N", help="rows shown of each kind (default 5)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="markdown: for a pull-request comment")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the outputs differ")
    p.set_defaults(fn=cmd_compare)
    p = sub.add_parser("ops", help="list operators and their parameters")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="only these operators, row-expression functions or library recipes")
    p.set_defaults(fn=cmd_ops)
    p = sub.add_parser("schema", help="print the JSON Schema of the YAML form (for editors)")
    p.set_defaults(fn=cmd_schema)
    p = sub.add_parser("explain", help="say where a row went and why")
    p.add_argument("--out", default="out", help="the run's --out (default: out)")
    p.add_argument("--cache-dir", default=".recipe", help="the run's --cache-dir (default: .recipe)")
    p.add_argument("--row", required=True)
    p.set_defaults(fn=cmd_explain)
    p = sub.add_parser("cache", help="list the step cache's steps; --prune removes those no latest run uses "
                                     "(--models: the model cache's weights instead)")
    p.add_argument("--cache-dir", default=".recipe", help="the cache directory (default: .recipe)")
    p.add_argument("--prune", action="store_true",
                   help="remove every step that is not some step name's latest run nor read by one; with "
                        "--models, the weights no run has loaded for --older-than days")
    p.add_argument("--models", action="store_true",
                   help="the model cache (shared by every project): converted and fine-tuned weights, model results")
    p.add_argument("--model-cache", metavar="DIR", help="the model cache (default: $RECIPE_CACHE_HOME/models, "
                                                        "else $XDG_CACHE_HOME/recipe/models)")
    p.add_argument("--older-than", type=float, default=30.0, metavar="DAYS",
                   help="with --models --prune: weights unused this many days are removed (default 30; 0: all)")
    p.set_defaults(fn=cache_cli.cmd_cache)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return a.fn(a)
    except RecipeError as e:
        print(render_all(e.diagnostics), file=sys.stderr)
        return 1
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    except BrokenPipeError:  # `recipe ops | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; finished steps are cached and the next run resumes from them", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

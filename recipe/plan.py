"""Plan: the checked recipe as steps in topological order, each with a fingerprint.

A step's fingerprint is the hash of its op name, op version, canonical arguments (params
substituted), parent fingerprints and model identities (Dagster-style), so an unchanged
step is reused from the cache and a changed one can say why it re-runs.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import ops as registry
from .check import Checked, deps
from .checked import model_option, model_source
from .codehash import ENGINE, RUNTIME, code_hash, plugin_hash
from .digests import file_digests
from .ir import Lit, ListV, ParamRef, walk

READ_VERSION = 1


@dataclass(frozen=True)
class Step:
    name: str                 # shown to people: `raw`, `pool`, `pool/score`
    node: str                 # the recipe node (or source) it belongs to
    op: str                   # `read` for sources
    version: int
    args: dict                # resolved arguments (expressions stay IR)
    inputs: tuple[str, ...]   # step names whose tables it reads (main inputs first)
    models: tuple[str, ...]   # model names used
    parts: dict = field(default_factory=dict, compare=False)  # what went into the fingerprint
    fingerprint: str = ""
    after: tuple[str, ...] = ()  # steps that must run first without being inputs (training)


@dataclass
class Plan:
    steps: list[Step]
    node_step: dict[str, str]         # node/source name -> the step producing its rows
    sinks: list[dict]                 # {name, input step, path, format, options}
    models: dict[str, dict]           # model name -> {kind, source, options, identity}
    params: dict
    # source name -> its files: {file, bytes, sha256} (the manifest's `inputs`, the card's sources)
    source_files: dict[str, list[dict]] = field(default_factory=dict)
    # `expect` statements: {node, step (its last), expr, text, span, counted (nodes `rows(X)` counts:
    # their last steps), by (columns or None)}, evaluated after the run (engine/expect.py)
    expects: list[dict] = field(default_factory=list)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def _h(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def canon_arg(v, params: dict):
    """JSON-able canonical form of a resolved argument; expressions with param values bound."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, list):
        return [canon_arg(x, params) for x in v]
    used = sorted({x.name for x in walk(v) if isinstance(x, ParamRef)})
    return {"expr": v.to_json(), "params": {k: params.get(k) for k in used}}


def _option(v, params: dict):
    """A source option's value: a literal, a param's value, or a list of those."""
    if isinstance(v, ListV):
        return [_option(i, params) for i in v.items]
    return v.value if isinstance(v, Lit) else params.get(getattr(v, "name", ""))


def file_fingerprint(paths: list[Path], digests: list[str] | None = None) -> str:
    """The key of files' contents: SHA-256 over each file's name and SHA-256 (`digests`,
    when the caller has them). Until session 41 it hashed 64 MB segments in parallel, and
    the manifest called that key the source's SHA-256, which no `sha256sum` printed."""
    h = hashlib.sha256()
    for p, d in zip(paths, digests if digests is not None else file_digests(paths)):
        h.update(str(p.name).encode())
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def build_plan(c: Checked, source_paths: dict[str, str], model_identity, keep: tuple[str, ...] = (),
               head: int | None = None) -> Plan:
    """`source_paths`: resolved path per source; `model_identity(kind, source, options)` -> str;
    `keep`: nodes to run although no sink needs them (`recipe inspect` runs a read alone);
    `head`: each source reads its first `head` records (unless it says its own `head`)."""
    from .io.readers import list_files
    from .templates import template_files
    r = c.recipe
    models = {}
    tuned: dict[str, tuple[str, dict]] = {}  # fine-tuned model -> (base model, settings with `on`)
    for m in r.models:
        src = model_source(m, c)
        opts = {a.name: canon_arg(model_option(a, c), c.params) for a in m.options}
        if m.kind == "finetune":  # its identity is its training step's fingerprint, made below
            tuned[m.name] = (src, opts)
            continue
        models[m.name] = {"kind": m.kind, "source": src, "options": opts,
                          "identity": model_identity(m.kind, src, opts)}
    # nodes needed by the sinks, in dependency order
    graph = {n.name: deps(c, n) for n in r.nodes}
    order: list[str] = []
    seen = set()

    def visit(n):
        if n in seen:
            return
        seen.add(n)
        for d in graph.get(n, []):
            visit(d)
        order.append(n)

    for s in r.sinks:
        visit(s.input.name)
    for e in r.expects:  # a node only an expectation reads runs too (and those it counts: `rows(raw)`)
        for name in (e.node.name, *expect_nodes(e.expr)):
            visit(name)
    for n in keep:
        visit(n)
    steps: list[Step] = []
    source_files: dict[str, list[dict]] = {}
    node_step: dict[str, str] = {}
    fps: dict[str, str] = {}
    by_node = {n.name: n for n in r.nodes}
    sources = {s.name: s for s in r.sources}
    trained: dict[str, str] = {}  # fine-tuned model -> its training step

    def train(mname: str) -> str:
        """The training step of a fine-tuned model (made once, before its first use)."""
        if mname in trained:
            return trained[mname]
        from .ops.finetune import OP as spec
        base, opts = tuned[mname]
        settings = {p.name: opts.get(p.name, p.default) for p in spec.params if p.name != "base"}
        on = node_step[opts["on"]]
        from .runtime.train import library_versions
        parts = {"op": "finetune", "version": spec.version,
                 "code": code_hash("recipe.ops.finetune") + code_hash("recipe.runtime.train"),
                 "args": {"base": base, **settings}, "parents": [fps[on]],
                 "models": [models[base]["identity"]], "libraries": library_versions()}
        fp = _h(parts)
        sname = f"{mname}/finetune"
        steps.append(Step(sname, mname, "finetune", spec.version, {"base": base, **settings}, (on,), (base,), parts, fp))
        fps[sname] = fp
        models[mname] = {"kind": "causal_lm", "source": f"finetuned:{fp}", "options": {},
                         "identity": f"causal_lm:finetuned:{fp}", "finetune": {"base": base, "on": opts["on"], **settings}}
        trained[mname] = sname
        return sname

    for name in order:
        if name in sources:
            s = sources[name]
            path = source_paths[name]
            files = list_files(path)
            opts = {a.name: canon_arg(_option(a.value, c.params), c.params) for a in s.options}
            if head is not None:
                opts.setdefault("head", head)
            # the source name is in the rows (`_id` = `<source>:<index>`), so it is in the key;
            # the path as spelled is not (the file names and contents are, in `data`), so a
            # recipe run from another folder, or with the same file given another way, hits
            digests = file_digests(files)
            source_files[name] = [{"file": str(f), "bytes": f.stat().st_size, "sha256": d} for f, d in zip(files, digests)]
            parts = {"op": "read", "version": READ_VERSION, "code": code_hash(*ENGINE), "source": name,
                     "args": opts,
                     "data": file_fingerprint(files, digests), "parents": [], "models": []}
            fp = _h(parts)
            steps.append(Step(name, name, "read", READ_VERSION, {"path": str(path), **opts}, (), (), parts, fp))
            node_step[name] = name
            fps[name] = fp
            continue
        node = by_node[name]
        prev = [node_step[i.name] for i in node.inputs]
        if not node.ops:
            node_step[name] = prev[0]
            continue
        for i, (op, sname) in enumerate(zip(node.ops, node.step_names())):
            spec = registry.get(op.op)
            args = c.args[(name, i)]
            extra = [node_step[x] for x in spec.extra_inputs(args)]
            inputs = tuple(prev + extra)
            used = tuple(spec.models(args))
            after = tuple(train(m) for m in used if m in tuned)
            # a path is in the key by its files' names and contents (`files`), not as spelled,
            # which depends on the folder the run starts in
            cargs = {k: canon_arg(v, c.params) for k, v in sorted(args.items())
                     if not (spec.param(k) and spec.param(k).path)}
            # the step's code: its operator's, the engines' its kernels run through and, for
            # model-backed steps, the runtime's that computes their model calls
            code = code_hash(type(spec).__module__, *ENGINE, *(RUNTIME if used else ()))
            if not type(spec).__module__.startswith("recipe."):  # a plugin's operator: its own code too
                code += plugin_hash(type(spec).__module__)
            parts = {"op": op.op, "version": spec.version, "code": code, "args": cargs,
                     "parents": [fps[x] for x in inputs],
                     "models": [models[m]["identity"] for m in used]}
            if spec.files(args):  # template files: their contents, so an edited one re-runs the step
                parts["files"] = file_fingerprint([f for p in spec.files(args) for f in template_files(p)])
            fp = _h(parts)
            steps.append(Step(sname, name, op.op, spec.version, args, inputs, used, parts, fp, after))
            fps[sname] = fp
            prev = [sname]
        node_step[name] = prev[0]
    sinks = []
    for i, s in enumerate(r.sinks):
        opts = {a.name: (a.value.value if isinstance(a.value, Lit) else
                         [x.value for x in a.value.items] if isinstance(a.value, ListV) else c.params.get(a.value.name))
                for a in s.options}
        path = s.path.value if isinstance(s.path, Lit) else c.params.get(s.path.name)
        sinks.append({"name": s.input.name, "step": node_step[s.input.name], "path": path,
                      "format": opts.pop("format", None), "options": opts, "span": s.span})
    from .syntax import to_text
    expects = [{"node": e.node.name, "step": node_step[e.node.name], "expr": e.expr, "text": to_text(e.expr),
                "span": e.span, "counted": {n: node_step[n] for n in expect_nodes(e.expr)},
                "by": [b.name for b in e.by] or None} for e in r.expects]
    return Plan(group_by_model(steps), node_step, sinks, models, dict(c.params), source_files, expects)


def expect_nodes(expr) -> list[str]:
    """The nodes an expectation counts besides its own: `rows(raw)`."""
    from .ir import Call, Column, walk
    return [x.args[0].name for x in walk(expr) if isinstance(x, Call) and x.fn == "rows" and len(x.args) == 1
            and isinstance(x.args[0], Column)]


def group_by_model(steps: list[Step]) -> list[Step]:
    """Reorder steps (dependencies permitting) so that steps using the same model run back
    to back: each model is then needed in one stretch and can be released after it, instead
    of being reloaded or held while other models work. Ties keep the original order, so
    the order is deterministic."""
    pos = {s.name: i for i, s in enumerate(steps)}
    deps = {s.name: {d for d in s.inputs + s.after if d in pos} for s in steps}
    done: set[str] = set()
    out: list[Step] = []
    last: tuple = ()
    while len(out) < len(steps):
        ready = [s for s in steps if s.name not in done and deps[s.name] <= done]
        same = [s for s in ready if last and set(s.models) & set(last)]
        modelless = [s for s in ready if not s.models]
        # stay with the current model; else run model-free steps; else start the next model
        pick = (same or modelless or ready)[0]
        out.append(pick)
        done.add(pick.name)
        if pick.models:
            last = pick.models
    return out


def last_use(steps: list[Step]) -> dict[str, str]:
    """model name -> the last step that uses it (after which the runtime may release it)."""
    out: dict[str, str] = {}
    for s in steps:
        for m in s.models:
            out[m] = s.name
    return out


def finished(store, step, weights_dir: Path | None) -> dict | None:
    """The step's record in the step cache, or None when it must run: a training step counts
    as finished only while its weights are in the model cache (`weights_dir`), which lives
    apart from the step cache and can be deleted, or be another --model-cache."""
    done = store.done(step.fingerprint) if store is not None else None
    if done and step.op == "finetune" and weights_dir is not None:
        from .runtime.train import weights_path
        if not (weights_path(weights_dir, step.fingerprint) / "config.json").exists():
            return None
    return done


def status(store, step, weights_dir: Path | None) -> str:
    """`cached`, or why the step will run."""
    if finished(store, step, weights_dir):
        return "cached"
    if store.done(step.fingerprint):
        return "its trained weights are not in the model cache"
    return why_rerun(store.last_parts(step.name), step.parts)


def why_rerun(old: dict | None, new: dict) -> str:
    """Say why a step is not served from the cache (compared with its last run)."""
    if old is None:
        return "new"
    if old.get("op") != new.get("op"):
        return "operator changed"
    if old.get("version") != new.get("version"):
        return f"op version changed ({old.get('version')} -> {new.get('version')})"
    if old.get("code") != new.get("code"):
        return "code changed"
    if old.get("data") != new.get("data"):
        return "input file changed"
    if old.get("files") != new.get("files"):
        return "template file changed"
    if old.get("source") != new.get("source"):
        return "source renamed (row ids change)"
    if old.get("args") != new.get("args"):
        changed = sorted(k for k in set(old.get("args", {})) | set(new.get("args", {}))
                         if old.get("args", {}).get(k) != new.get("args", {}).get(k))
        return "params changed: " + ", ".join(changed)
    if old.get("models") != new.get("models"):
        return "model changed"
    if old.get("parents") != new.get("parents"):
        return "input changed"
    return "not cached"

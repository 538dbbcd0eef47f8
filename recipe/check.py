"""Checks that run before anything executes: an ordered tuple of passes over a linked recipe.

Each pass reads the recipe (and what earlier passes resolved) and appends diagnostics;
every error of every pass is reported together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import ops as registry
from .diagnostics import Diagnostic, Span, did_you_mean
from .expr import FUNCTIONS, expr_columns
from .ir import Arg, Column, ListV, Lit, Node, OpCall, ParamRef, Recipe, walk
from .ops.base import P

PARAM_TYPES = ("int", "float", "str", "bool")
MODEL_KINDS = ("embedding", "causal_lm", "classifier", "reward")
CANONICAL_COLUMNS = ("_id", "messages", "instruction", "response")


@dataclass
class Checked:
    """What the checks resolved, for the planner."""
    recipe: Recipe
    params: dict = field(default_factory=dict)             # param name -> value
    args: dict = field(default_factory=dict)               # (node, op index) -> {name: value}
    columns: dict = field(default_factory=dict)            # node or source -> set | None (open)
    diagnostics: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def coerce_param(ptype: str, raw: str):
    """Parse a `--set name=value` string as the param's declared type."""
    if ptype == "int":
        return int(raw)
    if ptype == "float":
        return float(raw)
    if ptype == "bool":
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(raw)
    return raw


def type_ok(ptype: str, v) -> bool:
    isnum = isinstance(v, (int, float)) and not isinstance(v, bool)
    if ptype == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if ptype == "float":
        return isnum
    if ptype in ("str", "column", "node", "model"):
        return isinstance(v, str)
    if ptype == "bool":
        return isinstance(v, bool)
    if ptype in ("columns", "strs", "nodes"):
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if ptype == "floats":
        return isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    return True


def _value(v, params: dict):
    """IR value -> Python value, substituting params (expressions stay IR)."""
    if isinstance(v, Lit):
        return v.value
    if isinstance(v, ParamRef):
        return params.get(v.name)
    if isinstance(v, ListV):
        return [_value(i, params) for i in v.items]
    return v


# ---- passes -------------------------------------------------------------------------

def check_names(c: Checked) -> None:
    seen: dict[str, Span] = {}
    r = c.recipe
    for kind, items in (("param", r.params), ("model", r.models), ("source", r.sources), ("node", r.nodes)):
        for it in items:
            if it.name in seen:
                c.diagnostics.append(Diagnostic("E0304", f"`{it.name}` is defined twice", it.span,
                                                (f"first defined at line {seen[it.name].line}",)))
            else:
                seen[it.name] = it.span


def check_params(c: Checked, overrides: dict[str, str]) -> None:
    r = c.recipe
    declared = {p.name: p for p in r.params}
    for p in r.params:
        if p.type not in PARAM_TYPES:
            c.diagnostics.append(Diagnostic("E0305", f"unknown param type `{p.type}`", p.span,
                                            did_you_mean(p.type, PARAM_TYPES) or (f"use one of {', '.join(PARAM_TYPES)}",)))
            continue
        if p.default is not None and p.default.value is not None and not type_ok(p.type, p.default.value):
            c.diagnostics.append(Diagnostic("E0204", f"default of `{p.name}` is not a {p.type}",
                                            p.default.span, (f"got {p.default.value!r}",)))
        elif p.default is not None:
            v = p.default.value
            c.params[p.name] = float(v) if p.type == "float" and isinstance(v, int) else v
    for name, raw in overrides.items():
        p = declared.get(name)
        if p is None:
            c.diagnostics.append(Diagnostic("E0701", f"--set {name}: the recipe has no param `{name}`", None,
                                            did_you_mean(name, declared) or (f"params: {', '.join(declared) or 'none'}",)))
            continue
        try:
            c.params[name] = coerce_param(p.type, raw)
        except ValueError:
            c.diagnostics.append(Diagnostic("E0702", f"--set {name}={raw}: expected {p.type}", p.span,
                                            (f"`{name}` is declared as {p.type} here",)))
    for p in r.params:
        if p.name not in c.params and p.type in PARAM_TYPES and not any(d.code == "E0702" and p.name in d.message for d in c.diagnostics):
            c.diagnostics.append(Diagnostic("E0703", f"param `{p.name}` has no default and no --set value",
                                            p.span, (f"run with --set {p.name}=...",)))


def check_models(c: Checked) -> None:
    for m in c.recipe.models:
        if m.kind not in MODEL_KINDS:
            c.diagnostics.append(Diagnostic("E0306", f"unknown model kind `{m.kind}`", m.kind_span,
                                            did_you_mean(m.kind, MODEL_KINDS) or (f"kinds: {', '.join(MODEL_KINDS)}",)))
        if not isinstance(_value(m.source, c.params), str):
            c.diagnostics.append(Diagnostic("E0204", "a model's location must be a string", m.source.span))


def _check_arg(c: Checked, op: OpCall, spec, a: Arg, names: dict) -> object:
    p: P | None = spec.param(a.name)
    ptype = p.type if p else spec.variadic
    if ptype is None:
        known = [q.name for q in spec.params]
        c.diagnostics.append(Diagnostic("E0202", f"`{op.op}` has no parameter `{a.name}`", a.span,
                                        did_you_mean(a.name, known) or (f"parameters: {', '.join(known) or 'none'}",)))
        return None
    for pr in (x for x in walk(a.value) if isinstance(x, ParamRef)):
        if pr.name not in c.params and pr.name not in {q.name for q in c.recipe.params}:
            c.diagnostics.append(Diagnostic("E0303", f"unknown param `{pr.name}`", pr.span,
                                            did_you_mean(pr.name, c.params)))
    if ptype == "expr":
        _check_functions(c, a.value)
        return a.value
    if not isinstance(a.value, (Lit, ListV, ParamRef)):
        c.diagnostics.append(Diagnostic("E0204", f"`{a.name}` takes a value, not an expression", a.value.span))
        return None
    v = _value(a.value, c.params)
    if v is None and isinstance(a.value, ParamRef):
        return None  # already reported (unknown param or missing value)
    if ptype == "float" and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not type_ok(ptype, v) and isinstance(v, str) and ptype in ("int", "float", "bool", "floats") \
            and isinstance(a.value, Lit) and v.isidentifier() and _bare(a.value):
        c.diagnostics.append(Diagnostic("E0303", f"unknown param `{v}`", a.value.span,
                                        did_you_mean(v, c.params) or ("declare it: `param NAME: int = 1`",)))
        return None
    if not type_ok(ptype, v):
        hint = f"expected {ptype}, got {type(v).__name__} {v!r}"
        if isinstance(v, str) and v in c.params:
            hint += f"; write ${{{v}}} in YAML to use the param"
        c.diagnostics.append(Diagnostic("E0204", f"wrong type for `{op.op}({a.name}=...)`", a.value.span, (hint,)))
        return None
    if p is not None and p.choices and v not in p.choices:
        c.diagnostics.append(Diagnostic("E0205", f"`{a.name}` must be one of {', '.join(map(str, p.choices))}",
                                        a.value.span, did_you_mean(str(v), map(str, p.choices))))
        return None
    if p is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
        if (p.min is not None and v < p.min) or (p.max is not None and v > p.max):
            rng = f"[{p.min if p.min is not None else '-inf'}, {p.max if p.max is not None else 'inf'}]"
            c.diagnostics.append(Diagnostic("E0206", f"`{a.name}` = {v} is out of range {rng}", a.value.span))
            return None
    if ptype == "model" and v not in {m.name for m in c.recipe.models}:
        c.diagnostics.append(Diagnostic("E0302", f"unknown model `{v}`", a.value.span,
                                        did_you_mean(v, [m.name for m in c.recipe.models]) or ("declare it: `model NAME = embedding(\"builtin:minilm\")`",)))
        return None
    if ptype in ("node", "nodes"):
        for n in (v if isinstance(v, list) else [v]):
            if names.get(n) not in ("node", "source"):
                c.diagnostics.append(Diagnostic("E0301", f"unknown node `{n}`", a.value.span,
                                                did_you_mean(n, [k for k, t in names.items() if t in ("node", "source")])))
                return None
    return v


def _bare(lit: Lit) -> bool:
    """Written without quotes (a name), judged by the width of its span."""
    s = lit.span
    return s.line == s.end_line and s.end_col - s.col == len(str(lit.value))


def _check_functions(c: Checked, e) -> None:
    from .expr import MAX_NODES
    nodes = walk(e)
    if len(nodes) > MAX_NODES:
        c.diagnostics.append(Diagnostic("E0107", f"expression has more than {MAX_NODES} parts", e.span))
        return
    for x in nodes:
        if type(x).__name__ == "Call":
            f = FUNCTIONS.get(x.fn)
            if f is None:
                c.diagnostics.append(Diagnostic("E0402", f"unknown function `{x.fn}`", x.span,
                                                did_you_mean(x.fn, FUNCTIONS) or (f"functions: {', '.join(sorted(FUNCTIONS))}",)))
            elif not (f.min_args <= len(x.args) <= f.max_args):
                c.diagnostics.append(Diagnostic("E0403", f"`{x.fn}` takes {f.arity_text()} argument(s), got {len(x.args)}", x.span))
        elif isinstance(x, ListV):
            c.diagnostics.append(Diagnostic("E0404", "lists are not allowed in row expressions", x.span))


def check_ops(c: Checked) -> None:
    names = c.recipe.names()
    for node in c.recipe.nodes:
        for inp in node.inputs:
            if names.get(inp.name) not in ("node", "source"):
                c.diagnostics.append(Diagnostic("E0301", f"unknown node `{inp.name}`", inp.span,
                                                did_you_mean(inp.name, [k for k, t in names.items() if t in ("node", "source")])))
        if not node.inputs:
            c.diagnostics.append(Diagnostic("E0112", f"`{node.name}` has no input", node.span))
        for i, op in enumerate(node.ops):
            spec = registry.get(op.op)
            if spec is None:
                c.diagnostics.append(Diagnostic("E0201", f"unknown operator `{op.op}`", op.name_span,
                                                did_you_mean(op.op, registry.names()) or ("run `recipe ops` to list operators",)))
                continue
            if spec.multi_input and i != 0:
                c.diagnostics.append(Diagnostic("E0113", f"`{op.op}` combines nodes and must start a pipeline",
                                                op.name_span, (f"write `{node.name} = {op.op}(a, b)`",)))
            if not spec.multi_input and i == 0 and len(node.inputs) > 1:
                c.diagnostics.append(Diagnostic("E0113", f"`{node.name}` has {len(node.inputs)} inputs; start it with `union` or `mix`",
                                                node.span))
            args = {}
            errors_before = sum(d.is_error for d in c.diagnostics)
            for a in op.args:
                v = _check_arg(c, op, spec, a, names)
                if v is not None:
                    args[a.name] = v
            given = {a.name for a in op.args}
            for p in spec.params:
                if p.required and p.name not in given:
                    c.diagnostics.append(Diagnostic("E0203", f"`{op.op}` needs `{p.name}`", op.span,
                                                    (f"add `{p.name}=...`" + (f" ({p.doc})" if p.doc else ""),)))
                elif p.name not in given and p.default is not None:
                    args[p.name] = p.default
            if sum(d.is_error for d in c.diagnostics) == errors_before:  # cross-checks need valid args
                for pname, msg in spec.check(args) + (spec.check_inputs(args, len(node.inputs)) if i == 0 else []):
                    a = op.arg(pname)
                    c.diagnostics.append(Diagnostic("E0207", msg, a.span if a else op.span))
            c.args[(node.name, i)] = args
    for s in c.recipe.sinks:
        if names.get(s.input.name) not in ("node", "source"):
            c.diagnostics.append(Diagnostic("E0301", f"unknown node `{s.input.name}`", s.input.span,
                                            did_you_mean(s.input.name, [k for k, t in names.items() if t in ("node", "source")])))


def deps(c: Checked, node: Node) -> list[str]:
    out = [i.name for i in node.inputs]
    for i, op in enumerate(node.ops):
        spec = registry.get(op.op)
        if spec is not None:
            out += spec.extra_inputs(c.args.get((node.name, i), {}))
    return out


def check_cycles(c: Checked) -> None:
    graph = {n.name: deps(c, n) for n in c.recipe.nodes}
    spans = {n.name: n.span for n in c.recipe.nodes}
    state: dict[str, int] = {}
    reported = set()

    def visit(n: str, path: list[str]):
        state[n] = 1
        for d in graph.get(n, []):
            if state.get(d) == 1:
                cyc = path[path.index(d):] + [d]
                key = frozenset(cyc)
                if key not in reported:
                    reported.add(key)
                    c.diagnostics.append(Diagnostic("E0501", "cycle: " + " -> ".join(cyc), spans[d],
                                                    ("a node cannot depend on itself",)))
            elif state.get(d) is None and d in graph:
                visit(d, path + [d])
        state[n] = 2

    for n in graph:
        if state.get(n) is None:
            visit(n, [n])


def check_columns(c: Checked) -> None:
    if any(d.code == "E0501" for d in c.diagnostics):
        return
    by_name = {n.name: n for n in c.recipe.nodes}
    cols: dict[str, set | None] = dict(c.columns)

    def cols_of(name: str):
        if name in cols:
            return cols[name]
        node = by_name.get(name)
        if node is None:
            return None
        cols[name] = None  # guard while computing
        ins = [cols_of(i.name) for i in node.inputs]
        cur = None if any(x is None for x in ins) or not ins else set().union(*ins)
        for i, op in enumerate(node.ops):
            spec = registry.get(op.op)
            args = c.args.get((node.name, i))
            if spec is None or args is None:
                cur = None
                continue
            if cur is not None:
                reads = list(spec.reads(args))
                for a in op.args:
                    if isinstance(a.value, (Column,)) or (spec.param(a.name) and spec.param(a.name).type == "expr") \
                            or (spec.variadic == "expr" and spec.param(a.name) is None):
                        reads += [(col.name, col.span) for col in expr_columns(a.value)]
                for r in reads:
                    name_, span = r if isinstance(r, tuple) else (r, _arg_span(op, r))
                    if name_ not in cur:
                        c.diagnostics.append(Diagnostic(
                            "E0401", f"column `{name_}` does not exist at `{op.op}` in `{node.name}`", span,
                            did_you_mean(name_, cur) or (f"available: {', '.join(sorted(cur))}",)))
                cur = (cur - set(spec.removes(args))) | set(spec.adds(args))
        cols[name] = cur
        return cur

    for n in c.recipe.nodes:
        c.columns[n.name] = cols_of(n.name)


def _arg_span(op: OpCall, colname: str) -> Span:
    for a in op.args:
        if isinstance(a.value, Lit) and a.value.value == colname:
            return a.value.span
        if isinstance(a.value, ListV) and any(isinstance(i, Lit) and i.value == colname for i in a.value.items):
            return a.value.span
    return op.span


def check_reachability(c: Checked) -> None:
    graph = {n.name: deps(c, n) for n in c.recipe.nodes}
    needed, stack = set(), [s.input.name for s in c.recipe.sinks]
    while stack:
        n = stack.pop()
        if n in needed:
            continue
        needed.add(n)
        stack += graph.get(n, [])
    for n in c.recipe.nodes:
        if n.name not in needed and "." not in n.name:
            c.diagnostics.append(Diagnostic("W0601", f"`{n.name}` reaches no sink and will not run", n.span,
                                            (f"write it somewhere (`write {n.name} to \"{n.name}.jsonl\"`) or remove it",),
                                            severity="warning"))


PASSES = (check_names, check_models, check_ops, check_cycles, check_columns, check_reachability)


def check(recipe: Recipe, overrides: dict[str, str] | None = None,
          source_columns: dict[str, set | None] | None = None) -> Checked:
    """Run every pass; the result holds all diagnostics and the resolved arguments."""
    c = Checked(recipe)
    check_params(c, overrides or {})
    for s in recipe.sources:
        c.columns[s.name] = (source_columns or {}).get(s.name, None)
    for p in PASSES:
        p(c)
    return c

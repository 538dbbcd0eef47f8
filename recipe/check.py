"""Checks that run before anything executes: an ordered tuple of passes over a linked recipe.

Each pass reads the recipe (and what earlier passes resolved) and appends diagnostics;
every error of every pass is reported together.
"""
from __future__ import annotations

from . import ops as registry
from . import types
from .check_expect import check_expects
from .check_io import check_sinks, check_sources
from .check_names import case_clashes, expression_reads
from .check_regex import regex_call_diagnostics
from .check_types import tname as _tname, want_hint as _want_hint, warn_widened as _warn_widened
from .checked import Checked, path_of, value_of as _value
from .diagnostics import Diagnostic, Span, column_hint, did_you_mean
from .syntax import FUNCTIONS, derive_first, expr_columns, field_path, in_the_turns, looks_like_an_expression
from .ir import Arg, ListV, Lit, Node, OpCall, ParamRef, Recipe, walk
from .ops.base import P
from .check_models import (MODEL_KINDS, _call_text, check_model_calls, check_models, finetune_node,  # noqa: F401
                           model_kind)

PARAM_TYPES = ("int", "float", "str", "bool")
CANONICAL_COLUMNS = ("_id", "messages", "instruction", "response")


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
            c.diagnostics.append(Diagnostic("E0701", f"the recipe has no param `{name}` (given a value to set)", None,
                                            did_you_mean(name, declared) or (f"params: {', '.join(declared) or 'none'}",)))
            continue
        try:
            c.params[name] = coerce_param(p.type, raw)
            c.given.add(name)
        except ValueError:
            c.diagnostics.append(Diagnostic("E0702", f"param `{name}` = {raw!r}: expected {p.type}", p.span,
                                            (f"`{name}` is declared as {p.type} here",)))
    for p in r.params:
        if p.name not in c.params and p.type in PARAM_TYPES and not any(d.code == "E0702" and p.name in d.message for d in c.diagnostics):
            c.diagnostics.append(Diagnostic("E0703", f"param `{p.name}` has no default and no value was given",
                                            p.span, (f"give it one: `--set {p.name}=...` (command line) or "
                                                     f"`params={{\"{p.name}\": ...}}` (Python)",)))


def _check_arg(c: Checked, op: OpCall, spec, a: Arg, names: dict) -> object:
    p: P | None = spec.param(a.name)
    ptype = p.type if p else spec.variadic
    if ptype is None:
        known = [q.name for q in spec.params]
        hint = did_you_mean(a.name, known) or (f"parameters: {', '.join(known) or 'none'}",)
        models = [q.name for q in spec.params if q.type == "model"]
        if isinstance(a.value, Lit) and isinstance(a.value.value, str) and names.get(a.value.value) == "model" and models:
            # a model given under a name the op does not have: say where models go
            hint = (f"`{op.op}` takes models as {', '.join(f'`{m}=`' for m in models)}",)
        c.diagnostics.append(Diagnostic("E0202", f"`{op.op}` has no parameter `{a.name}`", a.span, hint))
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
    v = path_of(a.value, c) if p is not None and p.path else _value(a.value, c.params)
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
    if ptype == "str" and isinstance(v, str) and not v.strip():
        # no text param of any operator means anything by "": read as unset, it fell back to
        # the default (`column=""` named the score after the metric, `prompt=""` used the built-in)
        c.diagnostics.append(Diagnostic("E0206", f"`{a.name}` is empty", a.value.span,
                                        (f"leave `{a.name}` out for its default, or give a value",)))
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


def _literal(c: Checked, x):
    """A literal argument's value, or a param's value; None for anything computed per row."""
    return x.value if isinstance(x, Lit) else c.params.get(x.name) if isinstance(x, ParamRef) else None


def _check_functions(c: Checked, e) -> None:
    from .syntax import MAX_NODES
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
            elif x.fn in ("regexp_matches", "regexp_replace", "regexp_extract"):
                c.diagnostics += regex_call_diagnostics(x, lambda arg: _literal(c, arg))
            elif x.fn in ("char_repetition", "word_repetition"):
                n = x.args[1]
                value = _literal(c, n)
                if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                    c.diagnostics.append(Diagnostic("E0206", f"`{x.fn}` counts windows of n >= 1 units, got n={value}",
                                                    n.span, ("n=1 counts repeated characters or words; 10 and 2 "
                                                             "are usual for characters and words",)))
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
            missing = False
            for p in spec.params:
                if p.required and p.name not in given:
                    missing = True
                    c.diagnostics.append(Diagnostic("E0203", f"`{op.op}` needs `{p.name}`", op.span,
                                                    (f"add `{p.name}=...`" + (f" ({p.doc})" if p.doc else ""),)))
                elif p.name not in given and p.default is not None:
                    args[p.name] = p.default
            for group in spec.exclusive():
                both = [a for a in op.args if a.name in group]
                if len(both) > 1:
                    c.diagnostics.append(Diagnostic(
                        "E0208", f"`{op.op}` takes {' or '.join(f'`{g}`' for g in group)}, not both", both[1].span,
                        (f"remove `{both[1].name}=` or `{both[0].name}=`",)))
            kinds = {m.name: model_kind(c, m.name) for m in c.recipe.models}
            for pname, allowed in spec.model_kinds(args).items():
                mname = args.get(pname)
                if mname in kinds and kinds[mname] in MODEL_KINDS and kinds[mname] not in allowed:
                    a = op.arg(pname)
                    what = _call_text(op, args)
                    fits = [m for m, k in kinds.items() if k in allowed]
                    c.diagnostics.append(Diagnostic(
                        "E0209", f"{what} needs a {' or '.join(allowed)} model; `{mname}` is {kinds[mname]}",
                        a.value.span if a else op.span,
                        (f"`{fits[0]}` is a {kinds[fits[0]]} model: `{pname}={fits[0]}`" if fits else
                         f"declare one: `model lm = {allowed[0]}(\"{_EXAMPLE_SOURCE[allowed[0]]}\")`",)))
            if sum(d.is_error for d in c.diagnostics) == errors_before:  # cross-checks need valid args
                check_model_calls(c, op, spec, args)
                for pname, msg in spec.check(args) + (spec.check_inputs(args, len(node.inputs)) if i == 0 else []):
                    a = op.arg(pname)
                    c.diagnostics.append(Diagnostic("E0207", msg, a.span if a else op.span))
            if not missing:  # later passes read the op's declared columns, which need its required args
                c.args[(node.name, i)] = args
    for s in c.recipe.sinks:
        if names.get(s.input.name) not in ("node", "source"):
            c.diagnostics.append(Diagnostic("E0301", f"unknown node `{s.input.name}`", s.input.span,
                                            did_you_mean(s.input.name, [k for k, t in names.items() if t in ("node", "source")])))


_EXAMPLE_SOURCE = {"causal_lm": "builtin:smollm2", "embedding": "builtin:minilm",
                   "reward": "/path/to/reward-model", "classifier": "/path/to/classifier",
                   "language_id": "builtin:lid176"}


def _template_diags(text: str, allowed: tuple[str, ...] | None, span: Span) -> list[Diagnostic]:
    """A `str.format` template is well formed and names only columns that exist there
    (`allowed`; None when the columns are not known before the run)."""
    import string
    out = []
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as e:
        return [Diagnostic("E0210", f"this template is not valid: {e}", span,
                           ("write a literal brace as `{{` or `}}`",))]
    for f in fields:
        base = f.split(".")[0].split("[")[0]
        if not base or not base.isidentifier():
            out.append(Diagnostic("E0210", f"template placeholder `{{{f}}}` must name a column", span,
                                  ("write a literal brace as `{{` or `}}`",)))
        elif allowed is not None and base not in allowed:
            out.append(Diagnostic("E0210", f"template placeholder `{{{f}}}` is not a column here", span,
                                  did_you_mean(base, allowed) or (f"columns: {', '.join(allowed)}",)))
        elif f != base:
            out.append(Diagnostic("E0210", f"template placeholder `{{{f}}}` must be a plain name", span,
                                  (f"write `{{{base}}}`",)))
    return out


def deps(c: Checked, node: Node) -> list[str]:
    """The nodes and sources `node` needs first: its inputs, nodes named by its ops' params,
    and the rows any fine-tuned model it uses is trained on."""
    out = [i.name for i in node.inputs]
    for i, op in enumerate(node.ops):
        spec = registry.get(op.op)
        if spec is not None:
            args = c.args.get((node.name, i), {})
            out += spec.extra_inputs(args)
            out += [t for t in (finetune_node(c, m) for m in spec.models(args)) if t]
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
    """Columns flow with their types: a misspelt column, an expression DuckDB would refuse
    (text added with `+`), or a text column where a number is needed is a diagnostic here,
    not an error (or a silently wrong result) in the middle of a run."""
    if any(d.code == "E0501" for d in c.diagnostics):
        return
    by_name = {n.name: n for n in c.recipe.nodes}
    cols: dict[str, dict | None] = {k: (dict(v) if v is not None else None) for k, v in c.types.items()}
    ptypes = {p.name: p.type for p in c.recipe.params}
    described: dict[str, dict] = {}  # node -> its columns that describe the text -> the call that added them

    def cols_of(name: str):
        if name in cols:
            return cols[name]
        node = by_name.get(name)
        if node is None:
            return None
        cols[name] = None  # guard while computing
        ins = [cols_of(i.name) for i in node.inputs]
        said = {k: v for i in node.inputs for k, v in (described.get(i.name) or {}).items()}
        cur = None
        if ins and all(x is not None for x in ins):
            cur = {}
            first: dict[str, str] = {}
            spelled: dict[str, str] = {}
            for x, inp in zip(ins, node.inputs):
                for k, t in x.items():
                    k = spelled.setdefault(k.lower(), k)  # one column in any case, named as first seen
                    if k in cur:
                        _warn_widened(c, node, k, (first[k], cur[k]), (inp.name, t))
                    cur[k] = t if k not in cur else types.unified(cur[k], t)
                    first.setdefault(k, inp.name)
        for i, op in enumerate(node.ops):
            spec = registry.get(op.op)
            args = c.args.get((node.name, i))
            if spec is None or args is None:
                cur = None
                continue
            _check_op_columns(c, node, op, spec, args, cur, ptypes)
            _stale_descriptions(c, op, spec, args, said, cur)
            if cur is None:
                continue
            for r in spec.removes(args):
                cur.pop(r, None)
            if spec.variadic == "expr":  # derive: each new column has its expression's type
                for a in op.args:
                    if _in_the_turns(spec, a, cur) and a.name not in ("input", "context") and a.name not in cur:
                        continue  # written into `messages` (and `instruction`/`response`), which are there
                    if spec.param(a.name) is None:
                        cur[a.name] = types.expr_type(a.value, cur, ptypes)[0]
            else:
                cur.update(spec.types(args))
            if spec.describes_text:
                said.update(dict.fromkeys(spec.adds(args), op))
            elif spec.variadic == "expr":  # derive: a column computed from the text describes it
                said.update({a.name: op for a in op.args if spec.param(a.name) is None
                             and {x.name for x in expr_columns(a.value)} & TEXT_COLUMNS})
            cur = _joined_columns(c, op, spec, args, cur, cols_of)
        cols[name] = cur
        described[name] = said
        return cur

    for n in c.recipe.nodes:
        cols_of(n.name)
        c.types[n.name] = cols.get(n.name)
        c.columns[n.name] = set(c.types[n.name]) if c.types[n.name] is not None else None


TEXT_COLUMNS = {"messages", "instruction", "response", "conversation"}


def _stale_descriptions(c: Checked, op: OpCall, spec, args: dict, said: dict, cur: dict | None) -> None:
    """W0414: columns that describe the text (a score, tags, a language, a count derived from
    it), computed before a step that cuts or rewrites the conversation, are carried unchanged
    onto rows whose text they no longer describe."""
    how = spec.rewrites(args)
    if not how:
        return
    stale = [k for k in said if cur is None or k in cur]
    if stale:
        names = ", ".join(f"`{k}`" for k in stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        first = said[stale[0]]
        c.diagnostics.append(Diagnostic(
            "W0414", f"{names} {'was' if len(stale) == 1 else 'were'} computed from the text before `{op.op}`, which "
                     f"{how}: {'it is' if len(stale) == 1 else 'they are'} carried unchanged onto rows "
                     f"whose text {'it' if len(stale) == 1 else 'they'} no longer describe{'s' if len(stale) == 1 else ''}",
            op.span, (f"compute {'it' if len(stale) == 1 else 'them'} after `{op.op}` (`{first.op}` at line "
                      f"{first.span.line} now)",), severity="warning"))
    for k in stale:
        said.pop(k)


def _joined_columns(c: Checked, op: OpCall, spec, args: dict, cur: dict, cols_of) -> dict | None:
    """`cur` with the columns of the nodes a call joins (their identity and conversation
    columns apart); a column both sides have is a diagnostic (the join would replace it)."""
    from .ops.join import NOT_JOINED, added_columns
    for ref in spec.joined(args):
        other = cols_of(ref)
        if other is None:
            return None
        given, on = args.get("columns"), args.get("on") or "_id"
        if on not in other:
            a = op.arg("on")
            c.diagnostics.append(Diagnostic("E0401", f"column `{on}` does not exist in `{ref}`",
                                            a.value.span if a else op.span,
                                            column_hint(on, other)))
        a = op.arg("columns") or op.arg("right")
        span = a.value.span if a else op.span
        if args.get("how") == "anti":
            if given:
                c.diagnostics.append(Diagnostic("E0409", "`how=\"anti\"` keeps the rows `right` lacks: there is no row "
                                                         "to take columns from", span, ("leave `columns` out",)))
            continue
        for k in given or []:
            if k in NOT_JOINED:
                c.diagnostics.append(Diagnostic("E0409", f"`{k}` is a row's identity or conversation: a join adds "
                                                         f"other columns", span, ("leave it out of `columns`",)))
            elif k not in other:
                c.diagnostics.append(Diagnostic("E0401", f"column `{k}` does not exist in `{ref}`", span,
                                                column_hint(k, other)))
        adding = {k: other[k] for k in added_columns(other, on, given) if k in other and k not in NOT_JOINED}
        lower = {x.lower(): x for x in cur}
        both = sorted(k for k in adding if k.lower() in lower)  # SQL names ignore case
        if both:
            named = ", ".join(f"`{k}`" if lower[k.lower()] == k else f"`{k}` (`{lower[k.lower()]}` there: SQL names "
                              f"ignore case)" for k in both)
            # a column asked for by name is wanted: it needs another name, given on `right`'s side
            asked = [k for k in both if given and k in given]
            c.diagnostics.append(Diagnostic(
                "E0409", f"`{ref}` and the rows it is joined to both have {named}", span,
                (f"rename it on `{ref}`'s side first: `{ref}_named = {ref} | derive({ref}_{asked[0]} = {asked[0]})`, "
                 f"then join `{ref}_named` with `columns=[{ref}_{asked[0]}]`" if asked else
                 "name the columns to add with `columns=[...]`, leaving " + ", ".join(f"`{k}`" for k in both) + " out",)))
        cur.update(adding)
    return cur


def _check_op_columns(c: Checked, node: Node, op: OpCall, spec, args: dict, cur: dict | None, ptypes: dict) -> None:
    """Columns read by one call exist and have the types it needs; its expressions type-check."""
    exprs = [a for a in op.args if (spec.param(a.name) and spec.param(a.name).type == "expr")
             or (spec.variadic == "expr" and spec.param(a.name) is None)]
    fields: dict[str, str] = {}  # `meta.lang` in an expression: a field of a nested value, read as text
    if cur is not None:
        reads = list(spec.reads(args))
        for a in exprs:
            reads += expression_reads(c, a.value, cur, fields, a_list=_builds_conversation(spec, a, cur))
        for r in reads:
            name_, span = r if isinstance(r, tuple) else (r, _arg_span(op, r))
            if name_ not in cur:
                got = field_path(name_, cur)
                c.diagnostics.append(Diagnostic(
                    "E0401", f"column `{name_}` does not exist at `{op.op}` in `{node.name}`", span,
                    (f"a field of a nested value is read by row expressions: derive a column from it first, "
                     f"`derive({got[1][-1]} = {name_})`",) if got else
                    (derive_first(name_.strip()),) if looks_like_an_expression(name_) else column_hint(name_, cur)))
    known = {k: t for k, t in (cur or {}).items()} | fields
    for a in exprs:
        t, issues = types.expr_type(a.value, known, ptypes)
        for iss in issues:
            c.diagnostics.append(Diagnostic("E0405", iss.message, iss.node.span, (iss.hint,) if iss.hint else ()))
        want = spec.expr_type(a.name) if hasattr(spec, "expr_type") else None
        if not issues and want and not types.is_(t, want):
            c.diagnostics.append(Diagnostic("E0405", f"`{op.op}({a.name}=...)` needs a {_tname(want)}, "
                                                     f"but this expression gives {_tname(t)}", a.value.span,
                                            (_want_hint(want),)))
        if spec.variadic == "expr" and spec.param(a.name) is None:
            _check_assignment(c, op, a, t, _in_the_turns(spec, a, cur))
    for pname in spec.templates(args):  # placeholders name columns of this point of the pipeline
        a = op.arg(pname)
        if a is not None and isinstance(args.get(pname), str):
            c.diagnostics += _template_diags(args[pname], tuple(sorted(cur)) if cur is not None else None,
                                             a.value.span)
    if cur is not None and (rendered := spec.template_fields(args)):
        _check_template_fields(c, op, args, *rendered, cur)
    if cur is not None:
        case_clashes(c, op, spec, args, cur)
    if spec.variadic != "expr":
        for col in spec.adds(args):
            if (col in types.CANONICAL_TYPES or col == "_row" or col.startswith("__")
                    or col == "_parents" and not spec.creates_rows):
                c.diagnostics.append(Diagnostic(
                    "E0407", f"`{op.op}` would overwrite `{col}`", op.span,
                    ("name the new column something else, e.g. `column=\"" + col.strip("_") + "_score\"`",)))
    for pname, want in spec.column_types(args).items():
        col = spec.column_arg(pname, args)
        t = known.get(col) if col else None
        if t is not None and not types.is_(t, want):
            a = op.arg(pname)
            c.diagnostics.append(Diagnostic(
                "E0406", f"`{op.op}({pname}={args[pname]})` needs a {_tname(want)} column; `{col}` holds {_tname(t)}",
                a.value.span if a else op.span, (_want_hint(want),)))


def _check_template_fields(c: Checked, op: OpCall, args: dict, pname: str, temps: list, cur: dict) -> None:
    """W0411 when no template of the file can render a row here: each reads a field that is
    not a column at this point (the run would set every row aside)."""
    have = set(cur) - {"messages", "_parents"}  # rows are rendered without these
    short = [(name, sorted(fs - have)) for name, fs in temps]
    if not temps or not all(missing for _, missing in short):
        return
    name, missing = short[0]
    a = op.arg(pname)
    c.diagnostics.append(Diagnostic(
        "W0411", f"no template in `{args[pname]}` can render a row here: `{name}` reads "
                 f"{', '.join(f'`{m}`' for m in missing[:4])}, not a column at `{op.op}`"
                 + ("" if len(temps) == 1 else " (nor can the other template)" if len(temps) == 2 else
                    f" (nor can the other {len(temps) - 1})"),
        a.value.span if a else op.span,
        (f"columns here: {', '.join(sorted(have))}; a template's fields are the rows' columns (read the "
         "dataset with format=\"raw\" to keep its own field names)",), severity="warning"))


def _builds_conversation(spec, a: Arg, cur: dict | None) -> bool:
    """`derive(conversation = LIST)` where no column has that name: the list makes the turns."""
    return _in_the_turns(spec, a, cur) and a.name == "conversation"


def _in_the_turns(spec, a: Arg, cur: dict | None) -> bool:
    """A name `derive` writes into the conversation (`syntax.in_the_turns`): the turns, the
    system prompt, the last user turn's part after its instruction (`input`/`context`)."""
    return spec.variadic == "expr" and spec.param(a.name) is None and in_the_turns(a.name, cur)


def _check_assignment(c: Checked, op: OpCall, a: Arg, t: str, turn: bool) -> None:
    """What `derive` may write: canonical text columns stay text, identity and `messages`
    are never written by an expression, `conversation` only from a list of texts, and a
    part of the turns (a system prompt, an input) is text, not derived beside the turn it is in."""
    if turn and a.name != "conversation":
        if not types.is_(t, types.STR):
            c.diagnostics.append(Diagnostic("E0407", f"`{a.name}` is a part of the conversation, so it must be text, "
                                                     f"but this expression gives {_tname(t)}", a.value.span,
                                            ("`text(...)` writes a number as text",)))
        for other in op.args if a.name in ("input", "context") else ():
            if other.name in ("instruction", "conversation"):
                c.diagnostics.append(Diagnostic(
                    "E0407", f"`{a.name}` is joined to the user turn that `{other.name}` also writes in this call",
                    a.span, (f"derive `{other.name}` first and `{a.name}` in a later call",)))
        return
    if turn:  # the conversation itself
        if not types.is_(t, types.LIST):
            c.diagnostics.append(Diagnostic(
                "E0407", f"`conversation` is made from a list of texts (user, assistant, user, ...), but this "
                         f"expression gives {_tname(t)}", a.value.span,
                ("`interleave(questions, answers)` makes one list of two; a single exchange is "
                 "`derive(instruction = ..., response = ...)`",)))
        for other in op.args:
            if other.name in ("instruction", "response"):
                c.diagnostics.append(Diagnostic(
                    "E0407", f"`{other.name}` follows the `conversation` this call makes", other.span,
                    (f"derive `{other.name}` in a later call, or leave it to the conversation's "
                     f"{'first' if other.name == 'instruction' else 'second'} item",)))
        return
    if a.name in ("_id", "_row", "messages", "_parents") or a.name.startswith("__"):
        why = {"_id": "`_id` identifies a row (read's `id=\"column\"` takes a file's own ids)",
               "messages": "`messages` is kept in step with `instruction` and `response`: derive those",
               "_parents": "`_parents` is lineage, kept by the operators that make rows"}
        c.diagnostics.append(Diagnostic("E0407", f"`{a.name}` cannot be written by `derive`", a.span,
                                        (why.get(a.name, f"`{a.name}` is the engine's own working column "
                                                         "(row order, stored flags): name yours otherwise"),)))
    elif a.name in ("instruction", "response") and not types.is_(t, types.STR):
        c.diagnostics.append(Diagnostic("E0407", f"`{a.name}` must be text, but this expression gives {_tname(t)}",
                                        a.value.span, ("write a number to a new column instead",)))


def _arg_span(op: OpCall, colname: str) -> Span:
    for a in op.args:
        if isinstance(a.value, Lit) and a.value.value == colname:
            return a.value.span
        if isinstance(a.value, ListV) and any(isinstance(i, Lit) and i.value == colname for i in a.value.items):
            return a.value.span
    return op.span


def check_reachability(c: Checked) -> None:
    if not c.recipe.sinks and not c.recipe.expects:  # expectations alone: a test of the data
        c.diagnostics.append(Diagnostic("W0602", "the recipe writes nothing, so a run does nothing", c.recipe.span,
                                        ('add `write NODE to "file.jsonl"`',), severity="warning"))
    graph = {n.name: deps(c, n) for n in c.recipe.nodes}
    needed, stack = set(), [s.input.name for s in c.recipe.sinks] + [e.node.name for e in c.recipe.expects]
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


PASSES = (check_names, check_models, check_sources, check_ops, check_cycles, check_columns, check_sinks,
          check_expects, check_reachability)


def check(recipe: Recipe, overrides: dict[str, str] | None = None,
          source_columns: dict[str, set | None] | None = None,
          source_errors: dict[str, str] | None = None, source_notes: dict[str, str] | None = None,
          source_splits: dict[str, list] | None = None, sources_given: set | None = None,
          source_headers: dict[str, tuple] | None = None) -> Checked:
    """Run every pass; the result holds all diagnostics and the resolved arguments.
    `source_columns`: each source's first-row columns ({name: type}, or None when not read);
    `source_errors`: why a source's input could not be read; `source_notes`: why every row
    `check` read of a source was set aside; `source_splits`: the dataset splits a source's
    files mix; `sources_given`: the sources whose path came from outside (relative to the
    working directory, not to the recipe); `source_headers`: why a source's CSV/TSV header
    row looks like a record (`csv_header.header_doubt`)."""
    c = Checked(recipe, source_errors=dict(source_errors or {}), source_notes=dict(source_notes or {}),
                source_splits=dict(source_splits or {}), sources_given=set(sources_given or ()),
                source_headers=dict(source_headers or {}))
    check_params(c, overrides or {})
    for s in recipe.sources:
        found = (source_columns or {}).get(s.name, None)
        if found is not None and not isinstance(found, dict):
            found = {k: types.CANONICAL_TYPES.get(k, types.ANY) for k in found}
        c.types[s.name] = found
        c.columns[s.name] = set(found) if found is not None else None
    for p in PASSES:
        p(c)
    return c

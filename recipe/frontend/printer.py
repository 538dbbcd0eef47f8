"""Canonical printers: IR -> text form and IR -> YAML form, both keeping comments.

`recipe fmt` is `print(parse(file))`; it is idempotent, and `--to yaml|text` converts
between the forms. Comments are attached to the statement or operator that follows them
(or that shares their line) by source position.
"""
from __future__ import annotations

import json
import re

from .. import ops as registry
from ..ir import ListV, Lit, ParamRef, Recipe
from ..syntax import quote_str
from ..ops.base import NAME_TYPES
from ..syntax import KEYWORDS
from .yaml_loader import PARAM_REF

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
YAML_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
YAML_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "none", "~"}
WIDTH = 88


# ---- comment placement ----------------------------------------------------------------

class _Comments:
    def __init__(self, recipe: Recipe, items: list):
        self.lead: dict[int, list[str]] = {}
        self.trail: dict[int, str] = {}
        self.tail: dict[int, list[str]] = {}
        self.footer: list[str] = []
        starts = sorted(((it.span.line, i) for i, it in enumerate(items) if it.span.line > 0))
        node_of = {id(op): n for n in recipe.nodes for op in n.ops} | {id(n): n for n in recipe.nodes}
        for line, text, trailing, *indented in recipe.comments:  # YAML's comments have no `indented`
            same = [i for ln, i in starts if ln == line] if trailing else []
            if same:
                key = id(items[same[-1]])
                self.trail[key] = (self.trail[key] + " " + text) if key in self.trail else text
                continue
            nxt = [i for ln, i in starts if ln > line]
            prev = [i for ln, i in starts if ln < line]
            node = node_of.get(id(items[prev[-1]])) if prev else None
            # an indented line after a pipeline's last step (a step commented out) stays in it
            if indented and indented[0] and node is not None and not (nxt and node_of.get(id(items[nxt[0]])) is node):
                self.tail.setdefault(id(node), []).append(text)
                continue
            # a full-line comment (or one trailing inside a multi-line item) goes before the next item
            if nxt:
                self.lead.setdefault(id(items[nxt[0]]), []).append(text)
            else:
                self.footer.append(text)

    def before(self, item, indent="") -> list[str]:
        return [indent + c for c in self.lead.get(id(item), [])]

    def after_steps(self, node, indent="") -> list[str]:
        return [indent + c for c in self.tail.get(id(node), [])]

    def after(self, item) -> str:
        t = self.trail.get(id(item))
        return f"  {t}" if t else ""


def _items(r: Recipe) -> list:
    items = [r] + list(r.uses) + list(r.params) + list(r.models) + list(r.sources)
    for n in r.nodes:
        items.append(n)
        items.extend(n.ops)
    return items + list(r.sinks) + list(r.expects)


# ---- text form ------------------------------------------------------------------------

def _tval(v, ptype: str, params: set[str]) -> str:
    from ..syntax import to_text
    if isinstance(v, Lit) and isinstance(v.value, str) and ptype in NAME_TYPES | {"columns", "nodes"} \
            and IDENT.match(v.value) and v.value not in KEYWORDS and v.value not in params:
        return v.value
    if isinstance(v, ListV):
        inner = "column" if ptype == "columns" else "node" if ptype == "nodes" else "any"
        return "[" + ", ".join(_tval(i, inner, params) for i in v.items) + "]"
    return to_text(v)


def _targs(op_name: str | None, args, params: set[str], prefix: list[str] | None = None) -> str:
    spec = registry.get(op_name) if op_name else None
    parts = list(prefix or [])
    positional = list(spec.positional) if spec else []
    for a in args:
        p = spec.param(a.name) if spec else None
        ptype = p.type if p else (spec.variadic if spec and spec.variadic else "any")
        val = _tval(a.value, ptype, params)
        # the first positional param is written without its name (filter's condition)
        if positional and a.name == positional[0] and a is args[0]:
            parts.append(val)
        else:
            parts.append(f"{a.name}={val}")
    return "(" + ", ".join(parts) + ")"


def _model_args(m, params: set[str]) -> str:
    """A model's arguments; a fine-tuned model names its base model and node bare."""
    if m.kind != "finetune":
        return _targs(None, list(m.options), params, [_tval(m.source, "any", params)])
    parts = [_tval(m.source, "model", params)]
    parts += [f"{a.name}={_tval(a.value, 'node' if a.name == 'on' else 'any', params)}" for a in m.options]
    return "(" + ", ".join(parts) + ")"


def to_text(r: Recipe) -> str:
    from ..syntax import to_text as expr_text
    params = {p.name for p in r.params}
    cm = _Comments(r, _items(r))
    out: list[str] = []

    def section(lines: list[str]):
        if lines:
            if out:
                out.append("")
            out.extend(lines)

    section(cm.before(r) + [f"recipe {r.name}" + cm.after(r)])
    section([ln for u in r.uses for ln in cm.before(u) + [
        f"use {u.target if u.target.startswith('stdlib:') else quote_str(u.target)} as {u.alias}"
        + (_targs(None, list(u.overrides), params) if u.overrides else "") + cm.after(u)]])
    section([ln for p in r.params for ln in cm.before(p) + [
        f"param {p.name}: {p.type}" + (f" = {_tval(p.default, 'any', set())}" if p.default is not None else "")
        + cm.after(p)]])
    section([ln for m in r.models for ln in cm.before(m) + [
        f"model {m.name} = {m.kind}" + _model_args(m, params)
        + cm.after(m)]])
    section([ln for s in r.sources for ln in cm.before(s) + [
        f"source {s.name} = read" + _targs(None, list(s.options), params, [_tval(s.path, 'any', params)])
        + cm.after(s)]])
    for n in r.nodes:
        section(cm.before(n) + _text_node(n, params, cm))
    section([ln for s in r.sinks for ln in cm.before(s) + [
        f"write {s.input.name} to {quote_str(s.path.value) if isinstance(s.path, Lit) else s.path.name}"
        + (" " + _targs(None, list(s.options), params) if s.options else "") + cm.after(s)]])
    section([ln for e in r.expects for ln in cm.before(e) + [
        f"expect {e.node.name}{f' by {e.by_text}' if e.by else ''}: {expr_text(e.expr)}" + cm.after(e)]])
    if cm.footer:
        section(cm.footer)
    return "\n".join(out) + "\n"


def _text_node(n, params: set[str], cm: _Comments) -> list[str]:
    ops = list(n.ops)
    head_op = None
    if ops and (spec := registry.get(ops[0].op)) is not None and spec.multi_input:
        head_op = ops.pop(0)
        head = head_op.op + _targs(head_op.op, list(head_op.args), params, [i.name for i in n.inputs])
    else:
        head = ", ".join(i.name for i in n.inputs)
    calls = [(op, op.op + _targs(op.op, list(op.args), params)) for op in ops]
    trail = cm.after(n) + (cm.after(head_op) if head_op else "")
    one = f"{n.name} = {head}" + "".join(f" | {c}" for _, c in calls)
    one_trail = trail + "".join(cm.after(op) for op, _ in calls)
    if len(calls) <= 1 and len(one) <= WIDTH and not any(cm.before(op) for op, _ in calls) \
            and not cm.after_steps(n):
        return [one + one_trail]
    lines = [f"{n.name} = {head}" + trail]
    for op, c in calls:
        lines += cm.before(op, "  ")
        lines.append(f"  | {c}" + cm.after(op))
    return lines + cm.after_steps(n, "  ")


# ---- YAML form ------------------------------------------------------------------------

def _yval(v) -> str:
    from ..syntax import to_text as expr_text
    if isinstance(v, ParamRef):
        return quote_str("${" + v.name + "}")
    if isinstance(v, ListV):
        return "[" + ", ".join(_yval(i) for i in v.items) + "]"
    if isinstance(v, Lit):
        x = v.value
        if x is None:
            return "null"
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, (int, float)):
            return repr(x)
        if YAML_PLAIN.match(x) and x.lower() not in YAML_RESERVED:
            return x
        if PARAM_REF.match(x):  # the text `${name}`, not a reference to param `name`
            return quote_str("$" + x)
        return quote_str(x)
    return quote_str(expr_text(v))


def _block(v) -> bool:
    """Whether a value prints as a literal block scalar: multi-line text that YAML's `|`
    keeps exactly (no leading space on its first line, no control characters)."""
    if not (isinstance(v, Lit) and isinstance(v.value, str) and "\n" in v.value.rstrip("\n")):
        return False
    t = v.value
    return not t[:1].isspace() and all(c == "\n" or c == "\t" or c.isprintable() for c in t)


def _block_lines(key: str, v, indent: str) -> list[str]:
    if not _block(v):
        return [f"{indent}{key}: {_yval(v)}"]
    t = v.value
    body = t.rstrip("\n")
    chomp = "-" if not t.endswith("\n") else ("" if t.endswith("\n") and not t.endswith("\n\n") else "+")
    lines = body.split("\n") + ([""] * (len(t) - len(body) - 1) if chomp == "+" else [])
    return [f"{indent}{key}: |{chomp}"] + [(indent + "  " + ln) if ln else "" for ln in lines]


def _ymap(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"


def _yargs(args, op_name: str | None = None) -> list[tuple[str, str]]:
    return [(a.name, _yarg(a, op_name)) for a in args]


def _is_expr(op_name: str | None, arg: str) -> bool:
    """Whether the op reads this argument as a row expression (derive's columns, filter's condition)."""
    spec = registry.get(op_name) if op_name else None
    p = spec.param(arg) if spec else None
    return (p.type if p else spec.variadic if spec else None) == "expr"


def _yarg(a, op_name: str | None) -> str:
    from ..syntax import to_text as expr_text
    if isinstance(a.value, Lit) and isinstance(a.value.value, str) and _is_expr(op_name, a.name):
        # YAML reads an expression argument's text as an expression: a text literal keeps its
        # quotes inside the scalar (`origin: '"gsm"'`), or it would name the column `gsm`
        t = expr_text(a.value)
        return f"'{t}'" if "'" not in t and t.isprintable() else quote_str(t)
    return _yval(a.value)


def to_yaml(r: Recipe) -> str:
    cm = _Comments(r, _items(r))
    out: list[str] = cm.before(r) + [f"recipe: {_yval(Lit(r.name))}" + cm.after(r)]
    if r.uses:
        out.append("uses:")
        for u in r.uses:
            pairs = [("recipe", quote_str(u.target))]
            if u.overrides:
                pairs.append(("with", _ymap(_yargs(u.overrides))))
            out += cm.before(u, "  ") + [f"  {u.alias}: {_ymap(pairs)}" + cm.after(u)]
    if r.params:
        out.append("params:")
        for p in r.params:
            pairs = [("type", p.type)] + ([("default", _yval(p.default))] if p.default is not None else [])
            out += cm.before(p, "  ") + [f"  {p.name}: {_ymap(pairs)}" + cm.after(p)]
    if r.models:
        out.append("models:")
        for m in r.models:
            pairs = [("kind", m.kind), ("source", _yval(m.source))] + _yargs(m.options)
            out += cm.before(m, "  ") + [f"  {m.name}: {_ymap(pairs)}" + cm.after(m)]
    if r.sources:
        out.append("sources:")
        for s in r.sources:
            out += cm.before(s, "  ") + [f"  {s.name}: {_ymap([('read', _yval(s.path))] + _yargs(s.options))}" + cm.after(s)]
    if r.nodes:
        out.append("steps:")
        for n in r.nodes:
            out += cm.before(n, "  ") + [f"  {n.name}:" + cm.after(n)]
            if len(n.inputs) == 1:
                out.append(f"    input: {n.inputs[0].name}")
            else:
                out.append("    inputs: [" + ", ".join(i.name for i in n.inputs) + "]")
            if n.ops:
                out.append("    ops:")
                for op in n.ops:
                    args = [a for a in op.args if not a.name.startswith("_input")]
                    out += cm.before(op, "      ")
                    if any(_block(a.value) and not _is_expr(op.op, a.name) for a in args):
                        # multi-line text stays a block scalar (an expression's text literal stays quoted)
                        out.append(f"      - {op.op}:" + cm.after(op))
                        for a in args:
                            out += ([f"          {a.name}: {_yarg(a, op.op)}"] if _is_expr(op.op, a.name)
                                    else _block_lines(a.name, a.value, "          "))
                    else:
                        out.append(f"      - {op.op}: {_ymap(_yargs(args, op.op))}" + cm.after(op))
            out += cm.after_steps(n, "      ")
    if r.sinks:
        out.append("sinks:")
        for s in r.sinks:
            pairs = [("input", s.input.name), ("write", _yval(s.path))] + _yargs(s.options)
            out += cm.before(s, "  ") + [f"  - {_ymap(pairs)}" + cm.after(s)]
    if r.expects:
        out.append("expect:")
        for e in r.expects:
            by = [("by", _yval(Lit(e.by[0].name)) if len(e.by) == 1 else f"[{e.by_text}]")] if e.by else []
            pairs = [("node", e.node.name)] + by + [("that", _yval(e.expr))]
            out += cm.before(e, "  ") + [f"  - {_ymap(pairs)}" + cm.after(e)]
    out += cm.footer
    return "\n".join(out) + "\n"

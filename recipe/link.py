"""Linking: load recipe files (and `stdlib:NAME`) and inline `use` declarations.

`use "other.recipe" as q (k=10, raw=pool)` copies the other recipe's params, models,
sources and nodes under the prefix `q.`; an override names a param (a new default) or a
source (replaced by one of our nodes). The used recipe's sinks are dropped: the user
writes what they need, e.g. `write q.picked to "x.jsonl"`.
"""
from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from . import ops as registry
from .diagnostics import Diagnostic, RecipeError, UserError, did_you_mean
from .frontend import parse_any
from .ir import Arg, Binary, Call, Column, ListV, Lit, NameRef, Node, Param, ParamRef, Recipe, Unary

# package data (a link to the top-level stdlib_recipes/ in a checkout); wheels unpack to files
STDLIB = Path(str(resources.files("recipe").joinpath("stdlib_recipes")))
MAX_USE_DEPTH = 8


def stdlib_names() -> list[str]:
    return sorted(p.stem for p in STDLIB.glob("*.recipe"))


def resolve_path(target: str, base: Path | None = None) -> Path:
    if target.startswith("stdlib:"):
        name = target.split(":", 1)[1]
        p = STDLIB / f"{name}.recipe"
        if not p.exists():
            hint = did_you_mean(name, stdlib_names())
            raise UserError(f"no library recipe `{target}`" + (f"; {hint[0]}" if hint else
                            f"; available: {', '.join(stdlib_names())}"))
        return p
    p = Path(target)
    if base is not None and not p.is_absolute():
        p = base / p
    return p


def read_text(path: Path) -> str:
    if not path.exists():
        raise UserError(f"recipe file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a recipe file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})")


def load_file(target: str, base: Path | None = None) -> tuple[Recipe, str]:
    """Parse a recipe file or `stdlib:NAME`; returns the IR and the source text."""
    path = resolve_path(target, base)
    text = read_text(path)
    return parse_any(text, str(path)), text


def link(recipe: Recipe, depth: int = 0, seen: tuple[str, ...] = ()) -> Recipe:
    """Inline every `use`, recursively; errors are diagnostics at the `use` line."""
    if not recipe.uses:
        return recipe
    base = Path(recipe.file).parent if recipe.file not in ("<string>",) else Path.cwd()
    params, models, sources, nodes = list(recipe.params), list(recipe.models), list(recipe.sources), list(recipe.nodes)
    expects = list(recipe.expects)
    diags = []
    for u in recipe.uses:
        if depth >= MAX_USE_DEPTH or u.target in seen:
            diags.append(Diagnostic("E0801", f"`use` of {u.target} is circular or nested too deep", u.span))
            continue
        try:
            sub, _ = load_file(u.target, base)
        except UserError as e:
            diags.append(Diagnostic("E0802", str(e), u.span))
            continue
        except RecipeError as e:
            diags.append(Diagnostic("E0803", f"{u.target} has errors", u.span,
                                    tuple(f"{d.span.file}:{d.span.line}:{d.span.col}: {d.message}" for d in e.diagnostics if d.span)))
            continue
        sub = link(sub, depth + 1, seen + (u.target,))
        p_, m_, s_, n_, e_ = _prefixed(sub, u, diags)
        params += p_; models += m_; sources += s_; nodes += n_; expects += e_
    if diags:
        raise RecipeError(diags)
    return dataclasses.replace(recipe, uses=(), params=tuple(params), models=tuple(models),
                               sources=tuple(sources), nodes=tuple(nodes), expects=tuple(expects))


def _prefixed(sub: Recipe, u, diags) -> tuple[list, list, list, list, list]:
    pre = u.alias + "."
    over = {a.name: a for a in u.overrides}
    src_names = {s.name for s in sub.sources}
    param_names = {p.name for p in sub.params}
    for name, a in over.items():
        if name not in src_names and name not in param_names:
            diags.append(Diagnostic("E0804", f"{u.target} has no param or source `{name}`", a.span,
                                    did_you_mean(name, src_names | param_names)))
    # sources replaced by our nodes
    rename = {s: (over[s].value.value if isinstance(over[s].value, Lit) else str(over[s].value))
              for s in src_names if s in over}
    for n in [x.name for x in sub.nodes] + [m.name for m in sub.models] + \
             [s for s in src_names if s not in rename] + list(param_names):
        rename.setdefault(n, pre + n)

    def rv(v, ptype="any"):
        if isinstance(v, ParamRef):
            return ParamRef(rename.get(v.name, v.name), v.span)
        if isinstance(v, Lit) and isinstance(v.value, str) and ptype in ("node", "model"):
            return Lit(rename.get(v.value, v.value), v.span)
        if isinstance(v, ListV):
            inner = "node" if ptype == "nodes" else ptype
            return ListV(tuple(rv(i, inner) for i in v.items), v.span)
        if isinstance(v, Unary):
            return Unary(v.op, rv(v.operand), v.span)
        if isinstance(v, Binary):
            return Binary(v.op, rv(v.left), rv(v.right), v.span)
        if isinstance(v, Call):
            return Call(v.fn, tuple(rv(a) for a in v.args), v.span)
        return v

    for name, a in over.items():  # `(k=k)`: the used recipe's param *is* ours
        if name in param_names and isinstance(a.value, ParamRef):
            rename[name] = a.value.name
    params = []
    for p in sub.params:
        d = p.default
        if p.name in over and isinstance(over[p.name].value, ParamRef):
            continue
        if p.name in over:
            ov = over[p.name].value
            d = ov if isinstance(ov, Lit) else d
        params.append(Param(pre + p.name, p.type, d, p.span))
    models = [dataclasses.replace(m, name=pre + m.name, source=rv(m.source),
                                  options=tuple(Arg(a.name, rv(a.value), a.span) for a in m.options)) for m in sub.models]
    sources = [dataclasses.replace(s, name=pre + s.name, path=rv(s.path)) for s in sub.sources if s.name not in over]
    nodes = []
    for n in sub.nodes:
        ops = []
        for op in n.ops:
            spec = registry.get(op.op)
            args = []
            for a in op.args:
                p = spec.param(a.name) if spec else None
                args.append(Arg(a.name, rv(a.value, p.type if p else "any"), a.span))
            ops.append(dataclasses.replace(op, args=tuple(args)))
        nodes.append(Node(pre + n.name, tuple(NameRef(rename.get(i.name, i.name), i.span) for i in n.inputs),
                          tuple(ops), n.span))
    # the used recipe's expectations are part of what it promises: checked on its nodes here
    # (`rows(other)` names one of them too)
    def renamed(v):
        if isinstance(v, Call) and v.fn == "rows" and len(v.args) == 1 and isinstance(v.args[0], Column):
            return Call(v.fn, (Column(rename.get(v.args[0].name, v.args[0].name), v.args[0].span),), v.span)
        if isinstance(v, Unary):
            return Unary(v.op, renamed(v.operand), v.span)
        if isinstance(v, Binary):
            return Binary(v.op, renamed(v.left), renamed(v.right), v.span)
        return rv(v)
    expects = [dataclasses.replace(e, node=NameRef(rename.get(e.node.name, e.node.name), e.node.span),
                                   expr=renamed(e.expr)) for e in sub.expects]
    return params, models, sources, nodes, expects

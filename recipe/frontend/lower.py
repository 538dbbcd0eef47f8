"""Lowering shared by both front ends: turn raw argument values into typed IR values.

A bare identifier means a param when one of that name is declared, a column inside a row
expression, and otherwise a plain name (a column, node or model named by an op parameter),
so `on=instruction` in text and `on: instruction` in YAML give the same IR.
"""
from __future__ import annotations

from ..diagnostics import Diagnostic, Span
from ..ir import Arg, Binary, Call, Column, ListV, Lit, ParamRef, Unary
from .. import ops as registry


def resolve_expr(e, params: set[str]):
    """Inside a row expression: a name that is a declared param is a ParamRef."""
    if isinstance(e, Column) and e.name in params:
        return ParamRef(e.name, e.span)
    if isinstance(e, Unary):
        return Unary(e.op, resolve_expr(e.operand, params), e.span)
    if isinstance(e, Binary):
        return Binary(e.op, resolve_expr(e.left, params), resolve_expr(e.right, params), e.span)
    if isinstance(e, Call):
        return Call(e.fn, tuple(resolve_expr(a, params) for a in e.args), e.span)
    if isinstance(e, ListV):
        return ListV(tuple(resolve_expr(a, params) for a in e.items), e.span)
    return e


def to_value(e, params: set[str], diags: list[Diagnostic], ptype: str = "any"):
    """Outside expressions only literals, lists and names are values (`ptype`: the parameter's
    type, where an op's argument is lowered)."""
    if isinstance(e, Column):
        return ParamRef(e.name, e.span) if e.name in params else Lit(e.name, e.span)
    if isinstance(e, (Lit, ParamRef)):
        return e
    if isinstance(e, ListV):
        return ListV(tuple(to_value(i, params, diags, "column" if ptype == "columns" else "any") for i in e.items),
                     e.span)
    if isinstance(e, Unary) and e.op == "-" and isinstance(e.operand, Lit) \
            and isinstance(e.operand.value, (int, float)) and not isinstance(e.operand.value, bool):
        return Lit(-e.operand.value, e.span)
    from ..syntax import derive_first, to_text
    diags.append(Diagnostic("E0105", "expected a value (a literal, a list or a name), found an expression",
                            e.span, (derive_first(to_text(e)) if ptype == "column" else
                                     "row expressions go in `filter`, `derive` and `score(metric=\"expr\")`; "
                                     "here write the value itself, or a `param` for one that changes",)))
    return Lit(None, e.span)


def lower_op_args(op: str, raw: list[tuple[str | None, object, Span]], params: set[str],
                  diags: list[Diagnostic]) -> tuple[Arg, ...]:
    """Bind positional arguments by the op's declaration and lower each value by its type."""
    spec = registry.get(op)
    out: list[Arg] = []
    pos_names = list(spec.positional) if spec else []
    for i, (name, value, span) in enumerate(raw):
        if name is None:
            if spec is None:  # unknown operator: the checker reports it; keep the value
                name = f"_{i}"
            elif spec.multi_input:
                name = f"_input{i}"
            elif pos_names:
                name = pos_names.pop(0)
            else:
                diags.append(Diagnostic("E0106", f"`{op}` takes no positional argument here", span,
                                        ("name the argument: `param=value`",)))
                continue
        ptype = _ptype(spec, name)
        if ptype == "expr" or spec is None:
            v = resolve_expr(value, params)
        else:
            v = to_value(value, params, diags, ptype)
        out.append(Arg(name, v, span))
    return tuple(out)


def _ptype(spec, name: str) -> str:
    if spec is None:
        return "any"
    p = spec.param(name)
    if p is not None:
        return p.type
    return spec.variadic or "any"


def lower_kv(raw: list[tuple[str | None, object, Span]], params: set[str], diags: list[Diagnostic],
             what: str) -> tuple[Arg, ...]:
    """Options of models, sources, sinks and use overrides: keyword values only."""
    out = []
    for name, value, span in raw:
        if name is None:
            diags.append(Diagnostic("E0106", f"{what} options must be named", span,
                                    ("write `name=value`",)))
            continue
        out.append(Arg(name, to_value(value, params, diags), span))
    return tuple(out)

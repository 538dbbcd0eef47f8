"""The recipe IR: frozen dataclasses that both front ends build and every later stage reads.

Every node carries the `Span` it came from, so any stage can point back into the file
the user wrote. `to_json` gives the canonical, span-free form (`recipe compile --emit ir`),
which is what the text/YAML parity test compares byte for byte.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from .diagnostics import NO_SPAN, Span


# ---- values and row expressions -------------------------------------------------------

@dataclass(frozen=True)
class Lit:
    value: Any  # str | int | float | bool | None
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"lit": self.value}


@dataclass(frozen=True)
class ListV:
    items: tuple
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"list": [i.to_json() for i in self.items]}


@dataclass(frozen=True)
class ParamRef:
    name: str
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"param": self.name}


@dataclass(frozen=True)
class Column:
    name: str
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"col": self.name}


@dataclass(frozen=True)
class Unary:
    op: str  # "-" | "not"
    operand: "Expr"
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"unary": self.op, "x": self.operand.to_json()}


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / % == != < <= > >= and or
    left: "Expr"
    right: "Expr"
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"binary": self.op, "l": self.left.to_json(), "r": self.right.to_json()}


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"call": self.fn, "args": [a.to_json() for a in self.args]}


Expr = Union[Lit, ListV, ParamRef, Column, Unary, Binary, Call]
Value = Expr  # an op argument is a literal, a list, a param reference or (for expr params) an expression


# ---- declarations ---------------------------------------------------------------------

@dataclass(frozen=True)
class Arg:
    name: str
    value: Value
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return [self.name, self.value.to_json()]


@dataclass(frozen=True)
class OpCall:
    op: str
    args: tuple[Arg, ...]
    span: Span = field(default=NO_SPAN, compare=False)
    name_span: Span = field(default=NO_SPAN, compare=False)

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)

    def to_json(self):
        return {"op": self.op, "args": [a.to_json() for a in self.args]}


@dataclass(frozen=True)
class NameRef:
    name: str
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return self.name


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # int | float | str | bool
    default: Lit | None
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"name": self.name, "type": self.type,
                "default": None if self.default is None else self.default.to_json()}


@dataclass(frozen=True)
class Model:
    name: str
    kind: str  # embedding | causal_lm | classifier | reward
    source: Value
    options: tuple[Arg, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)
    kind_span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"name": self.name, "kind": self.kind, "source": self.source.to_json(),
                "options": [o.to_json() for o in self.options]}


@dataclass(frozen=True)
class Source:
    name: str
    path: Value
    options: tuple[Arg, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"name": self.name, "path": self.path.to_json(),
                "options": [o.to_json() for o in self.options]}


@dataclass(frozen=True)
class Node:
    name: str
    inputs: tuple[NameRef, ...]
    ops: tuple[OpCall, ...]
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"name": self.name, "inputs": [i.to_json() for i in self.inputs],
                "ops": [o.to_json() for o in self.ops]}

    def step_names(self) -> list[str]:
        """The name of each op's step, as `plan`, `explain` and the manifest show it: the node's
        own for a single op, else `node/op`, with `#k` from an op's second use on."""
        if len(self.ops) == 1:
            return [self.name]
        seen: dict[str, int] = {}
        out = []
        for o in self.ops:
            seen[o.op] = seen.get(o.op, 0) + 1
            out.append(f"{self.name}/{o.op}" + (f"#{seen[o.op]}" if seen[o.op] > 1 else ""))
        return out


@dataclass(frozen=True)
class Sink:
    input: NameRef
    path: Value
    options: tuple[Arg, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"input": self.input.to_json(), "path": self.path.to_json(),
                "options": [o.to_json() for o in self.options]}


@dataclass(frozen=True)
class Expect:
    """`expect NODE: CONDITION`: what the node's rows must be once it is finished; the
    condition is over aggregates of its rows (`checks` and `engine/expect.py`)."""
    node: NameRef
    expr: Expr
    span: Span = field(default=NO_SPAN, compare=False)
    by: tuple[NameRef, ...] = ()  # of each group of rows with one value of these columns

    @property
    def by_text(self) -> str:
        """The group's columns as written: `model, category`."""
        return ", ".join(n.name for n in self.by)

    def to_json(self):
        return {"node": self.node.to_json(), "expr": self.expr.to_json()} | (
            {"by": [n.to_json() for n in self.by]} if self.by else {})


@dataclass(frozen=True)
class Use:
    alias: str
    target: str  # a path or stdlib:NAME
    overrides: tuple[Arg, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)

    def to_json(self):
        return {"alias": self.alias, "target": self.target,
                "overrides": [o.to_json() for o in self.overrides]}


@dataclass(frozen=True)
class Recipe:
    name: str
    uses: tuple[Use, ...] = ()
    params: tuple[Param, ...] = ()
    models: tuple[Model, ...] = ()
    sources: tuple[Source, ...] = ()
    nodes: tuple[Node, ...] = ()
    sinks: tuple[Sink, ...] = ()
    file: str = "<string>"
    span: Span = field(default=NO_SPAN, compare=False)
    # (line, text, trailing) of every comment, for `recipe fmt`; not part of the IR's meaning
    comments: tuple = field(default=(), compare=False)
    expects: tuple[Expect, ...] = ()

    def to_json(self) -> dict:
        return {"recipe": self.name,
                "uses": [u.to_json() for u in self.uses],
                "params": [p.to_json() for p in self.params],
                "models": [m.to_json() for m in self.models],
                "sources": [s.to_json() for s in self.sources],
                "nodes": [n.to_json() for n in self.nodes],
                "sinks": [s.to_json() for s in self.sinks]} | (
                    {"expects": [e.to_json() for e in self.expects]} if self.expects else {})

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def names(self) -> dict[str, str]:
        """Every named thing and what kind it is."""
        out: dict[str, str] = {}
        for kind, items in (("param", self.params), ("model", self.models),
                            ("source", self.sources), ("node", self.nodes)):
            for it in items:
                out.setdefault(it.name, kind)
        return out


def walk(expr) -> list:
    """Every sub-expression, pre-order."""
    out = [expr]
    if isinstance(expr, Unary):
        out += walk(expr.operand)
    elif isinstance(expr, Binary):
        out += walk(expr.left) + walk(expr.right)
    elif isinstance(expr, (Call,)):
        for a in expr.args:
            out += walk(a)
    elif isinstance(expr, ListV):
        for a in expr.items:
            out += walk(a)
    return out

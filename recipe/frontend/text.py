"""Text front end: Lark parse tree -> `ir.Recipe`. A Lark Tree never leaves this module."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostic, RecipeError, Span
from ..ir import (Binary, Call, Column, Expect, ListV, Lit, Model, NameRef, Node, OpCall, Param, Recipe,
                  Sink, Source, Unary, Use)
from .lower import lower_kv, lower_op_args, resolve_expr, to_value

# package data (a link to the top-level grammars/ in a checkout), so an installed wheel parses
GRAMMAR = resources.files("recipe").joinpath("grammars", "recipe.lark")
MAX_DEPTH = 64  # deeper expressions are refused: they only come from generated or hostile input
MAX_BYTES = 1_000_000


@lru_cache(maxsize=None)
def parser(start: str = "start") -> Lark:
    return Lark(GRAMMAR.read_text(encoding="utf-8"), start=start, parser="lalr",
                propagate_positions=True, maybe_placeholders=False)


def _span(file: str, x) -> Span:
    if isinstance(x, Token):
        return Span(file, x.line, x.column, x.end_line, x.end_column)
    m = x.meta if hasattr(x, "meta") else x
    if getattr(m, "empty", True):
        return Span(file, 0, 0, 0, 0)
    return Span(file, m.line, m.column, m.end_line, m.end_column)


def unquote(tok: str) -> str:
    """Decode a quoted string literal: \\n \\t \\\\ \\" \\' \\uXXXX; nothing is evaluated."""
    body, out, i = tok[1:-1], [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in simple:
                out.append(simple[n]); i += 2; continue
            hexa = body[i + 2:i + 6]
            if n == "u" and len(hexa) == 4 and all(ch in "0123456789abcdefABCDEF" for ch in hexa):
                out.append(chr(int(hexa, 16))); i += 6; continue
        out.append(c)
        i += 1
    return "".join(out)


class _Raw:
    """An op call / arg list before lowering (lowering needs the declared params)."""
    def __init__(self, name, args, span, name_span):
        self.name, self.args, self.span, self.name_span = name, args, span, name_span


@v_args(meta=True)
class _ToIR(Transformer):
    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _s(self, meta) -> Span:
        return _span(self.file, meta)

    # ---- expressions -------------------------------------------------------------
    def string(self, meta, c):
        return Lit(unquote(str(c[0])), self._s(meta))

    def number(self, meta, c):
        s = str(c[0])
        v = float(s) if any(ch in s for ch in ".eE") else int(s)
        return Lit(v, self._s(meta))

    def true(self, meta, c):
        return Lit(True, self._s(meta))

    def false(self, meta, c):
        return Lit(False, self._s(meta))

    def null(self, meta, c):
        return Lit(None, self._s(meta))

    def ident(self, meta, c):
        return Column(str(c[0]), self._s(meta))

    def call(self, meta, c):
        return Call(str(c[0]), tuple(x for x in c[1:] if x is not None), self._s(meta))

    def list(self, meta, c):
        return ListV(tuple(x for x in c if x is not None), self._s(meta))

    def binop(self, meta, c):
        return Binary(str(c[1]), c[0], c[2], self._s(meta))

    def unop(self, meta, c):
        return Unary(str(c[0]), c[1], self._s(meta))

    # ---- arguments and calls -----------------------------------------------------
    def kwarg(self, meta, c):
        return (str(c[0]), c[1], self._s(meta))

    def posarg(self, meta, c):
        return (None, c[0], self._s(meta))

    def arglist(self, meta, c):
        return [x for x in c if x is not None]

    def opcall(self, meta, c):
        return _Raw(str(c[0]), c[1], self._s(meta), _span(self.file, c[0]))

    def head_ref(self, meta, c):
        return NameRef(str(c[0]), _span(self.file, c[0]))

    def pipeline(self, meta, c):
        return list(c)

    # ---- statements (lowered later, once all params are known) -------------------
    def recipe_decl(self, meta, c):
        return ("recipe", str(c[0]), self._s(meta))

    def use_stmt(self, meta, c):
        return ("use", c, self._s(meta))

    def param_stmt(self, meta, c):
        return ("param", c, self._s(meta))

    def model_stmt(self, meta, c):
        return ("model", c, self._s(meta))

    def source_stmt(self, meta, c):
        return ("source", c, self._s(meta))

    def node_stmt(self, meta, c):
        return ("node", c, self._s(meta))

    def sink_stmt(self, meta, c):
        return ("sink", c, self._s(meta))

    def expect_stmt(self, meta, c):
        return ("expect", c, self._s(meta))

    def start(self, meta, c):
        return list(c)


def _syntax_error(e: UnexpectedInput, text: str, file: str, what: str = "file") -> Diagnostic:
    line, col = getattr(e, "line", 1) or 1, getattr(e, "column", 1) or 1
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        balanced = text.count("(") <= text.count(")") and text.count("[") <= text.count("]")
        return Diagnostic("E0001", f"unexpected end of {what}", Span(file, line, col, line, col + 1),
                          ("an operator, `=` or `,` here needs something after it" if balanced
                           else "a bracket or parenthesis may be unclosed",))
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        if ch in "\"'":
            return Diagnostic("E0002", "unterminated string", Span(file, line, col, line, col + 1),
                              (f"close the string with {ch} on the same line",))
        return Diagnostic("E0001", f"unexpected character {ch!r}", Span(file, line, col, line, col + 1),
                          ("check the syntax near here",))
    tok = e.token
    expected = sorted(getattr(e, "expected", []) or [])
    pretty = list(dict.fromkeys(_PRETTY.get(x, x) for x in expected))[:6]
    end = col + max(1, len(str(tok)))
    hint = f"expected one of: {', '.join(pretty)}" if pretty else "check the syntax near here"
    hints = (hint,)
    if str(tok) == "|" and _open_brackets(text, getattr(e, "pos_in_stream", None)):
        hints += ("a pipeline cannot be an argument: name it first (`part = src | sample(n=10)`) "
                  "and pass the name",)
    return Diagnostic("E0001", f"unexpected `{tok}`", Span(file, line, col, line, end), hints)


def _open_brackets(text: str, pos: int | None) -> bool:
    """Whether `pos` lies inside an open parenthesis or bracket (strings and comments apart)."""
    if pos is None:
        return False
    depth, quote, comment, escaped = 0, "", False, False
    for ch in text[:pos]:
        if comment:
            comment = ch != "\n"
        elif quote:
            escaped, quote = (False, quote) if escaped else (ch == "\\", "" if ch == quote else quote)
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
    return depth > 0


# the grammar's terminal names as a reader would name them
_PRETTY = {"RPAR": "`)`", "LPAR": "`(`", "COMMA": "`,`", "EQUAL": "`=`", "NAME": "a name",
           "STRING": "a string", "NUMBER": "a number", "RSQB": "`]`", "LSQB": "`[`",
           "COLON": "`:`", "VBAR": "`|`", "__ANON_0": "a keyword", "CMP_OP": "a comparison (`==`, `<`, ...)",
           "ADD_OP": "`+` or `-`", "MUL_OP": "`*`, `/` or `%`", "AND": "`and`", "OR": "`or`", "NOT": "`not`",
           "TRUE": "`true`", "FALSE": "`false`", "NULL": "`null`", "STDLIB": "a `stdlib:` name"}


def _too_deep_at(text: str) -> tuple[int, int] | None:
    """(line, column) of the first bracket that nests deeper than MAX_DEPTH, if any."""
    depth, line, col = 0, 1, 0
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif ch in "([":
            depth += 1
            if depth > MAX_DEPTH:
                return line, col
        elif ch in ")]":
            depth -= 1
    return None


def parse_expr(text: str, file: str, line: int = 1, col: int = 1):
    """Parse one row expression (used by the YAML front end for `filter`/`derive` strings)."""
    at = _too_deep_at(text)
    if at is not None:
        ln, c = line + at[0] - 1, (col + at[1] - 1 if at[0] == 1 else at[1])
        raise RecipeError([Diagnostic("E0107", f"expression nests deeper than {MAX_DEPTH} levels",
                                      Span(file, ln, c, ln, c + 1))])
    try:
        tree = parser("expr").parse(text)
        expr = _ToIR(file).transform(tree)
    except RecursionError:
        raise RecipeError([_too_deep(file)])
    except UnexpectedInput as e:
        d = _syntax_error(e, text, file, "the expression")
        s = d.span
        shifted = Span(file, line + s.line - 1, (col + s.col - 1) if s.line == 1 else s.col,
                       line + s.end_line - 1, (col + s.end_col - 1) if s.end_line == 1 else s.end_col)
        raise RecipeError([Diagnostic(d.code, d.message, shifted, d.hints)])
    return _shift(expr, line, col) if (line, col) != (1, 1) else expr


def _shift(e, line, col):
    """Move spans of an expression parsed from a YAML scalar to where the scalar sits."""
    import dataclasses
    s = e.span
    ns = Span(s.file, line + s.line - 1, (col + s.col - 1) if s.line == 1 else s.col,
              line + s.end_line - 1, (col + s.end_col - 1) if s.end_line == 1 else s.end_col)
    kw = {"span": ns}
    if isinstance(e, Unary):
        kw["operand"] = _shift(e.operand, line, col)
    elif isinstance(e, Binary):
        kw["left"], kw["right"] = _shift(e.left, line, col), _shift(e.right, line, col)
    elif isinstance(e, Call):
        kw["args"] = tuple(_shift(a, line, col) for a in e.args)
    elif isinstance(e, ListV):
        kw["items"] = tuple(_shift(a, line, col) for a in e.items)
    return dataclasses.replace(e, **kw)


def collect_comments(text: str) -> tuple[tuple[int, str, bool, bool], ...]:
    """(line, text, trailing, indented) for every `#` comment outside a string literal."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        q = None
        for i, ch in enumerate(line):
            if q:
                if ch == "\\":
                    continue
                if ch == q and (i == 0 or line[i - 1] != "\\"):
                    q = None
            elif ch in "\"'":
                q = ch
            elif ch == "#":
                out.append((n, line[i:].rstrip(), bool(line[:i].strip()), i > 0))
                break
    return tuple(out)


def parse(text: str, file: str = "<string>") -> Recipe:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise RecipeError([Diagnostic("E0108", f"recipe file is larger than {MAX_BYTES} bytes",
                                      Span(file, 1, 1, 1, 2))])
    at = _too_deep_at(text)
    if at is not None:
        raise RecipeError([Diagnostic("E0107", f"brackets nest deeper than {MAX_DEPTH} levels",
                                      Span(file, at[0], at[1], at[0], at[1] + 1))])
    try:
        tree = parser().parse(text)
    except UnexpectedInput as e:
        raise RecipeError([_syntax_error(e, text, file)])
    except RecursionError:
        raise RecipeError([_too_deep(file)])
    try:
        stmts = _ToIR(file).transform(tree)
    except RecursionError:
        raise RecipeError([_too_deep(file)])
    return build(stmts, file, text)


def _too_deep(file: str) -> Diagnostic:
    return Diagnostic("E0107", "an expression is too long or too deeply nested", Span(file, 1, 1, 1, 2),
                      ("split it into several `derive` steps",))


def build(stmts, file: str, text: str) -> Recipe:
    diags: list[Diagnostic] = []
    name, rspan = Path(file).stem if file != "<string>" else "recipe", Span(file, 1, 1, 1, 1)
    params = {str(c[1][0]) for c in stmts if c[0] == "param"}
    out = {"use": [], "param": [], "model": [], "source": [], "node": [], "sink": [], "expect": []}
    for kind, c, span in stmts:
        if kind == "recipe":
            name, rspan = c, span
        elif kind == "use":
            target = str(c[0])
            target = unquote(target) if target[0] in "\"'" else target
            overrides = lower_kv(c[2] if len(c) > 2 else [], params, diags, "use")
            out["use"].append(Use(str(c[1]), target, overrides, span))
        elif kind == "param":
            default = None
            if len(c) > 2:
                v = to_value(c[2], params, diags)
                default = v if isinstance(v, Lit) else Lit(None, v.span)
            out["param"].append(Param(str(c[0]), str(c[1]), default, span))
        elif kind == "model":
            args = c[2]
            if not args or args[0][0] is not None:
                diags.append(Diagnostic("E0109", "a model needs its location as the first argument", span,
                                        ('e.g. `model lm = causal_lm("builtin:smollm2")`',)))
                continue
            src = to_value(args[0][1], params, diags)
            out["model"].append(Model(str(c[0]), str(c[1]), src,
                                      lower_kv(args[1:], params, diags, "model"), span,
                                      _span(file, c[1])))
        elif kind == "source":
            reader, args = str(c[1]), c[2]
            if reader != "read" or not args or args[0][0] is not None:
                diags.append(Diagnostic("E0110", "a source is `read(\"path\", ...)`", _span(file, c[1]),
                                        ('e.g. `source raw = read("data.jsonl", format="alpaca")`',)))
                continue
            out["source"].append(Source(str(c[0]), to_value(args[0][1], params, diags),
                                        lower_kv(args[1:], params, diags, "source"), span))
        elif kind == "node":
            out["node"].append(_node(str(c[0]), c[1], span, params, diags))
        elif kind == "sink":
            opts = lower_kv(c[2] if len(c) > 2 else [], params, diags, "write")
            out["sink"].append(Sink(NameRef(str(c[0]), _span(file, c[0])),
                                    Lit(unquote(str(c[1])), _span(file, c[1])), opts, span))
        elif kind == "expect":
            by = tuple(NameRef(str(x), _span(file, x)) for x in c[1:-1])
            out["expect"].append(Expect(NameRef(str(c[0]), _span(file, c[0])), resolve_expr(c[-1], params), span, by))
    if any(d.is_error for d in diags):
        raise RecipeError(diags)
    return Recipe(name, tuple(out["use"]), tuple(out["param"]), tuple(out["model"]),
                  tuple(out["source"]), tuple(out["node"]), tuple(out["sink"]), file, rspan,
                  comments=collect_comments(text), expects=tuple(out["expect"]))


def _spec(op: str):
    from .. import ops as registry
    return registry.get(op)


def _node(name: str, pipe: list, span: Span, params: set[str], diags: list) -> Node:
    head, rest = pipe[0], pipe[1:]
    ops: list[OpCall] = []
    if isinstance(head, NameRef):
        inputs: tuple = (head,)
    else:
        # a multi-input op as the head: its positional arguments are the input nodes
        spec = _spec(head.name)
        if spec is not None and spec.multi_input:
            ins, kws = [], []
            for a in head.args:
                if a[0] is None and isinstance(a[1], Column):
                    ins.append(NameRef(a[1].name, a[1].span))
                else:
                    kws.append(a)
            inputs = tuple(ins)
            ops.append(OpCall(head.name, lower_op_args(head.name, kws, params, diags), head.span,
                              head.name_span))
        elif spec is None and head.args and all(a[0] is None and isinstance(a[1], Column) for a in head.args):
            # `concat(a, b)`, `merge(a, b)`: nodes combined by an operator that does not exist
            given = ", ".join(a[1].name for a in head.args)
            diags.append(Diagnostic("E0201", f"unknown operator `{head.name}`", head.name_span,
                                    (f"nodes are combined with `{name} = union({given})` or "
                                     f"`{name} = mix({given}, weights=[...])`",)))
            inputs = ()
        else:
            diags.append(Diagnostic("E0111", f"`{name}` must start from a node or a multi-input operator",
                                    head.name_span,
                                    (f"write `{name} = <node> | {head.name}(...)`",)))
            inputs = ()
    for r in rest:
        spec = _spec(r.name)
        if spec is not None and spec.multi_input:
            # `a | union(b, c)`: the inputs belong in the call
            ins = [a[1].name for a in r.args if a[0] is None and isinstance(a[1], Column)] or ["b"]
            kws = [f"{a[0]}=..." for a in r.args if a[0] is not None]
            if ops or not isinstance(head, NameRef):
                hint = (f"name the part before it (`part = ...`), then write "
                        f"`{name} = {r.name}({', '.join(['part', *ins, *kws])})`")
            else:
                hint = f"write `{name} = {r.name}({', '.join([head.name, *ins, *kws])})`"
            diags.append(Diagnostic("E0113", f"`{r.name}` combines nodes and must start a pipeline", r.name_span, (hint,)))
            continue
        ops.append(OpCall(r.name, lower_op_args(r.name, r.args, params, diags), r.span, r.name_span))
    return Node(name, inputs, tuple(ops), span)

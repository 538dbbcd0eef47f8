"""YAML front end: the IR written out. Keeps line/column marks so errors point into the file."""
from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from importlib import resources

import jsonschema
import yaml

from ..diagnostics import Diagnostic, RecipeError, Span, did_you_mean
from ..ir import Arg, Expect, ListV, Lit, Model, NameRef, Node, OpCall, Param, ParamRef, Recipe, Sink, Source, Use
from .. import ops as registry
from .lower import resolve_expr
from .text import MAX_BYTES, parse_expr

PARAM_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def yaml_comments(text: str) -> tuple[tuple[int, str, bool], ...]:
    """(line, text, trailing) for every YAML comment: a `#` at a line's start or after a
    space that lies outside every scalar as YAML's own scanner reads them (so `don't` and
    a `#` line inside a block scalar are text, not comments)."""
    import bisect
    spans = []
    for t in yaml.scan(text):
        if isinstance(t, yaml.ScalarToken):
            a = t.start_mark.index
            if t.style in ("|", ">"):  # a block scalar's text starts on the line after its header
                a = text.find("\n", a) + 1 or t.end_mark.index
            spans.append((a, t.end_mark.index))
    spans.sort()
    starts = [a for a, _ in spans]

    def in_scalar(i: int) -> bool:
        k = bisect.bisect_right(starts, i) - 1
        return k >= 0 and spans[k][0] <= i < spans[k][1]
    out, pos = [], 0
    for n, line in enumerate(text.split("\n"), 1):
        for i, ch in enumerate(line):
            if ch == "#" and (i == 0 or line[i - 1] in " \t") and not in_scalar(pos + i):
                out.append((n, line[i:].rstrip(), bool(line[:i].strip())))
                break
        pos += len(line) + 1
    return tuple(out)


@lru_cache(maxsize=None)
def recipe_schema() -> dict:
    return json.loads(resources.files("recipe.schema").joinpath("recipe.schema.json").read_text())


@lru_cache(maxsize=None)
def _structural_schema() -> dict:
    """The shipped schema with each op entry relaxed to `{name: args}`: operator names and
    arguments are checked by the checker, which can say `did you mean`."""
    import copy
    s = copy.deepcopy(recipe_schema())
    s["properties"]["steps"]["additionalProperties"]["properties"]["ops"]["items"] = {
        "type": "object", "minProperties": 1, "maxProperties": 1}
    return s


class _Loader(yaml.SafeLoader):
    """SafeLoader reading plain scalars by YAML 1.2's core schema, as the text form reads
    them. PyYAML's YAML 1.1 made `n: 010` eight (octal), `n: 1:30` ninety (base 60), `1_0`
    ten, and `yes`/`no`/`on`/`off` true or false, where `limit(10)` and a written `010` mean
    ten in the text form: the same recipe meant two things. Timestamps are plain text too."""


_CORE = {
    "tag:yaml.org,2002:bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "tag:yaml.org,2002:int": (r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    "tag:yaml.org,2002:float": (r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _CORE and tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _tag, (_rx, _first) in _CORE.items():
    _Loader.add_implicit_resolver(_tag, re.compile(_rx), list(_first))


def _core_int(loader, node) -> int:
    """An int by the core schema: decimal (a leading 0 is still decimal), 0o octal, 0x hex."""
    v = loader.construct_scalar(node)
    return int(v[2:], 8) if v.startswith("0o") else int(v[2:], 16) if v.startswith("0x") else int(v, 10)


_Loader.add_constructor("tag:yaml.org,2002:int", _core_int)


def _span(file: str, node) -> Span:
    s, e = node.start_mark, node.end_mark
    return Span(file, s.line + 1, s.column + 1, e.line + 1, e.column + 1)


MAX_NODES = 200_000  # aliases can make a small file expand enormously ("billion laughs")


def _scalar(node):
    return _Loader("").construct_object(node)


def _plain(node, budget=None):
    """Composed node -> plain Python (for schema validation), refusing alias bombs."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise TypeError(f"the document expands to more than {MAX_NODES} YAML nodes")
    if isinstance(node, yaml.MappingNode):
        return {_plain(k, budget): _plain(v, budget) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, budget) for v in node.value]
    return _scalar(node)


def _locate(root, path) -> yaml.Node:
    """The node at a JSON path; for the last mapping key, the key itself (where a typo is)."""
    node = root
    for key in path:
        if isinstance(node, yaml.MappingNode):
            nxt = next((k for k, v in node.value if k.value == key), None)
            if nxt is None:
                break
            node = nxt if key == path[-1] else next(v for k, v in node.value if k.value == key)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node


def _syntax_hint(text: str, mark) -> str:
    """What most likely broke the YAML where it stopped: an unquoted `${param}` (YAML stops at
    its `{`, which opens a mapping), else general advice on quoting."""
    lines = text.splitlines()
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    ref = re.match(r"\$\{(\w+)\}", line[mark.column - 1:]) if mark and mark.column else None
    if ref:
        return f'quote a param reference: "${{{ref.group(1)}}}" (unquoted, YAML reads its braces as a mapping)'
    return "check indentation and quoting (a value with `: `, `#`, `{`, `[` or a leading `\"` needs quotes)"


def parse(text: str, file: str = "<string>") -> Recipe:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise RecipeError([Diagnostic("E0108", f"recipe file is larger than {MAX_BYTES} bytes",
                                      Span(file, 1, 1, 1, 2))])
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark
        line, col = (m.line + 1, m.column + 1) if m else (1, 1)
        raise RecipeError([Diagnostic("E0001", f"YAML syntax error: {e.problem}",
                                      Span(file, line, col, line, col + 1), (_syntax_hint(text, m),))])
    except yaml.YAMLError as e:
        raise RecipeError([Diagnostic("E0001", f"YAML syntax error: {e}", Span(file, 1, 1, 1, 2))])
    if root is None or not isinstance(root, yaml.MappingNode):
        raise RecipeError([Diagnostic("E0102", "a YAML recipe is a mapping with `recipe:`, `steps:`, ...",
                                      Span(file, 1, 1, 1, 2))])
    try:
        doc = _plain(root)
    except (yaml.YAMLError, RecursionError, TypeError) as e:
        raise RecipeError([Diagnostic("E0102", f"unsupported YAML: {e}", _span(file, root))])
    # structural validation against the shipped JSON Schema, every error at its place
    validator = jsonschema.Draft202012Validator(_structural_schema())
    diags = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = list(err.absolute_path)
        hints = ("see recipe/schema/recipe.schema.json",)
        said = _short(err)
        if err.validator == "additionalProperties":
            m = re.search(r"'([^']+)' w(?:as|ere) unexpected", err.message)
            if m:
                path.append(m.group(1))
                known = (err.schema.get("properties") or {}).keys()
                alias = _ALIASES.get(m.group(1))
                hints = ((f"the YAML form calls it `{alias}`",) if alias in known else
                         did_you_mean(m.group(1), known) or hints)
        if err.validator == "type" and path[-1:] == ["ops"] and isinstance(err.instance, dict) and err.instance:
            said = "a list of ops is expected, not a mapping"
            hints = ("`ops` is a list, in the order they run: an item per op, each line starting with `- ` ("
                     + ", ".join(f"`- {k}: ...`" for k in list(err.instance)[:3]) + ")",)
        if path[:1] == ["sinks"] and isinstance(err.instance, dict) and "to" in err.instance:
            hints = ("a sink is `{input: NODE, write: FILE}` (the text form's `write NODE to FILE`)",)
        node = _locate(root, path)
        where = "/".join(map(str, err.absolute_path)) or "<top>"
        diags.append(Diagnostic("E0103", f"{where}: {said}", _span(file, node), hints))
    if diags:
        raise RecipeError(diags)
    return _Builder(file, text).build(root)


# names a newcomer reaches for (the text form's words, other tools') -> the YAML form's
_ALIASES = {"nodes": "steps", "pipeline": "steps", "pipelines": "steps", "outputs": "sinks", "writes": "sinks",
            "inputs": "sources", "reads": "sources", "parameters": "params", "name": "recipe", "operators": "ops",
            "read": "input", "from": "input"}


def _short(err) -> str:
    msg = err.message
    if err.validator in ("anyOf", "oneOf"):
        msg = "not a valid entry here"
    return msg if len(msg) < 160 else msg[:157] + "..."


class _Builder:
    def __init__(self, file: str, text: str):
        self.file, self.text, self.diags = file, text, []
        self.params: set[str] = set()

    def sp(self, node) -> Span:
        return _span(self.file, node)

    def items(self, node):
        return [] if node is None or not isinstance(node, yaml.MappingNode) else node.value

    def value(self, node, ptype: str = "any"):
        """A YAML value -> IR value; `${name}` is a param reference."""
        if isinstance(node, yaml.SequenceNode):
            return ListV(tuple(self.value(v, ptype) for v in node.value), self.sp(node))
        if isinstance(node, yaml.MappingNode):
            self.diags.append(Diagnostic("E0104", "expected a value, found a mapping", self.sp(node)))
            return Lit(None, self.sp(node))
        py = _scalar(node)
        if isinstance(py, str):
            m = PARAM_REF.match(py)
            if m:
                return ParamRef(m.group(1), self.sp(node))
            if py.startswith("$$") and PARAM_REF.match(py[1:]):  # `$${name}`: the text `${name}` itself
                return Lit(py[1:], self.sp(node))
            if ptype == "expr":
                return self.expr(node)
        return Lit(py, self.sp(node))

    def expr(self, node):
        s = self.sp(node)
        quoted = 1 if node.style in ("'", '"') else 0
        try:
            e = parse_expr(str(node.value), self.file, s.line, s.col + quoted)
        except RecipeError as err:
            cut = node.style is None and self.text[node.end_mark.index:node.end_mark.index + 1] == ","
            for d in err.diagnostics:
                # a plain value in `{...}` ends at its first comma: `f(a, b)` arrives as `f(a`
                self.diags.append(dataclasses.replace(d, hints=(
                    "YAML ended this value at the comma after it: quote the whole expression, "
                    f"e.g. '{node.value}, ...'",) + tuple(d.hints)) if cut else d)
            return Lit(None, s)
        return resolve_expr(e, self.params)

    def kv(self, node, skip=()) -> tuple[Arg, ...]:
        return tuple(Arg(k.value, self.value(v), self.sp(k)) for k, v in self.items(node) if k.value not in skip)

    def get(self, node, key):
        return next((v for k, v in self.items(node) if k.value == key), None)

    def build(self, root) -> Recipe:
        top = {k.value: (k, v) for k, v in root.value}
        for k, _ in self.items(top.get("params", (None, None))[1]):
            self.params.add(k.value)
        name_node = top.get("recipe", (None, None))[1]
        name = name_node.value if name_node is not None else "recipe"
        uses = tuple(Use(k.value, str(self.get(v, "recipe").value), self.kv(self.get(v, "with")), self.sp(k))
                     for k, v in self.items(top.get("uses", (None, None))[1]))
        params = []
        for k, v in self.items(top.get("params", (None, None))[1]):
            d = self.get(v, "default")
            params.append(Param(k.value, str(self.get(v, "type").value),
                                None if d is None else self.value(d), self.sp(k)))
        models = []
        for k, v in self.items(top.get("models", (None, None))[1]):
            kind = self.get(v, "kind")
            models.append(Model(k.value, str(kind.value), self.value(self.get(v, "source")),
                                self.kv(v, skip=("kind", "source")), self.sp(k), self.sp(kind)))
        sources = tuple(Source(k.value, self.value(self.get(v, "read")), self.kv(v, skip=("read",)), self.sp(k))
                        for k, v in self.items(top.get("sources", (None, None))[1]))
        nodes = tuple(self.node(k, v) for k, v in self.items(top.get("steps", (None, None))[1]))
        sinks = []
        sn = top.get("sinks", (None, None))[1]
        for v in (sn.value if isinstance(sn, yaml.SequenceNode) else []):
            inp = self.get(v, "input")
            sinks.append(Sink(NameRef(str(inp.value), self.sp(inp)), self.value(self.get(v, "write")),
                              self.kv(v, skip=("input", "write")), self.sp(v)))
        expects = []
        en = top.get("expect", (None, None))[1]
        for v in (en.value if isinstance(en, yaml.SequenceNode) else []):
            node, that, by = self.get(v, "node"), self.get(v, "that"), self.get(v, "by")
            cols = by.value if isinstance(by, yaml.SequenceNode) else [by] if by is not None else []
            expects.append(Expect(NameRef(str(node.value), self.sp(node)), self.expr(that), self.sp(v),
                                  tuple(NameRef(str(x.value), self.sp(x)) for x in cols)))
        if self.diags:
            raise RecipeError(self.diags)
        span = self.sp(top["recipe"][0]) if "recipe" in top else Span(self.file, 1, 1, 1, 1)
        return Recipe(str(name), uses, tuple(params), tuple(models), sources, nodes, tuple(sinks),
                      self.file, span, comments=yaml_comments(self.text), expects=tuple(expects))

    def node(self, key, v) -> Node:
        one, many = self.get(v, "input"), self.get(v, "inputs")
        if one is not None:
            inputs = (NameRef(str(one.value), self.sp(one)),)
        else:
            inputs = tuple(NameRef(str(i.value), self.sp(i)) for i in (many.value if many is not None else []))
        ops = []
        opsn = self.get(v, "ops")
        for item in (opsn.value if opsn is not None else []):
            (kn, vn), = item.value
            spec = registry.get(kn.value)
            if isinstance(vn, yaml.MappingNode):
                args = []
                for ak, av in vn.value:
                    p = spec.param(ak.value) if spec else None
                    ptype = p.type if p else (spec.variadic if spec and spec.variadic else "any")
                    args.append(Arg(ak.value, self.value(av, ptype), self.sp(ak)))
            elif isinstance(vn, yaml.ScalarNode) and vn.value not in ("", "~", "null") and spec and spec.positional:
                pname = spec.positional[0]
                args = [Arg(pname, self.value(vn, spec.param(pname).type), self.sp(vn))]
            else:
                args = []
            ops.append(OpCall(kn.value, tuple(args), self.sp(item), self.sp(kn)))
        return Node(key.value, inputs, tuple(ops), self.sp(key))

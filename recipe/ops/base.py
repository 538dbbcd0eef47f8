"""What every operator declares (its signature): parameters (with a schema), columns read
and added, version, and kind; and its kernel, `run`, written against the table interface
(recipe/table.py) so that any engine can run it.

The checker, the planner, `recipe ops` and the JSON Schema all read these declarations,
so an operator is one file that subclasses `Op` and one line in `ops/__init__.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# parameter types: how a value is written and checked
SCALAR_TYPES = {"int", "float", "str", "bool"}
NAME_TYPES = {"column", "node", "model"}  # a bare identifier naming something
ALL_TYPES = SCALAR_TYPES | NAME_TYPES | {"expr", "columns", "floats", "strs", "nodes", "any"}


@dataclass(frozen=True)
class P:
    """One operator parameter."""
    name: str
    type: str
    default: Any = None
    required: bool = False
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    doc: str = ""
    path: bool = False  # a file's path: relative to the recipe file it is written in (recipe.paths)

    def json_schema(self) -> dict:
        base = {"int": {"type": "integer"}, "float": {"type": "number"}, "str": {"type": "string"},
                "bool": {"type": "boolean"}, "column": {"type": "string"}, "node": {"type": "string"},
                "model": {"type": "string"}, "expr": {"type": "string"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "strs": {"type": "array", "items": {"type": "string"}},
                "nodes": {"type": "array", "items": {"type": "string"}},
                "floats": {"type": "array", "items": {"type": "number"}}, "any": {}}[self.type]
        s = dict(base)
        if self.choices:
            s["enum"] = list(self.choices)
        if self.min is not None:
            s["minimum"] = self.min
        if self.max is not None:
            s["maximum"] = self.max
        if self.doc:
            s["description"] = self.doc
        if self.default is not None:
            s["default"] = self.default
        # a param reference `${name}` is allowed wherever a value is
        return {"anyOf": [s, {"type": "string", "pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"}]} \
            if self.type in ("int", "float", "bool", "floats") else s


class Op:
    """Base class; subclasses set the class attributes and implement `run`."""
    name: str = ""
    version: int = 1
    kind: str = "relational"              # relational | map | global (recipe.table.KINDS)
    doc: str = ""
    params: tuple[P, ...] = ()
    positional: tuple[str, ...] = ()      # names bound to positional arguments, in order
    variadic: str | None = None           # type of extra keyword arguments (derive: "expr")
    multi_input: bool = False             # takes its inputs as positional node names (union, mix)
    creates_rows: bool = False            # may add rows (fuse); rows_created is then > 0
    needs_models: bool = False
    # the columns it adds describe the row's text (scores, tags, languages, counts)
    describes_text: bool = False
    # it cuts or rewrites the conversation, so such columns computed before it go stale
    rewrites_turns: str = ""              # how, for the warning: "cuts each conversation into parts"

    def rewrites(self, args: dict) -> str:
        """How this call cuts or rewrites the conversations it gets ("" when it does not)."""
        return self.rewrites_turns

    def kind_of(self, args: dict) -> str:
        """This call's kind (some operators are row-local for one method, global for another)."""
        return self.kind

    def param(self, name: str) -> P | None:
        return next((p for p in self.params if p.name == name), None)

    # ---- declarations the checker uses ---------------------------------------------
    def reads(self, args: dict) -> list[str]:
        """Columns this call reads (beyond expressions, which the checker walks itself)."""
        return [args[p.name] for p in self.params if p.type == "column" and args.get(p.name)]

    def adds(self, args: dict) -> list[str]:
        """Columns this call adds to its output."""
        return []

    def removes(self, args: dict) -> list[str]:
        return []

    def types(self, args: dict) -> dict[str, str]:
        """Types of the columns this call adds (recipe.types names; `any` when unknown)."""
        return {c: "any" for c in self.adds(args)}

    def column_types(self, args: dict) -> dict[str, str]:
        """Column-valued params that need a type (param name -> type), e.g. topk's `by`."""
        return {}

    def column_arg(self, pname: str, args: dict) -> str | None:
        """The column that a param of `column_types` names (its value, unless the op says otherwise)."""
        return args.get(pname)

    def model_kinds(self, args: dict) -> dict[str, tuple[str, ...]]:
        """Model-valued params -> the model kinds this call can use there."""
        return {}

    def model_calls(self, args: dict) -> dict[str, tuple[str, ...]]:
        """Model-valued params -> what this call asks of that model (recipe.models.CALLS);
        the checker keeps the calls the model's kind has and asks its source for each."""
        return {}

    def expr_type(self, param: str) -> str | None:
        """The type an expression-valued param must have (filter's condition: bool)."""
        return None

    def exclusive(self) -> tuple[tuple[str, ...], ...]:
        """Groups of params of which a call may give at most one."""
        return ()

    def templates(self, args: dict) -> list[str]:
        """Text-template params (str.format style) whose placeholders name columns."""
        return []

    def files(self, args: dict) -> list[str]:
        """Files this call reads besides its input rows (templates), as given: their contents
        are part of the step's fingerprint, so an edited file re-runs the step."""
        return []

    def template_fields(self, args: dict) -> tuple[str, list[tuple[str, frozenset]]] | None:
        """For a call that renders templates read from a file: (the param naming the file,
        [(template name, the row fields it reads)]); None when it renders none or they do
        not load (`check` reports that)."""
        return None

    def models(self, args: dict) -> list[str]:
        return [args[p.name] for p in self.params if p.type == "model" and args.get(p.name)]

    def extra_inputs(self, args: dict) -> list[str]:
        """Nodes named by node-typed params (e.g. dedupe's `against`): dependencies too."""
        out = []
        for p in self.params:
            v = args.get(p.name)
            if p.type == "node" and v:
                out.append(v)
            elif p.type == "nodes" and v:
                out.extend(v)
        return out

    def joined(self, args: dict) -> list[str]:
        """Nodes whose columns this call adds to its rows (join): the checker adds their
        columns, and names a column both sides have."""
        return []

    def check(self, args: dict) -> list[tuple[str, str]]:
        """Cross-parameter checks: a list of (param name, message)."""
        return []

    def check_model(self, args: dict, pname: str, source: str) -> list[tuple[str, str, tuple[str, ...]]]:
        """Checks of this call's args against the model source that `pname` names (what a
        built-in model can answer): a list of (param name, message, hints)."""
        return []

    def check_inputs(self, args: dict, n_inputs: int) -> list[tuple[str, str]]:
        """Checks that need the number of input nodes (multi-input operators)."""
        return []

    # ---- execution -----------------------------------------------------------------
    def run(self, ctx, args: dict, inputs: list) -> None:  # pragma: no cover - abstract
        """The kernel: read `inputs` (recipe.table.Table), build the output through
        `ctx.out` (recipe.table.Output) exactly once."""
        raise NotImplementedError

    def finish(self, ctx, args: dict, out) -> None:
        """After `run`, with the step's output rows (a recipe.table.Table): what can only be
        said of the result (an expression's statistics, a column that came out empty), through
        `ctx.info` and `ctx.warn`."""

    def json_schema(self) -> dict:
        props = {p.name: p.json_schema() for p in self.params}
        s: dict = {"type": "object", "description": self.doc, "properties": props,
                   "additionalProperties": {} if self.variadic else False}
        req = [p.name for p in self.params if p.required]
        if req:
            s["required"] = req
        return s

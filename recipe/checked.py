"""What the checks resolve (`Checked`) and how an IR value reads under the params: shared by
the passes in check.py and check_io.py."""
from __future__ import annotations

from dataclasses import dataclass, field

from .ir import ListV, Lit, ParamRef, Recipe
from .paths import MODEL_PATH_OPTIONS, anchor


@dataclass
class Checked:
    """What the checks resolved, for the planner."""
    recipe: Recipe
    params: dict = field(default_factory=dict)             # param name -> value
    given: set = field(default_factory=set)                # params set from outside (command line, Python)
    args: dict = field(default_factory=dict)               # (node, op index) -> {name: value}
    columns: dict = field(default_factory=dict)            # node or source -> set | None (open)
    types: dict = field(default_factory=dict)              # node or source -> {column: type} | None
    source_errors: dict = field(default_factory=dict)      # source -> why its input cannot be read
    source_notes: dict = field(default_factory=dict)       # source -> why every row read was set aside
    source_splits: dict = field(default_factory=dict)      # source -> the dataset splits its files mix
    source_headers: dict = field(default_factory=dict)     # source -> (why its CSV header looks like a record, fields)
    sources_given: set = field(default_factory=set)        # sources whose path came from outside (--source, --set)
    diagnostics: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def value_of(v, params: dict):
    """IR value -> Python value, substituting params (expressions stay IR)."""
    if isinstance(v, Lit):
        return v.value
    if isinstance(v, ParamRef):
        return params.get(v.name)
    if isinstance(v, ListV):
        return [value_of(i, params) for i in v.items]
    return v


def path_value(v, recipe: Recipe, given: dict):
    """The value of a path written as `v`, openable from the working directory: a literal or a
    param's default is relative to the recipe file it is written in, a param set from outside
    (`given`: name -> value) to the working directory (`paths.anchor`); None without a value."""
    if isinstance(v, Lit):
        return anchor(v.value, v.span.file)
    if isinstance(v, ParamRef):
        if v.name in given:
            return given[v.name]
        decl = next((p for p in recipe.params if p.name == v.name), None)
        if decl is not None and decl.default is not None:
            return anchor(decl.default.value, decl.default.span.file)
    return None


def path_of(v, c: Checked):
    """`path_value` under the checked params (a value of another shape as it is, for the type check)."""
    if not isinstance(v, (Lit, ParamRef)):
        return value_of(v, c.params)
    return path_value(v, c.recipe, {k: c.params[k] for k in c.given if k in c.params})


def model_source(m, c: Checked):
    """A model's location (a path anchored as `path_of`); a fine-tuned model's is a model name."""
    return value_of(m.source, c.params) if m.kind == "finetune" else path_of(m.source, c)


def model_option(a, c: Checked):
    """A model option's value; a path (`tokenizer=`) anchored as `path_of`."""
    return path_of(a.value, c) if a.name in MODEL_PATH_OPTIONS else value_of(a.value, c.params)

"""What the checks resolve (`Checked`) and how an IR value reads under the params: shared by
the passes in check.py and check_io.py."""
from __future__ import annotations

from dataclasses import dataclass, field

from .ir import ListV, Lit, ParamRef, Recipe


@dataclass
class Checked:
    """What the checks resolved, for the planner."""
    recipe: Recipe
    params: dict = field(default_factory=dict)             # param name -> value
    args: dict = field(default_factory=dict)               # (node, op index) -> {name: value}
    columns: dict = field(default_factory=dict)            # node or source -> set | None (open)
    types: dict = field(default_factory=dict)              # node or source -> {column: type} | None
    source_errors: dict = field(default_factory=dict)      # source -> why its input cannot be read
    source_notes: dict = field(default_factory=dict)       # source -> why every row read was set aside
    source_splits: dict = field(default_factory=dict)      # source -> the dataset splits its files mix
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

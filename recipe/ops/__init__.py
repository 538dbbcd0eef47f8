"""The operator registry: one module per operator, registered here and nowhere else."""
from __future__ import annotations

from importlib import import_module

from .base import Op, P

__all__ = ["Op", "P", "get", "names"]

# op name -> module (imported on first use; heavy libraries load only inside `run`)
_MODULES = {
    "filter": "filter", "derive": "derive", "union": "union", "mix": "mix",
    "sample": "sample", "limit": "limit", "dedupe": "dedupe", "select": "select",
    "score": "score", "tag": "tag", "fuse": "fuse", "necessity": "necessity",
    "format_transfer": "format_transfer", "join": "join", "language": "language",
    "redact": "redact", "normalize": "normalize", "split_turns": "split_turns",
    "respond": "respond", "self_instruct": "self_instruct", "instances": "instances",
    "shuffle": "shuffle",
}
# steps the planner makes from declarations, never written in a pipeline
_INTERNAL = {"finetune": "finetune"}
_CACHE: dict[str, Op] = {}


def names() -> list[str]:
    return sorted(_MODULES)


def get(name: str, internal: bool = False) -> Op | None:
    """The operator `name` (with `internal`: also the planner's own steps)."""
    if name in _INTERNAL and internal:
        if name not in _CACHE:
            _CACHE[name] = import_module(f"{__name__}.{_INTERNAL[name]}").OP
        return _CACHE[name]
    if name not in _MODULES:
        return None
    if name not in _CACHE:
        mod = import_module(f"{__name__}.{_MODULES[name]}")
        _CACHE[name] = mod.OP
    return _CACHE[name]

"""The operator registry: one module per operator, registered here and nowhere else; and the
operators of installed plugin packages, found by their entry points (group `recipe.operators`,
`NAME = module:OP`). A plugin is code its user installed, like any library: a recipe names its
operator and cannot name where code comes from. Built-in operators win a name both claim."""
from __future__ import annotations

from functools import lru_cache
from importlib import import_module

from ..diagnostics import UserError
from .base import Op, P

__all__ = ["Op", "P", "get", "names", "plugins"]

GROUP = "recipe.operators"

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


def names(plugins_too: bool = True) -> list[str]:
    """The operators a recipe may name (built-in ones only with `plugins_too=False`: the JSON
    Schema committed with the package)."""
    return sorted(set(_MODULES) | (set(plugins()) if plugins_too else set()))


@lru_cache(maxsize=None)
def plugins() -> dict[str, object]:
    """Installed plugin operators: {name: its entry point} (read once a process)."""
    from importlib import metadata
    found = {}
    for ep in metadata.entry_points(group=GROUP):
        if ep.name not in _MODULES and ep.name not in _INTERNAL and ep.name not in found:
            found[ep.name] = ep
    return found


def plugin_of(name: str) -> str | None:
    """The distribution (`name version`) a plugin operator comes from; None for a built-in."""
    ep = plugins().get(name) if name not in _MODULES else None
    if ep is None:
        return None
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def _load_plugin(name: str) -> Op:
    ep = plugins()[name]
    try:
        op = ep.load()
    except Exception as e:  # noqa: BLE001 - a broken plugin is said, with its package, not a traceback
        raise UserError(f"operator `{name}` comes from the plugin {plugin_of(name)} ({ep.value}), which failed to "
                        f"load: {type(e).__name__}: {e}") from None
    if isinstance(op, type) and issubclass(op, Op):
        op = op()
    if not isinstance(op, Op) or op.name != name:
        raise UserError(f"the plugin entry point `{name} = {ep.value}` ({plugin_of(name)}) must name an "
                        f"operator (a recipe.ops.Op) whose `name` is `{name}`")
    return op


def get(name: str, internal: bool = False) -> Op | None:
    """The operator `name` (with `internal`: also the planner's own steps)."""
    if name in _INTERNAL and internal:
        if name not in _CACHE:
            _CACHE[name] = import_module(f"{__name__}.{_INTERNAL[name]}").OP
        return _CACHE[name]
    if name not in _MODULES:
        if name not in plugins():
            return None
        if name not in _CACHE:
            _CACHE[name] = _load_plugin(name)
        return _CACHE[name]
    if name not in _CACHE:
        mod = import_module(f"{__name__}.{_MODULES[name]}")
        _CACHE[name] = mod.OP
    return _CACHE[name]

"""The compiled loops (numba, `cache=True`) on disk: a fresh install compiles them on first
use, which made a first small MinHash dedupe take 10 s instead of 1 s with no word why.
`missing()` says which are not compiled yet, so a run can say it once; `python -m recipe.warm`
compiles them ahead (`make setup` runs it)."""
from __future__ import annotations

import importlib
import os

MODULES = ("recipe.algorithms.kernels", "recipe.io.newlines", "recipe.io.arrow_array", "recipe.io.json_text")


def _dispatchers():
    from numba.core.registry import CPUDispatcher
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr, value in sorted(vars(mod).items()):
            if isinstance(value, CPUDispatcher) and value.__module__ == name:
                yield f"{name}.{attr}", value


def _standalone():
    """The loops compiled on their own (those inlined into their callers never are)."""
    return [(n, d) for n, d in _dispatchers() if d.targetoptions.get("inline") != "always"]


def _state() -> tuple[list[str], int]:
    """(the loops with no compiled code on disk, how many there are); ([], 0) where numba's
    internals are not the ones known here: this only informs."""
    try:
        every = _standalone()
        return [n for n, d in every if not os.path.exists(d._cache._cache_file._index_path)], len(every)
    except Exception:  # pragma: no cover - another numba's internals
        return [], 0


def missing() -> list[str]:
    """The compiled loops with no compiled code on disk (none once `recipe.warm` or a run has used
    them)."""
    return _state()[0]


def note(log) -> None:
    """Say, before the steps run, that the compiled loops will compile on first use: only where
    none is on disk (a fresh install), since a user whose recipes never take some paths would
    otherwise hear it on every run."""
    todo, every = _state()
    if todo and len(todo) == every:
        log(f"  note: the {len(todo)} compiled loops are not on disk yet (a fresh install): the steps that use them "
            "compile them first (10-20 s once; `python -m recipe.warm` does it ahead)")

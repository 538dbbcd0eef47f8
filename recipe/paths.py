"""What a path in a recipe is relative to: the folder of the file it is written in (a recipe
used by another reads its files beside itself, not beside the recipe that uses it); a path
given from outside (the command line, Python) to the working directory."""
from __future__ import annotations

import os
from pathlib import Path

# locations that are not paths
NOT_PATHS = ("builtin:", "openai:", "finetuned:", "stdlib:")
MODEL_PATH_OPTIONS = ("tokenizer",)  # model options whose value is a path


def anchor(path, written_in: str | None):
    """`path` as the process can open it: joined to the folder of `written_in` (the recipe
    file that holds it; None or "<string>" for text given from outside: left as it is)."""
    if not isinstance(path, str) or not path or path.startswith(NOT_PATHS) or written_in in (None, "<string>", "<none>"):
        return path
    if os.path.isabs(os.path.expanduser(path)):
        return path
    return os.path.join(os.path.dirname(written_in), path)


def user_cache_dir() -> Path:
    """Where converted weights, model results and remembered file digests live, shared by
    every project of a user: $RECIPE_CACHE_HOME, else $XDG_CACHE_HOME/recipe, else
    ~/.cache/recipe. (The step cache stays per project, under --cache-dir.)"""
    if os.environ.get("RECIPE_CACHE_HOME"):
        return Path(os.environ["RECIPE_CACHE_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recipe"

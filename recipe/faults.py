"""Fault injection for the crash tests, and atomic writes: a leaf module, so that every
layer that writes or may be killed mid-way (engine, model runtime) can use it."""
from __future__ import annotations

import os
from pathlib import Path

from .diagnostics import UserError


def fault(point: str) -> None:
    """Fault injection for the crash tests: RECIPE_FAULT_INJECT=<point> kills the process
    with SIGKILL when execution reaches that point (never set in normal use)."""
    if os.environ.get("RECIPE_FAULT_INJECT") == point:
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        fault(f"write:{path.name}")
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise UserError(f"cannot write {path}: {e.strerror}")

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


def fault_once(point: str, wanted: str | None, claim: Path) -> None:
    """`fault` for processes that do not share the driver's environment (Ray workers): the
    driver passes its RECIPE_FAULT_INJECT as `wanted`; the first process to create `claim`
    dies, so a retried task then completes."""
    if wanted != point:
        return
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


class atomic_file:
    """A file written under a hidden temporary name, fsynced and renamed into place when the
    block ends without an error (removed when it does not): a reader, or a run killed
    midway, never sees a half-written file under its final name.

        with atomic_file(path) as fh:
            for line in lines:
                fh.write(line)
    """

    def __init__(self, path: Path, mode: str = "w"):
        self.path, self.mode = Path(path), mode
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")

    def __enter__(self):
        try:
            self.fh = (open(self.tmp, "wb") if "b" in self.mode else
                       open(self.tmp, "w", encoding="utf-8", newline=""))
        except OSError as e:
            raise UserError(f"cannot write {self.path}: {e.strerror}")
        return self.fh

    def __exit__(self, kind, exc, tb):
        try:
            if kind is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
            self.fh.close()
            if kind is None:
                fault(f"write:{self.path.name}")
                os.replace(self.tmp, self.path)
                return False
        except OSError as e:
            self._drop()
            raise UserError(f"cannot write {self.path}: {e.strerror}")
        self._drop()
        return False

    def _drop(self) -> None:
        try:
            self.tmp.unlink()
        except OSError:
            pass


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

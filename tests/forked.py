"""`recipe` command lines run in processes forked from one that has already imported torch,
transformers and `recipe` (a fresh interpreter spends 5-10 s of CPU on those imports on this
2-core machine, and the crash tests start dozens of runs).

Each run is still a process of its own, as `python -m recipe` would be: its own pid (a
fault point's SIGKILL kills it alone), its own environment (the caller's, as passed),
its exit status, and stdout/stderr captured as a subprocess's. The forking process
(multiprocessing's fork server) only imports; it never runs anything, so nothing a run
does is inherited by the next.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import tempfile

# the slow imports that start no thread (a process that forks must not have threads that
# may hold a lock: DuckDB and pyarrow, and pandas through it, start one); `recipe` itself
# imports in 0.2 s
PRELOAD = ["torch", "transformers", "transformers.models.llama.modeling_llama",
           "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto", "numba",
           "forked"]
_ctx = None


def _context():
    global _ctx
    if _ctx is None:
        _ctx = mp.get_context("forkserver")
        _ctx.set_forkserver_preload(PRELOAD)
    return _ctx


def _child(argv: list[str], env: dict, out: str, err: str) -> None:
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(f, fd)
        os.close(f)
    from recipe.cli import main
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


class Run:
    """A started run: `pid`, `send_signal(sig)`, `wait(timeout)` -> returncode (negative: the signal
    that ended it, as subprocess says), then `stdout` and `stderr`."""

    def __init__(self, argv: list[str], env: dict | None = None):
        self._dir = tempfile.mkdtemp(prefix="recipe-forked-")
        self._out, self._err = os.path.join(self._dir, "out"), os.path.join(self._dir, "err")
        self._p = _context().Process(target=_child, args=(list(argv), dict(env if env is not None else os.environ),
                                                          self._out, self._err))
        self._p.start()
        self.pid = self._p.pid
        self.returncode = None
        self.stdout = self.stderr = ""

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        self._p.join(timeout)
        if self._p.exitcode is None:
            self._p.kill()
            self._p.join()
            raise subprocess.TimeoutExpired(["recipe", "(forked)"], timeout)
        self.returncode = self._p.exitcode
        for name, path in (("stdout", self._out), ("stderr", self._err)):
            with open(path, encoding="utf-8", errors="replace") as fh:
                setattr(self, name, fh.read())
        for path in (self._out, self._err):
            os.unlink(path)
        os.rmdir(self._dir)
        return self.returncode


def run(argv: list[str], env: dict | None = None, timeout: float = 300) -> Run:
    """`python -m recipe ARGV`, forked: the finished `Run` (returncode, stdout, stderr)."""
    r = Run(argv, env)
    r.wait(timeout)
    return r

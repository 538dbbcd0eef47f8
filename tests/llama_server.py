"""A real OpenAI-compatible server for tests and benchmarks: llama-cpp-python's, serving the
built-in SmolLM2 GGUF on loopback (installed by `make setup`: the `server` extra).

SmolLM2's GGUF does not add a BOS token, and llama-cpp-python's echoed prompt
log-probabilities are then shifted by one token (its issue #1983); with BOS added they are
right, so the server starts with that override and recipes compare with `bos=true`.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def _die_with_parent() -> None:
    """The server is killed when the test process dies, even by SIGKILL or a timeout that
    skips fixture teardown (Linux; elsewhere only teardown stops it)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> str:
    from recipe.runtime.resolve import resolve
    r = resolve("builtin:smollm2")
    return str(r.path / r.gguf_file)


class LlamaServer:
    """`with LlamaServer() as s:` ... `s.url` is the /v1 base; `s.kill()` and `s.start()`."""

    def __init__(self, port: int | None = None, bos: bool = True, threads: int = 2, log: str | None = None):
        self.port = port or free_port()
        self.bos, self.threads, self.log = bos, threads, log
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> "LlamaServer":
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", smollm2_gguf(), "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--n_threads", str(self.threads),
               "--n_threads_batch", str(self.threads), "--logits_all", "true", "--embedding", "false"]
        if self.bos:
            cmd += ["--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true"]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.url + "/models", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.3)
        self.kill()
        raise RuntimeError("llama_cpp.server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()

"""What an endpoint can do, found by two tiny requests and remembered for a day.

`echo`: does `/completions` return prompt log-probabilities, aligned with their tokens?
(llama-cpp-python's are shifted by one for a model without a BOS token: each prompt token
gets the probability of itself as the *next* token.) Told apart with a greedy one-token
completion: the generated token must be the most likely one at its own position.
`lists`: does `/completions` take a list of prompts?
`plan` and `run` probe the endpoints whose recipes leave these undeclared (`echo=`,
`batch=`), and a problem is a diagnostic on the model's line before anything runs.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..diagnostics import Diagnostic, UserError
from ..models import ModelDecl

PROBE_TEXT = "The capital of France is Paris. The capital of Italy is"
FRESH_SECONDS = 24 * 3600
ECHO_PROBLEMS = {
    "none": "the server returns no prompt log-probabilities (`echo` with `logprobs` on /completions), "
            "which IFD, perplexity and loss need",
    "shifted": "the server's prompt log-probabilities are shifted by one token (llama-cpp-python does this for "
               "a model without a BOS token)",
}
ECHO_HINTS = {
    "none": "serve the model with vLLM (it returns them), or score with a local copy of the model",
    "shifted": "start llama-cpp-python with `--kv_overrides tokenizer.ggml.add_bos_token=bool:true` and declare "
               "bos=true on the model (and on a local copy you compare with)",
}


def _store(cache_dir: Path) -> Path:
    return Path(cache_dir) / "probes.json"


def probe(client, model: str, decl: ModelDecl, cache_dir: Path | None = None) -> dict:
    """{"echo": "ok" | "none" | "shifted", "lists": bool} for the server behind `client`."""
    if cache_dir is None:
        from . import user_cache_dir
        cache_dir = user_cache_dir() / "models"
    path, k = _store(cache_dir), f"{client.url}#{model}"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if k in known and time.time() - known[k].get("at", 0) < FRESH_SECONDS:
        return known[k]
    from .endpoint import Client
    quick = Client(client.url, client.label, 1, 0, min(client.timeout, 60.0))  # no retries: a failure is an answer
    quick.headers = client.headers
    caps = {"echo": _echo(quick, model), "lists": _lists(quick, model), "at": time.time()}
    known[k] = caps
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs a probe next time
    return caps


def _echo(client, model: str) -> str:
    from .endpoint import EndpointDown
    try:
        r = client.run("/completions", [{"model": model, "prompt": PROBE_TEXT, "max_tokens": 1, "temperature": 0,
                                         "echo": True, "logprobs": 1}])[0]
    except EndpointDown as e:
        if "stayed down" in str(e) and "HTTP" not in str(e):
            raise  # unreachable: say so, rather than call it incapable
        return "none"
    lp = r["choices"][0].get("logprobs") or {}
    offs, tops, toks = lp.get("text_offset") or [], lp.get("top_logprobs") or [], lp.get("tokens") or []
    if not any(v is not None for v in (lp.get("token_logprobs") or [])[:-1]) or len(tops) < 3 or len(toks) != len(tops):
        return "none"
    gen = toks[-1]

    def best(d):
        return max(d, key=d.get) if d else None
    if best(tops[-1]) == gen:
        return "ok"
    return "shifted" if best(tops[-2]) == gen else "ok"


def _lists(client, model: str) -> bool:
    from .endpoint import EndpointDown
    try:
        r = client.run("/completions", [{"model": model, "prompt": ["One", "Two"], "max_tokens": 1, "temperature": 0}])[0]
    except (EndpointDown, UserError):
        return False
    return len(r.get("choices") or []) == 2


def probe_diagnostics(c, cache_dir: Path | None = None) -> list[Diagnostic]:
    """Diagnostics on the model lines of endpoints that an operator asks for prompt
    log-probabilities while the recipe does not declare `echo=`: the probe answers."""
    from .. import ops as registry
    from ..check import _call_text
    from ..checked import model_option, model_source
    from .endpoint import Client, api_key
    wanted: dict[str, str] = {}  # model name -> the operator call that needs echo
    for node in c.recipe.nodes:
        for i, op in enumerate(node.ops):
            spec, args = registry.get(op.op), c.args.get((node.name, i))
            if spec is None or args is None:
                continue
            for pname, calls in spec.model_calls(args).items():
                if {"loglik", "loglik_chat"} & set(calls) and args.get(pname):
                    wanted.setdefault(args[pname], _call_text(op, args))
    out = []
    for m in c.recipe.models:
        src = model_source(m, c)
        if m.name not in wanted or not isinstance(src, str) or not src.startswith("openai:") or m.kind != "causal_lm":
            continue
        opts = {a.name: model_option(a, c) for a in m.options}
        if "echo" in opts:
            continue  # declared: the check already judged it
        from .resolve import resolve
        res = resolve(src)
        decl = ModelDecl(m.kind, src, opts)
        client = Client(res.url, f"model {src}", 1, 0, opts.get("timeout", 60.0), api_key(decl))
        echo = probe(client, res.model, decl, cache_dir)["echo"]
        if echo != "ok":
            out.append(Diagnostic("E0311", f"{wanted[m.name]} needs prompt log-probabilities from `{m.name}`: "
                                  f"{ECHO_PROBLEMS[echo]}", m.source.span, (ECHO_HINTS[echo],)))
    return out

"""The endpoint backend: an OpenAI-compatible server (vLLM, SGLang, llama.cpp, a hosted API).

Requests go out through one async httpx client with `concurrency` in flight (default 64: a
vLLM server reaches its throughput only with dozens to hundreds), lists where the API takes
them (`/embeddings` always; `/completions` when the server accepts a list of prompts),
retries with backoff that honour 429 and Retry-After, a per-model rate limit, timeouts, and
the API key from the environment variable the model names. When the server stays down the
results that came back are handed to the result cache before the error, so a re-run sends
only what is missing.

Prompt log-probabilities come from `/completions` with `echo`; a probe (recipe/runtime/probe.py)
checks once per server that it returns them, and aligned with their tokens.
"""
from __future__ import annotations

import asyncio
import math
import os
import threading
import time

import numpy as np

from ..diagnostics import UserError
from ..models import ModelDecl
from .backends import Chat, finished

EMBED_BATCH = 64


CONCURRENCY = 64  # requests in flight by default


class EndpointDown(UserError):
    """The server stayed down (or kept failing). `done` maps the index of each request that
    came back to its response, so the caller can keep them."""
    name_step = True  # the engine prefixes the failing step's name

    def __init__(self, msg: str, done: dict | None = None):
        super().__init__(msg)
        self.done = done or {}


def retry_after(value: str | None, default: float) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date), at most a minute."""
    if not value:
        return default
    try:
        return min(60.0, max(0.0, float(value)))
    except ValueError:
        from email.utils import parsedate_to_datetime
        try:
            return min(60.0, max(0.0, parsedate_to_datetime(value).timestamp() - time.time()))
        except (TypeError, ValueError):
            return default


def api_key(decl: ModelDecl) -> str | None:
    """The key from the environment variable `api_key_env` names (a recipe names the
    variable, never the key, so no key reaches a recipe, a plan or a manifest)."""
    name = decl.options.get("api_key_env")
    if not name:
        return None
    if not os.environ.get(name):
        raise UserError(f"model {decl.source}: the environment variable {name} (its api_key_env) is not set")
    return os.environ[name]


class Client:
    """POSTs JSON bodies to one server, `concurrency` at a time, in order of results."""

    def __init__(self, url: str, label: str, concurrency: int = CONCURRENCY, retries: int = 3, timeout: float = 300.0,
                 api_key: str | None = None, rate_limit: float | None = None):
        self.url, self.label = url.rstrip("/"), label
        self.concurrency, self.retries, self.timeout = max(1, int(concurrency)), int(retries), float(timeout)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.interval = 1.0 / float(rate_limit) if rate_limit else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self.sent = 0  # requests sent, retries included (benchmarks and tests read it)
        self.answered = 0
        self.record: list | None = None  # (path, body) of each request, when a list (bench/endpoint.py)
        self.stat = None  # the runtime's ModelStats of the model, which counts `sent` too

    def slot(self) -> float:
        """Seconds to wait before the next request starts, under the rate limit."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        return start - now

    async def _post(self, http, path: str, body: dict) -> dict:
        import httpx
        last = ""
        for attempt in range(self.retries + 1):
            wait = min(8.0, 0.25 * 2 ** attempt)
            try:
                if (w := self.slot()) > 0:
                    await asyncio.sleep(w)
                self.sent += 1
                if self.stat is not None:
                    self.stat.sent += 1
                r = await http.post(self.url + path, json=body)
                if r.status_code == 200:
                    self.answered += 1
                    return r.json()
                last = f"HTTP {r.status_code}: {r.text[:200].strip()}"
                if r.status_code < 500 and r.status_code != 429:
                    raise UserError(f"{self.label}: {path} answered {last}")  # a request it will never take
                wait = retry_after(r.headers.get("Retry-After"), wait)  # the server says when
            except (httpx.TransportError, ValueError) as e:  # refused, reset, timed out, not JSON
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if attempt < self.retries:
                await asyncio.sleep(wait)
        tries = "1 try" if self.retries == 0 else f"{self.retries + 1} tries"
        raise EndpointDown(f"{self.label} stayed down: {last} (after {tries} of {path}); "
                           "restart it and run again: the results that came back are cached")

    async def _run(self, path: str, bodies: list[dict], progress) -> list[dict]:
        import httpx
        out: dict[int, dict] = {}
        queue = list(range(len(bodies)))[::-1]
        failed: list[BaseException] = []
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits, headers=self.headers) as http:
            async def worker():
                while queue and not failed:
                    i = queue.pop()
                    try:
                        out[i] = await self._post(http, path, bodies[i])
                    except BaseException as e:  # stop handing out work; keep what came back
                        failed.append(e)
                        return
                    if progress:
                        progress(len(out), len(bodies))
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(bodies)))))
        if failed:
            e = failed[0]
            if isinstance(e, UserError):
                raise EndpointDown(str(e), dict(out)) from None
            raise e
        return [out[i] for i in range(len(bodies))]

    def run(self, path: str, bodies: list[dict], progress=None) -> list[dict]:
        """The responses to `bodies`, in order."""
        if not bodies:
            return []
        if self.record is not None:
            self.record += [(path, b) for b in bodies]
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run(path, bodies, progress))
        # called from inside an event loop (a notebook): run ours on a thread of its own
        box: list = []
        t = threading.Thread(target=lambda: box.append(_capture(lambda: asyncio.run(self._run(path, bodies, progress)))))
        t.start()
        t.join()
        ok, val = box[0]
        if not ok:
            raise val
        return val


def _capture(fn):
    try:
        return True, fn()
    except BaseException as e:
        return False, e


class EndpointBackend:
    """A model served over the OpenAI API. `tokenizer=` (a local copy of the served model's
    tokenizer) lets it render the chat template itself and count tokens exactly; without
    one, chat turns go to `/chat/completions` and the server applies its template."""

    def __init__(self, rt, decl: ModelDecl, res):
        o = decl.options
        self.decl, self.rt, self.model = decl, rt, res.model
        self.client = Client(res.url, f"model {decl.source}", o.get("concurrency", CONCURRENCY), o.get("retries", 3),
                             o.get("timeout", 300.0), api_key(decl), o.get("rate_limit"))
        self.client.stat = rt._stat(decl)
        self.tok = None
        if o.get("tokenizer"):
            from .hf import CausalLM
            from .resolve import resolve
            self.tok = CausalLM(resolve(o["tokenizer"]), rt.weights_dir, "cpu", None, rt.log)  # weights never load
        self._caps: dict | None = None

    def capabilities(self) -> dict:
        """What the server does beyond the basics (the probe's answer, cached per server)."""
        if self._caps is None:
            from .probe import probe
            self._caps = probe(self.client, self.model, self.decl, self.rt.cache_dir)
        return self._caps

    def _batch(self) -> int:
        b = self.decl.options.get("batch")
        return int(b) if b else (16 if self.capabilities().get("lists") else 1)

    def _kept(self, items: list, per: int, path: str, bodies: list[dict], parse, progress) -> list:
        """Results of the requests, `per` items each, parsed per item; when the server stays
        down, the items whose requests came back go with the error (`EndpointDown.done`)."""
        try:
            res = self.client.run(path, bodies, progress and (lambda d, t: progress(min(len(items), d * per), len(items))))
        except EndpointDown as e:
            done = {}
            for j, r in e.done.items():
                for k, v in enumerate(parse(r, j)):
                    done[j * per + k] = v
            raise EndpointDown(str(e), done) from None
        return [v for j, r in enumerate(res) for v in parse(r, j)]

    # ---- calls ---------------------------------------------------------------------------
    def embed(self, texts, progress=None) -> np.ndarray:
        per = int(self.decl.options.get("batch") or EMBED_BATCH)
        chunks = [texts[i:i + per] for i in range(0, len(texts), per)]
        bodies = [{"model": self.model, "input": c} for c in chunks]
        vecs = self._kept(texts, per, "/embeddings", bodies,
                          lambda r, j: [d["embedding"] for d in sorted(r["data"], key=lambda d: d["index"])], progress)
        return np.asarray(vecs, dtype=np.float32)

    def _echo_ok(self) -> str:
        """"ok" when the server returns aligned prompt log-probabilities (declared or probed)."""
        declared = self.decl.options.get("echo")
        return ("ok" if declared else "none") if declared is not None else self.capabilities().get("echo", "none")

    def _echoed(self, pairs, progress, first: bool = False) -> list[dict]:
        """Log-probabilities of each continuation after its prompt (of its first token alone
        with `first`), from echoed one-token completions."""
        per = self._batch()
        groups = [pairs[i:i + per] for i in range(0, len(pairs), per)]
        bodies = [{"model": self.model, "prompt": [p + c for p, c in g] if per > 1 else g[0][0] + g[0][1],
                   "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 0} for g in groups]

        def parse(r, j):
            ch = sorted(r["choices"], key=lambda c: c.get("index", 0))
            return [continuation_logprob(x, p, c, first) for x, (p, c) in zip(ch, groups[j])]
        return self._kept(pairs, per, "/completions", bodies, parse, progress)

    def loglik(self, pairs, progress=None) -> list[dict]:
        if any(isinstance(p, Chat) for p, _ in pairs):
            raise UserError(f"model {self.decl.source}: scoring under the chat template needs tokenizer=\"...\" on the model")
        why = self._echo_ok()
        if why != "ok":
            from .probe import ECHO_HINTS, ECHO_PROBLEMS
            raise UserError(f"model {self.decl.source}: {ECHO_PROBLEMS[why]}; {ECHO_HINTS[why]}")
        return self._echoed(pairs, progress)

    def choice_probs(self, prompts, choices, progress=None) -> list[list[float]]:
        """Each choice's probability as the next token, from the top `top_logprobs` (default
        20) log-probabilities of a one-token completion. A choice outside them, after a raw
        prompt on a server with prompt log-probabilities, is computed exactly by echoing
        prompt + choice; otherwise it gets 0."""
        top = int(self.decl.options.get("top_logprobs", 20))
        bodies = []
        for p in prompts:
            if isinstance(p, Chat):
                bodies.append(("/chat/completions", {"model": self.model, "messages": p.messages(), "max_tokens": 1,
                                                     "temperature": 0, "logprobs": True, "top_logprobs": min(top, 20)}))
            else:
                bodies.append(("/completions", {"model": self.model, "prompt": p, "max_tokens": 1,
                                                "temperature": 0, "logprobs": top}))
        try:
            out = self._by_path(prompts, bodies, lambda r: [choice_probs(r, choices)], progress)
        except EndpointDown as e:
            raise EndpointDown(str(e), {i: v for i, v in e.done.items() if None not in v}) from None
        missing = [(i, j) for i, v in enumerate(out) for j, x in enumerate(v)
                   if x is None and not isinstance(prompts[i], Chat)]
        exact = self._echoed([(prompts[i], choices[j]) for i, j in missing], None, first=True) \
            if missing and self._echo_ok() == "ok" else [{"tokens": 0}] * len(missing)
        for (i, j), r in zip(missing, exact):
            out[i][j] = math.exp(r["logprob"]) if r["tokens"] else 0.0
        return [[0.0 if x is None else x for x in v] for v in out]

    def generate(self, prompts, n, max_new_tokens, temperature, seed, progress=None, stop=None,
                 ends=False) -> list[list]:
        out = self._generate(prompts, n, max_new_tokens, temperature, seed, progress, stop)
        return finished([[t for t, _ in outs] for outs in out], [[c for _, c in outs] for outs in out], stop, ends)

    def _generate(self, prompts, n, max_new_tokens, temperature, seed, progress, stop) -> list[list[tuple]]:
        """Each prompt's completions as (text, cut): the server's `finish_reason` says "length"."""
        bodies = []
        for p in prompts:
            base = {"model": self.model, "max_tokens": max_new_tokens, "temperature": temperature, "seed": seed, "n": n}
            if stop:
                base["stop"] = list(stop)
            bodies.append(("/chat/completions", base | {"messages": p.messages()}) if isinstance(p, Chat)
                          else ("/completions", base | {"prompt": p}))
        out = self._by_path(prompts, bodies, lambda r: [ends_of(r)], progress)
        short = [i for i, t in enumerate(out) if len(t) < n]
        if short:  # a server that ignores `n` (llama.cpp): one request per further sample, seeds apart
            more = [(bodies[i][0], bodies[i][1] | {"n": 1, "seed": seed + k}) for i in short for k in range(len(out[i]), n)]
            try:
                extra = iter(self._by_path(more, more, lambda r: [ends_of(r)[:1]], None))
            except EndpointDown as e:
                raise EndpointDown(str(e), {i: t for i, t in enumerate(out) if i not in short}) from None
            for i in short:
                out[i] = out[i] + [t for _ in range(len(out[i]), n) for t in next(extra)]
        return out

    def _by_path(self, items, bodies, parse, progress) -> list:
        """One request per item, each to its own path (chat turns and raw prompts may mix)."""
        out: dict = {}
        for path in dict.fromkeys(p for p, _ in bodies):
            idx = [i for i, (p, _) in enumerate(bodies) if p == path]
            try:
                res = self._kept(idx, 1, path, [bodies[i][1] for i in idx], lambda r, j: parse(r), progress)
            except EndpointDown as e:
                raise EndpointDown(str(e), out | {idx[j]: v for j, v in e.done.items()}) from None
            out.update(zip(idx, res))
        return [out[i] for i in range(len(items))]

    def chat(self, user: str, system: str | None = None) -> str:
        return self.tok.chat(user, system) if self.tok is not None else Chat(user, system)

    def chat_turns(self, turns: list[dict]) -> str:
        return self.tok.chat_turns(turns) if self.tok is not None else Chat.of(turns)

    def context_length(self) -> int | None:
        """The served model's context, when the declaration gives it (`context=`)."""
        c = self.decl.options.get("context")
        return int(c) if c else None

    def count_tokens(self, text: str) -> int:
        return len(self.tok.encode(text)) if self.tok is not None else len(text.split())

    def token_counts(self, items: list) -> list[int]:
        from .batching import token_counts, word_counts
        return token_counts(self.tok.tok, items) if self.tok is not None else word_counts(items)


def continuation_logprob(choice: dict, prompt: str, cont: str, first: bool = False) -> dict:
    """Summed log-probability of the continuation's tokens, from an echoed completion whose
    text is prompt + continuation + what the server generated. Offsets are measured from
    the end: servers that drop special tokens from their offsets (llama.cpp) count the
    prompt shorter than it is, never the plain-text continuation. Tokens without text (BOS)
    are skipped; with an empty prompt the first token is not scored (it has no context: the
    same rule as the local backend). `first`: the first token's alone."""
    lp = choice["logprobs"]
    offs, vals = lp["text_offset"], lp["token_logprobs"]
    toks = lp.get("tokens")
    if toks and isinstance(choice.get("text"), str) and len(choice["text"]) >= len(prompt) + len(cont):
        generated = len(choice["text"]) - len(prompt) - len(cont)
        end = offs[-1] + len(toks[-1]) - generated
    else:
        end, toks = len(prompt) + len(cont), [None] * len(offs)
    picked = [v for o, v, t in zip(offs, vals, toks) if end - len(cont) <= o < end and t != ""]
    if not prompt:
        picked = picked[1:]
    got = [float(v) for v in picked if v is not None][:1 if first else None]
    return {"logprob": sum(got), "tokens": len(got)}


def choice_probs(r: dict, choices: list[str]) -> list[float]:
    """Probabilities of the choices as the first generated token, from the response's top
    log-probabilities (a chat or a completion response). A
    choice matches its own token text, else that text with surrounding spaces; None when the
    choice is not among them."""
    ch = r["choices"][0]
    lp = ch.get("logprobs") or {}
    if "content" in lp:  # chat: [{token, logprob, top_logprobs: [{token, logprob}]}]
        first = (lp.get("content") or [{}])[0]
        top = {t["token"]: t["logprob"] for t in first.get("top_logprobs", [])}
    else:  # completion: top_logprobs: [{token: logprob}]
        top = dict(((lp.get("top_logprobs") or [None])[0]) or {})
    out = []
    for c in choices:
        v = top.get(c)
        if v is None:
            v = max((x for t, x in top.items() if t.strip() == c), default=None)
        out.append(math.exp(v) if v is not None else None)
    return out


def ends_of(r: dict) -> list[tuple[str, bool]]:
    """A response's completions as (text, cut): OpenAI's `finish_reason` is "length" where the
    token limit (or the context) ended one."""
    ch = sorted(r["choices"], key=lambda c: c.get("index", 0))
    return [((c.get("message") or {}).get("content") or c.get("text") or "", c.get("finish_reason") == "length")
            for c in ch]

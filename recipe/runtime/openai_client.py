"""An OpenAI-compatible endpoint (vLLM, llama.cpp server, ...): embeddings, completions with
log-probabilities, and chat generation; concurrency-limited and retried. Standard library only."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import threading
from concurrent.futures import ThreadPoolExecutor

from ..diagnostics import UserError


def _retry_after(value: str | None, default: float) -> float:
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


class Endpoint:
    def __init__(self, url: str, model: str, concurrency: int = 64, retries: int = 3, timeout: float = 120.0,
                 api_key: str | None = None, rate_limit: float | None = None):
        """`concurrency`: requests in flight (a vLLM server needs dozens to reach its
        throughput); `rate_limit`: at most this many requests started per second."""
        self.url, self.model = url.rstrip("/"), model
        self.concurrency, self.retries, self.timeout = max(1, int(concurrency)), int(retries), timeout
        self.api_key = api_key
        self.interval = 1.0 / float(rate_limit) if rate_limit else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def _pace(self) -> None:
        """Wait for this request's slot under the rate limit."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)

    def _post(self, path: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = None
        for attempt in range(self.retries + 1):
            wait = min(8.0, 0.25 * 2 ** attempt)
            try:
                self._pace()
                req = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
                if e.code < 500 and e.code != 429:
                    break
                wait = _retry_after(e.headers.get("Retry-After"), wait)  # the server says when
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as e:
                last = str(getattr(e, "reason", e))
            if attempt < self.retries:
                time.sleep(wait)
        raise UserError(f"endpoint {self.url}{path} failed after {self.retries + 1} tries: {last}")

    def _map(self, fn, items):
        with ThreadPoolExecutor(self.concurrency) as ex:
            return list(ex.map(fn, items))

    def embed(self, texts: list[str]) -> list[list[float]]:
        chunks = [texts[i:i + 64] for i in range(0, len(texts), 64)]
        res = self._map(lambda c: self._post("/embeddings", {"model": self.model, "input": c}), chunks)
        out = []
        for r in res:
            out += [d["embedding"] for d in sorted(r["data"], key=lambda d: d["index"])]
        return out

    def loglik(self, pairs: list[tuple[str, str]]) -> list[dict]:
        """Uses `echo` + `logprobs` on /completions (supported by vLLM) and the returned text offsets."""
        def one(pc):
            p, c = pc
            r = self._post("/completions", {"model": self.model, "prompt": p + c, "max_tokens": 0,
                                            "echo": True, "logprobs": 0})
            lp = r["choices"][0]["logprobs"]
            total, n = 0.0, 0
            for off, val in zip(lp["text_offset"], lp["token_logprobs"]):
                if off >= len(p) and val is not None:
                    total += val
                    n += 1
            return {"logprob": total, "tokens": n}
        return self._map(one, pairs)

    def choice_probs(self, prompts: list[str], choices: list[str]) -> list[list[float]]:
        """Probabilities of the choices as the first generated token, from the endpoint's
        `top_logprobs` (choices outside the top 20 get 0)."""
        import math

        def one(p):
            r = self._post("/chat/completions", {"model": self.model, "messages": [{"role": "user", "content": p}],
                                                 "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20})
            content = (r["choices"][0].get("logprobs") or {}).get("content") or [{}]
            top = {t["token"].strip(): math.exp(t["logprob"]) for t in content[0].get("top_logprobs", [])}
            return [top.get(c, 0.0) for c in choices]
        return self._map(one, prompts)

    def generate(self, prompts: list[str], max_new_tokens: int, temperature: float, seed: int, n: int) -> list[list[str]]:
        def one(p):
            r = self._post("/chat/completions", {"model": self.model, "messages": [{"role": "user", "content": p}],
                                                 "max_tokens": max_new_tokens, "temperature": temperature,
                                                 "seed": seed, "n": n})
            return [ch["message"]["content"] or "" for ch in r["choices"]]
        return self._map(one, prompts)

"""The endpoint backend's throughput against a real server, next to the `openai` async client
sending the same requests at the same concurrency, and a one-request-at-a-time loop.

    .venv/bin/python bench/endpoint.py [--items 48] [--gen-items 12] [--concurrency 64]

A llama-cpp-python server (SmolLM2-135M GGUF, 2 threads) runs on loopback. For each
workload (scoring: IFD-style log-likelihoods by echo; judging: choice probabilities;
generation: 64 new tokens) our backend computes the items with an empty result cache while
its requests are recorded; the openai client then replays exactly those requests
(AsyncOpenAI, a semaphore of the same size), and a plain loop sends them one at a time.
The three run in turn (`--reps` times; the fastest of each is kept). Requests/s and tokens/s
(prompt + completion tokens, from the server's usage counts) per client; the final JSON
line holds `ratio_vs_openai` per workload (goal >= 0.9) and `speedup_vs_serial`.
llama.cpp's server evaluates one request at a time, so on it in-flight requests only hide
the HTTP and JSON overhead; a vLLM server batches them (the concurrency is for that).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import alpaca_like  # noqa: E402
from llama_server import LlamaServer  # noqa: E402

JUDGE = ("Rate how good the response is as an answer to the instruction, from 1 (useless) to 5 (excellent). "
         "Reply with one digit.\n\nInstruction:\n{i}\n\nResponse:\n{r}\n\nRating:")


def ours(url: str, cache: Path, weights: Path, concurrency: int, work):
    """(seconds, recorded requests) of our backend doing `work(runtime, decl)` from cold."""
    from recipe.runtime import ModelRuntime
    rt = ModelRuntime(cache, weights_dir=weights)
    decl = {"kind": "causal_lm", "source": f"openai:{url}#smollm2", "identity": f"bench:{time.time()}",
            "options": {"bos": True, "tokenizer": "builtin:smollm2", "echo": True, "batch": 1, "top_logprobs": 1000,
                        "concurrency": concurrency}}
    backend = rt.model(decl)
    backend.client.record = []
    t = time.perf_counter()
    work(rt, decl)
    return time.perf_counter() - t, backend.client.record


def tokens_of(responses) -> int:
    return sum((r.get("usage") or {}).get("prompt_tokens", 0) + (r.get("usage") or {}).get("completion_tokens", 0)
               for r in responses)


def with_openai(url: str, requests, concurrency: int):
    from openai import AsyncOpenAI

    async def go():
        client = AsyncOpenAI(base_url=url, api_key="none", max_retries=3, timeout=300)
        sem = asyncio.Semaphore(concurrency)

        async def one(path, body):
            async with sem:
                if path == "/completions":
                    r = await client.completions.create(**body)
                else:
                    r = await client.chat.completions.create(**body)
                return r.model_dump()
        out = await asyncio.gather(*(one(p, b) for p, b in requests))
        await client.close()
        return out
    t = time.perf_counter()
    out = asyncio.run(go())
    return time.perf_counter() - t, out


def serial(url: str, requests):
    import httpx
    t = time.perf_counter()
    out = []
    with httpx.Client(timeout=300) as c:
        for path, body in requests:
            out.append(c.post(url + path, json=body).json())
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=24)
    ap.add_argument("--gen-items", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args()
    try:
        rows = alpaca_like(a.items)
    except SystemExit:
        rows = [json.loads(x) for x in (ROOT / "examples/data/default.jsonl").read_text().splitlines()][: a.items]
    inst = [r["instruction"] + ("\n" + r["input"] if r.get("input") else "") for r in rows]
    resp = [r["output"][:300] for r in rows]
    tmp = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    weights = tmp / "weights"

    def scoring(rt, d):
        rt.loglik(d, [rt.chat_prompt(d, i) for i in inst], resp)

    def judging(rt, d):
        rt.choice_probs(d, [rt.chat_prompt(d, JUDGE.format(i=i, r=r)) for i, r in zip(inst, resp)], list("12345"))

    def generation(rt, d):
        rt.generate(d, [rt.chat_prompt(d, i) for i in inst[: a.gen_items]], max_new_tokens=64)

    results = {}
    with LlamaServer(log=str(tmp / "server.log")) as s:
        for name, work in (("scoring", scoring), ("judging", judging), ("generation", generation)):
            best = {"ours": float("inf"), "openai": float("inf"), "serial": float("inf")}
            for rep in range(a.reps):
                secs, reqs = ours(s.url, tmp / f"c-{name}-{rep}", weights, a.concurrency, work)
                best["ours"] = min(best["ours"], secs)
                secs, out = with_openai(s.url, reqs, a.concurrency)
                best["openai"] = min(best["openai"], secs)
                secs, out2 = serial(s.url, reqs)
                best["serial"] = min(best["serial"], secs)
            toks = tokens_of(out2)
            res = {"requests": len(reqs), "tokens": toks}
            for k, v in best.items():
                res[f"{k}_req_per_s"] = round(len(reqs) / v, 2)
                res[f"{k}_tok_per_s"] = round(toks / v, 1)
            res["ratio_vs_openai"] = round(best["openai"] / best["ours"], 3)
            res["speedup_vs_serial"] = round(best["serial"] / best["ours"], 3)
            results[name] = res
            print(name, res, flush=True)
    print(json.dumps({"server": "llama-cpp-python 0.3.36, SmolLM2-135M Q4_1, 2 threads",
                      "concurrency": a.concurrency, **results}))


if __name__ == "__main__":
    main()

"""Model-backed steps on Ray: each model runs in a pool of actors, one loaded copy per actor,
each actor a `ModelRuntime` with the run's batching and the run's model-result cache (a
directory on shared storage), so a re-run computes only what no actor has cached.

Operators call this pool exactly as they call a `ModelRuntime`. A call's items are split
into one contiguous shard per actor (replicas: the model's `replicas=` option, else the
run's); the driver keeps only a tokenizer for chat templates and token counts. On a CPU
scores and embeddings are computed one text at a time (batch-invariant, see
runtime/__init__.py), so a pool gives the same numbers as one process; greedy generation
is batched, so it is sharded only when a model asks for more than one replica.
"""
from __future__ import annotations

import numpy as np

SHARDED = ("embed", "loglik", "choice_probs", "generate", "classify", "identify")


class _Actor:
    """One model runtime in a Ray actor (wrapped with ray.remote by `ModelPool`)."""

    def __init__(self, cache_dir, weights_dir, device, threads: int):
        import torch
        torch.set_num_threads(threads)  # replicas on one machine share its cores
        from ..runtime import ModelRuntime
        self.rt = ModelRuntime(cache_dir=cache_dir, weights_dir=weights_dir, device=device)

    def call(self, method: str, decl: dict, args: tuple, kwargs: dict):
        return getattr(self.rt, method)(decl, *args, **kwargs)

    def usage(self) -> dict:
        return self.rt.usage()

    def stats(self) -> dict:
        return self.rt.stats()


class ModelPool:
    """A `ModelRuntime` look-alike whose model calls run on Ray actors."""

    def __init__(self, local, replicas: int = 1, log=lambda *_: None):
        self.local, self.replicas, self.log = local, max(1, int(replicas)), log
        self._pools: dict[str, list] = {}
        self._retired: list[dict] = []  # usage of released actors
        self._retired_stats: list[dict] = []

    def __getattr__(self, name):  # chat_prompt, count_tokens, device, ...: the local runtime
        return getattr(self.local, name)

    def _actors(self, decl: dict) -> list:
        ident = decl["identity"]
        if ident not in self._pools:
            import ray
            opts = decl.get("options") or {}
            n = max(1, int(opts.get("replicas") or self.replicas))
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
            # no CPU reserved: an actor that holds a core between calls would starve the block
            # tasks of the steps in between (a model used by steps 3 and 5 on a 2-CPU instance)
            cls = ray.remote(num_cpus=0, num_gpus=gpus, max_restarts=2, max_task_retries=2)(_Actor)
            import os
            threads = max(1, (os.cpu_count() or 1) // n)
            dev = "auto" if gpus else "cpu"
            self.log(f"starting {n} actor(s) for {decl['kind']} {decl['source']}" + (" on GPUs" if gpus else ""))
            self._pools[ident] = [cls.remote(str(self.local.cache_dir), str(self.local.weights_dir), dev, threads)
                                  for _ in range(n)]
        return self._pools[ident]

    def _call(self, method: str, model, first: list, rest: tuple, kwargs: dict, progress=None):
        import ray
        from ..runtime import as_decl
        decl = as_decl(model)
        if decl.source_kind == "openai":  # a server does the work: the driver's one client keeps its requests in flight
            return getattr(self.local, method)(decl, first, *rest, **kwargs, progress=progress)
        actors = self._actors(decl)
        n = len(first)
        shards = len(actors) if (method != "generate" or len(actors) > 1) else 1
        shards = max(1, min(shards, n))
        bounds = np.linspace(0, n, shards + 1).astype(int)
        refs = []
        for i in range(shards):
            a, b = int(bounds[i]), int(bounds[i + 1])
            args = tuple(x[a:b] if isinstance(x, list) and len(x) == n else x for x in (first, *rest))
            refs.append(actors[i].call.remote(method, decl, args, kwargs))
        parts = []
        for i, r in enumerate(refs):
            parts.append(ray.get(r))
            if progress:
                progress(int(bounds[i + 1]), n)
        if method in ("embed", "choice_probs", "classify"):
            parts = [p for p in parts if len(p)]
            return np.concatenate(parts) if parts else self._empty(method, decl, first, rest, kwargs)
        return [x for p in parts for x in p]

    def _empty(self, method, decl, first, rest, kwargs):
        return getattr(self.local, method)(decl, first, *rest, **kwargs)

    def embed(self, model, texts, progress=None):
        return self._call("embed", model, list(texts), (), {}, progress)

    def loglik(self, model, prompts, continuations, progress=None):
        return self._call("loglik", model, list(prompts), (list(continuations),), {}, progress)

    def choice_probs(self, model, prompts, choices, progress=None):
        return self._call("choice_probs", model, list(prompts), (choices,), {}, progress)

    def generate(self, model, prompts, n=1, max_new_tokens=128, temperature=0.0, seed=0, progress=None, stop=None,
                 ends=False):
        return self._call("generate", model, list(prompts), (),
                          {"n": n, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
                          | ({"stop": list(stop)} if stop else {}) | ({"ends": True} if ends else {}), progress)

    def classify(self, model, texts, pairs=None, progress=None):
        return self._call("classify", model, list(texts), (list(pairs) if pairs is not None else None,), {}, progress)

    def identify(self, model, texts, progress=None):
        return self._call("identify", model, list(texts), (), {}, progress)

    def release(self, model) -> None:
        import ray
        from ..runtime import as_decl
        decl = as_decl(model)
        actors = self._pools.pop(decl["identity"], [])
        if actors:
            self._retired += ray.get([a.usage.remote() for a in actors])
            self._retired_stats += ray.get([a.stats.remote() for a in actors])
            for a in actors:
                ray.kill(a)
        self.local.release(model)

    def usage(self) -> dict:
        import ray
        live = ray.get([a.usage.remote() for p in self._pools.values() for a in p])
        total = dict(self.local.usage())
        for u in live + self._retired:
            for k, v in u.items():
                total[k] = total.get(k, 0) + v
        return total

    def stats(self) -> dict:
        import ray
        out: dict[str, dict] = {k: dict(v) for k, v in self.local.stats().items()}
        live = ray.get([a.stats.remote() for p in self._pools.values() for a in p])
        for st in live + self._retired_stats:
            for ident, s in st.items():
                cur = out.setdefault(ident, {k: 0 for k in s})
                for k, v in s.items():
                    cur[k] = round(cur.get(k, 0) + v, 3) if isinstance(v, float) else cur.get(k, 0) + v
        return out

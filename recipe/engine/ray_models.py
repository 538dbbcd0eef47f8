"""Model-backed steps on Ray: each model runs in a pool of actors, one loaded copy per actor.

The driver keeps the run's `ModelRuntime` and with it everything but the computing: the
result cache (looked up and written on the driver alone, exactly as on the DuckDB engine,
so a re-run whose results are all cached starts no actor and loads no model), the pieces a
killed run resumes from, the statistics. What is not cached is split into one contiguous
shard per actor (replicas: the model's `replicas=` option, else the run's), each computed by
the actor's backend. On a CPU scores and embeddings are computed one text at a time, each on
one thread (batch- and thread-invariant, see runtime/local.py `solo`), so a pool gives the
same numbers as one process whatever each actor's share of the cores.
The driver keeps only a tokenizer for chat templates and token counts.
"""
from __future__ import annotations

import copy

import numpy as np


class _Actor:
    """One model runtime in a Ray actor (wrapped with ray.remote by `ModelPool`)."""

    def __init__(self, cache_dir, weights_dir, device, threads: int):
        import torch
        torch.set_num_threads(threads)  # replicas on one machine share its cores
        from ..runtime import ModelRuntime
        self.rt = ModelRuntime(cache_dir=cache_dir, weights_dir=weights_dir, device=device)

    def compute(self, call: str, decl, args: tuple, kwargs: dict):
        """The backend's `call` on these items (the driver has looked them up in the cache)."""
        from ..runtime import backends
        return backends.needs(self.rt.model(decl), call)(*args, **kwargs)

    def usage(self) -> dict:
        return self.rt.usage()

    def stats(self) -> dict:
        return self.rt.stats()


class ModelPool:
    """A `ModelRuntime` look-alike whose computations run on Ray actors."""

    def __init__(self, local, replicas: int = 1, log=lambda *_: None):
        # a copy sharing the caller's caches and statistics; only the copy computes remotely
        self.local = copy.copy(local)
        self.local.remote = self._remote
        self.replicas, self.log = max(1, int(replicas)), log
        self._pools: dict[str, list] = {}
        self._retired: list[dict] = []  # usage of released actors
        self._retired_stats: list[dict] = []

    def __getattr__(self, name):  # embed, loglik, chat_prompt, count_tokens, device, ...: the runtime
        return getattr(self.local, name)

    def _actors(self, decl) -> list:
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

    def _remote(self, decl, call: str):
        """The runtime's backend call for `decl`, computed on its actors (None: in this process,
        as for a server, which does the work itself: the driver's one client keeps its requests
        in flight)."""
        if decl.source_kind == "openai":
            return None

        def compute(items, *rest, progress=None, **kwargs):
            import ray
            actors = self._actors(decl)
            n = len(items)
            shards = max(1, min(len(actors), n))
            bounds = np.linspace(0, n, shards + 1).astype(int)
            refs = [actors[i].compute.remote(call, decl, (items[bounds[i]:bounds[i + 1]], *rest), kwargs)
                    for i in range(shards)]
            parts = []
            for i, r in enumerate(refs):
                parts.append(ray.get(r))
                if progress:
                    progress(int(bounds[i + 1]), n)
            if call in ("embed", "choice_probs", "classify"):
                return np.concatenate([np.asarray(p) for p in parts])  # every shard holds items
            return [x for p in parts for x in p]
        return compute

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

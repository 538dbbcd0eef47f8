"""The shared model runtime: every model loaded once, every request cached and computed once.

Operators never load models; they call one `ModelRuntime` per run with the model's
declaration (recipe.models.ModelDecl, or its dict form `{kind, source, options, identity}`).
The runtime de-duplicates and caches; the model's backend (recipe/runtime/backends.py: local
or endpoint) batches what is left:

    rt = ModelRuntime()  # caches under user_cache_dir()/models
    vecs = rt.embed(decl, texts)                  # float32, L2-normalised
    ll = rt.loglik(decl, prompts, continuations)  # [{"logprob": ..., "tokens": n}]
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..diagnostics import UserError
from ..models import ModelDecl
from ..paths import user_cache_dir  # noqa: F401  (re-exported: callers import it from here)
from . import backends
from .backends import Backend, cache_item
from .batching import unique_order
from .cache import ResultCache, key
from .endpoint import CONCURRENCY, EndpointDown
from .resolve import resolve

# items computed between writes to the result cache: a run killed inside a long model step
# recomputes at most one piece (about a minute of SmolLM2 scoring on a 2-core CPU), not the
# whole step; pieces are fixed in size so what is batched together does not depend on timing
SAVE_EVERY = 512
EMBED_SAVE_EVERY = 8192


def _piece(decl) -> int:
    """Items per saved piece: an endpoint's pieces hold 32 requests per slot, so waiting for a
    piece's last answers leaves the slots idle for a thirty-second of the time at most."""
    if decl.source_kind == "openai":
        return max(SAVE_EVERY, 32 * int(decl.options.get("concurrency") or CONCURRENCY))
    return SAVE_EVERY


def _pieces(todo: list, size: int, progress):
    """`todo` in pieces of `size`, each with a progress callback that counts over all of it."""
    for lo in range(0, len(todo), size):
        yield todo[lo:lo + size], ((lambda d, t, lo=lo: progress(lo + d, len(todo))) if progress else None)


@dataclass
class ModelStats:
    loads: int = 0
    requests: int = 0
    cache_hits: int = 0
    computed: int = 0
    tokens: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    sent: int = 0  # HTTP requests an endpoint model sent, retries included


def as_decl(model) -> ModelDecl:
    """Accept a declaration (dict or ModelDecl) or a bare source string, whose kind is read
    from its resolved files: a sentence-transformers folder is an embedding model."""
    if isinstance(model, str):
        from .resolve import identity
        kind = _guess_kind(model)
        return ModelDecl(kind, model, {}, identity(kind, model, {}))
    return ModelDecl.of(model)


def _guess_kind(source: str) -> str:
    try:
        res = resolve(source)
    except UserError:
        return "causal_lm"
    if res.kind == "fasttext":
        return "language_id"
    return "embedding" if res.path is not None and (res.path / "modules.json").exists() else "causal_lm"


class ModelRuntime:
    def __init__(self, cache_dir: str | Path | None = None, device: str = "auto", log=lambda *_: None,
                 weights_dir: str | Path | None = None):
        """`cache_dir`: model results (and, unless `weights_dir` says otherwise, converted
        weights: a function of the checkpoint alone, so runtimes may share them)."""
        from .hf import pick_device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "models"
        self.weights_dir = Path(weights_dir) if weights_dir is not None else self.cache_dir
        self.device = pick_device(device) if device == "auto" else device
        import os
        # Batch-invariant scoring: each text's scores and embeddings are computed alone, so
        # they do not depend on what else was in its batch, and a result cached by another
        # recipe equals the one this run would compute (float kernels round differently for
        # other shapes). Costs about 1.3x on a CPU; off on a GPU unless asked for.
        mode = os.environ.get("RECIPE_BATCH_INVARIANT", "auto")
        self.invariant = self.device == "cpu" if mode == "auto" else mode not in ("0", "false", "no")
        self.log = log
        self.cache = ResultCache(self.cache_dir)
        self._models: dict[str, object] = {}
        self._stats: dict[str, ModelStats] = {}
        # where backends compute instead of in this process (the Ray engine's actor pools): a
        # function of (decl, call) giving the backend call to make, or None to compute here
        self.remote = None

    def usage(self) -> dict:
        """Requests, computed calls, tokens, compute and load seconds so far, over all models."""
        stats = list(self._stats.values())
        return {k: sum(getattr(st, k) for st in stats)
                for k in ("requests", "computed", "tokens", "seconds", "load_seconds")}

    # ---- loading -----------------------------------------------------------------------
    def _stat(self, decl) -> ModelStats:
        return self._stats.setdefault(as_decl(decl).identity, ModelStats())

    def model(self, decl) -> Backend:
        """The backend serving a declaration: loaded on first use, then shared."""
        decl = as_decl(decl)
        ident = decl.identity
        if ident in self._models:
            return self._models[ident]
        res = self._resolve(decl)
        st = self._stat(decl)
        t0 = time.time()
        self.log(f"loading {decl.kind} {decl.source} on {self.device if res.kind != 'openai' else res.url}")
        m = backends.load(self, decl, res)
        if not getattr(m, "loads_lazily", False):  # a causal LM counts its weights' load itself
            st.loads += 1
        st.load_seconds += time.time() - t0  # for a causal LM: tokenizer, one-time GGUF dequantisation
        self._models[ident] = m
        return m

    def _resolve(self, decl):
        """Where a model's files are: a fine-tuned model's under this runtime's weights."""
        src = decl["source"]
        if src.startswith("finetuned:"):
            from .resolve import Resolved
            from .train import weights_path
            path = weights_path(self.weights_dir, src.split(":", 1)[1])
            if not (path / "config.json").exists():
                raise UserError(f"the fine-tuned model {src} is not in the model cache {self.weights_dir} (its "
                                f"training step ran with another --model-cache); run with a fresh --cache-dir to train it")
            return Resolved("local", path, None, None, None, decl["identity"])
        return resolve(src)

    def finetune(self, model, prompts: list[str], responses: list[str], settings: dict, key: str,
                 progress=None) -> dict:
        """Fine-tune the causal LM `model` on (prompt, response) rows into the weights keyed
        `key` (recipe/runtime/train.py); weights already under that key are reused.
        `progress(done, total)`: optimiser steps."""
        from .train import finetune, weights_path
        decl = as_decl(model)
        out = weights_path(self.weights_dir, key)
        if (out / "config.json").exists():
            from .weights_store import mark_used
            mark_used(out)
            return {"rows": len(prompts), "reused": True}
        m = self.model(decl)
        if not hasattr(m, "m") or not hasattr(m.m, "_src"):
            raise UserError(f"finetune needs a local causal_lm base model; {decl.source} is not one")
        return finetune(m.m._src, m.tok, m.chat, prompts, responses, settings, out, self.device, self.log, progress)

    def release(self, model) -> None:
        """Unload a model (its last step has run); a later call would load it again."""
        decl = as_decl(model)
        m = self._models.pop(decl["identity"], None)
        if m is None:
            return
        del m
        import gc
        gc.collect()
        if self.device.startswith("cuda"):
            import torch
            torch.cuda.empty_cache()
        self.log(f"released {decl['kind']} {decl['source']}")

    # ---- the cached call pattern ------------------------------------------------------
    def _cached(self, decl, call: str, args: dict, items: list, compute, progress=None) -> list:
        """Results of `compute(missing items, progress)` for the items not in the result
        cache; identical items are computed once."""
        st = self._stat(decl)
        st.requests += len(items)
        keys = [key(decl.identity, _BACKEND_CODE(), call, args, cache_item(it)) for it in items]
        uniq, back = unique_order(keys)
        ukeys = [keys[i] for i in uniq]
        hit = self.cache.get_many(ukeys)
        todo = [j for j, k in enumerate(ukeys) if k not in hit]
        st.cache_hits += len(ukeys) - len(todo)
        for part, prog in _pieces(todo, _piece(decl), progress):  # a killed run loses one piece
            t0 = time.time()
            try:
                res = compute([items[uniq[j]] for j in part], prog)
            except EndpointDown as e:  # keep what the server answered: a re-run sends only the rest
                self.cache.put_many({ukeys[part[i]]: r for i, r in e.done.items()})
                st.computed += len(e.done)
                raise
            finally:
                st.seconds += time.time() - t0
            st.computed += len(part)
            new = {ukeys[j]: r for j, r in zip(part, res)}
            self.cache.put_many(new)
            from ..faults import fault
            fault(f"model:{call}:after_cache")
            hit.update(new)
        return [hit[keys[i]] for i in range(len(items))]

    def _budget(self, decl, packed: bool = False) -> int:
        """Tokens per batch: small on CPU (measured: padded 2k-token batches ran 1.6x faster
        than 8k ones, cache-bound; packed rows did best at 4k), large on a GPU;
        `batch_tokens=` on the model overrides."""
        opt = decl.options.get("batch_tokens")
        if opt:
            return int(opt)
        return 16384 if self.device.startswith("cuda") else (4096 if packed else 2048)

    def _call(self, decl, call: str):
        """The backend function computing `call` (what is not in the result cache)."""
        fn = self.remote(decl, call) if self.remote is not None else None
        return fn if fn is not None else backends.needs(self.model(decl), call)

    # ---- calls -------------------------------------------------------------------------
    def embed(self, model, texts: list[str], progress=None) -> np.ndarray:
        decl = as_decl(model)
        st = self._stat(decl)
        st.requests += len(texts)
        keys = [key(decl.identity, _BACKEND_CODE(), "embed", t) for t in texts]
        uniq, back = unique_order(keys)
        ukeys = [keys[i] for i in uniq]
        found = self.cache.get_embeddings(ukeys)
        todo = [j for j, k in enumerate(ukeys) if k not in found]
        st.cache_hits += len(ukeys) - len(todo)
        for part, prog in _pieces(todo, EMBED_SAVE_EVERY, progress):
            t0 = time.time()
            vecs = np.asarray(self._call(decl, "embed")([texts[uniq[j]] for j in part], progress=prog), dtype=np.float32)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            st.seconds += time.time() - t0
            st.computed += len(part)
            self.cache.put_embeddings([ukeys[j] for j in part], vecs)
            vecs = vecs.astype(np.float16)  # what the cache holds: fresh and cached vectors agree
            for j, v in zip(part, vecs):
                found[ukeys[j]] = v
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.stack([found[ukeys[back[i]]] for i in range(len(texts))]).astype(np.float32)
        # float16 storage: re-normalise so cached and fresh vectors agree
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def loglik(self, model, prompts: list[str], continuations: list[str], progress=None) -> list[dict]:
        """Summed log-probability of each continuation given its prompt (tokenized apart, no
        special tokens added); with an empty prompt the first continuation token is not scored."""
        decl = as_decl(model)
        return self._cached(decl, "loglik", {}, list(zip(prompts, continuations)),
                            lambda items, prog: self._call(decl, "loglik")(items, progress=prog), progress)

    def choice_probs(self, model, prompts: list[str], choices: list[str], progress=None) -> np.ndarray:
        """Next-token probability of each choice (its first token) after each prompt."""
        decl = as_decl(model)
        res = self._cached(decl, "choice_probs", {"choices": choices}, list(prompts),
                           lambda items, prog: self._call(decl, "choice_probs")(items, choices, progress=prog), progress)
        return np.asarray(res, dtype=np.float64).reshape(len(prompts), len(choices))

    def generate(self, model, prompts: list[str], n: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0, progress=None, stop: list[str] | None = None,
                 ends: bool = False) -> list[list]:
        """`n` completions per prompt. Greedy when temperature is 0; with sampling, each prompt
        is generated on its own with a seed derived from (seed, prompt), so results do not
        depend on what else is in the batch or in the cache. With `stop`, a completion ends
        before the first of those strings it writes (generation stops there; the text is what
        the whole completion cut there would be). With `ends`, each completion is [text, cut]:
        cut when it ended at `max_new_tokens` or the context's end (the model's own count of its
        tokens, or a server's `finish_reason`), which re-counting the text cannot tell."""
        decl = as_decl(model)
        args = {"n": n, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
        extra = {}
        if stop:  # only when given: results cached before stop strings keep their keys
            args["stop"] = extra["stop"] = list(stop)
        if ends:
            args["ends"] = extra["ends"] = True
        return self._cached(decl, "generate", args, list(prompts),
                            lambda items, prog: self._call(decl, "generate")(items, n, max_new_tokens, temperature,
                                                                             seed, progress=prog, **extra),
                            progress)

    def classify(self, model, texts: list[str], pairs: list[str] | None = None, progress=None) -> np.ndarray:
        """Logits of a sequence-classification (or reward) head for each text (or text pair)."""
        decl = as_decl(model)
        items = list(zip(texts, pairs if pairs is not None else [None] * len(texts)))
        res = self._cached(decl, "classify", {}, items,
                           lambda its, prog: self._call(decl, "classify")(its, progress=prog), progress)
        return np.asarray(res, dtype=np.float64)

    def identify(self, model, texts: list[str], progress=None) -> list:
        """Each text's language as a language_id model gives it: [label, probability], or None
        for a text with nothing to identify (empty, or only whitespace)."""
        decl = as_decl(model)
        return self._cached(decl, "identify", {}, list(texts),
                            lambda items, prog: self._call(decl, "identify")(items, progress=prog), progress)

    def labels(self, model) -> list[str]:
        """The languages a language_id model can give."""
        return backends.needs(self.model(as_decl(model)), "labels")()

    def chat_prompt(self, model, user: str, system: str | None = None) -> str:
        """The model's chat template around one user turn (operators that want one use this)."""
        return self.model(as_decl(model)).chat(user, system)

    def chat_turns(self, model, turns: list[dict]) -> str:
        """The model's chat template around a conversation ending in the user turn to answer
        (for an endpoint without a local tokenizer: the turns, for the server's template)."""
        return backends.needs(self.model(as_decl(model)), "chat_turns")(turns)

    def context_length(self, model) -> int | None:
        """Tokens of prompt and answer the model takes (None when unknown: an endpoint not told)."""
        b = self.model(as_decl(model))
        return b.context_length() if hasattr(b, "context_length") else None

    def count_tokens(self, model, text: str) -> int:
        """Tokens of a text under the model's tokenizer (words for an endpoint without one)."""
        return self.model(as_decl(model)).count_tokens(text)

    def token_counts(self, model, items: list) -> list[int]:
        """Tokens of each text, or of each conversation (a list of {role, content}) under the
        model's chat template, by the model's tokenizer (words for an endpoint without one)."""
        return self.model(as_decl(model)).token_counts(list(items))

    def stats(self) -> dict:
        return {k: vars(v) | {"seconds": round(v.seconds, 3), "load_seconds": round(v.load_seconds, 3)}
                for k, v in self._stats.items()}


def _BACKEND_CODE() -> str:
    """The code that computes model results is part of their cache key: a fixed scoring
    bug is not served from results of the old code."""
    from ..codehash import RUNTIME, source_hash
    return source_hash(*RUNTIME)

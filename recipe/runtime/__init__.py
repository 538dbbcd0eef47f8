"""The shared model runtime: every model loaded once, every request batched and cached.

Operators never load models; they call one `ModelRuntime` per run with the model's
declaration (`{kind, source, options, identity}`):

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
from .batching import run_batched, run_packed, unique_order
from .cache import ResultCache, key
from .resolve import resolve

PACK_ROW = 512  # tokens per packed LM sequence: 384-512 measured best on CPU (attention per row stays cheap)


@dataclass
class ModelStats:
    loads: int = 0
    requests: int = 0
    cache_hits: int = 0
    computed: int = 0
    tokens: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0


def as_decl(model) -> dict:
    """Accept a declaration dict or a bare source string."""
    if isinstance(model, str):
        from .resolve import identity
        kind = "embedding" if "minilm" in model else "causal_lm"
        return {"kind": kind, "source": model, "options": {}, "identity": identity(kind, model, {})}
    return model


def _api_key(decl) -> str | None:
    """The endpoint's key, from the environment variable the model's `api_key_env` names
    (a recipe names the variable, never the key, so no key reaches a recipe or manifest)."""
    import os
    name = (decl.get("options") or {}).get("api_key_env")
    if not name:
        return None
    if not os.environ.get(name):
        from ..diagnostics import UserError
        raise UserError(f"model {decl['source']}: the environment variable {name} (its api_key_env) is not set")
    return os.environ[name]


def user_cache_dir() -> Path:
    """Where converted weights and model results live, shared by every project of a user:
    $RECIPE_CACHE_HOME, else $XDG_CACHE_HOME/recipe, else ~/.cache/recipe. (The step cache
    stays per project, under --cache-dir.)"""
    import os
    if os.environ.get("RECIPE_CACHE_HOME"):
        return Path(os.environ["RECIPE_CACHE_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recipe"


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

    def usage(self) -> dict:
        """Requests, computed calls, tokens, compute and load seconds so far, over all models."""
        stats = list(self._stats.values())
        return {k: sum(getattr(st, k) for st in stats)
                for k in ("requests", "computed", "tokens", "seconds", "load_seconds")}

    # ---- loading -----------------------------------------------------------------------
    def _stat(self, decl) -> ModelStats:
        return self._stats.setdefault(decl["identity"], ModelStats())

    def model(self, decl):
        """The loaded model for a declaration: loaded on first use, then shared."""
        ident = decl["identity"]
        if ident in self._models:
            return self._models[ident]
        res = self._resolve(decl)
        opts = decl.get("options") or {}
        st = self._stat(decl)
        t0 = time.time()
        self.log(f"loading {decl['kind']} {decl['source']} on {self.device}")
        if res.kind == "openai":
            from .openai_client import Endpoint
            m = Endpoint(res.url, res.model, opts.get("concurrency", 64), opts.get("retries", 3),
                         api_key=_api_key(decl), rate_limit=opts.get("rate_limit"))
        elif decl["kind"] == "embedding":
            from .hf import Embedder
            m = Embedder(res, self.device)
        elif decl["kind"] == "causal_lm":
            from .hf import CausalLM
            # weights load lazily (a fully cached run only needs the tokenizer); count that load
            m = CausalLM(res, self.weights_dir, self.device, opts.get("dtype"), self.log,
                         on_load=lambda secs: (setattr(st, "loads", st.loads + 1),
                                               setattr(st, "load_seconds", st.load_seconds + secs)))
            st.load_seconds += time.time() - t0  # tokenizer, and the one-time GGUF dequantisation
            self._models[ident] = m
            return m
        elif decl["kind"] in ("classifier", "reward"):
            from .hf import Classifier
            m = Classifier(res, self.device, opts.get("dtype"))
        else:
            raise UserError(f"unknown model kind {decl['kind']}")
        st.loads += 1
        st.load_seconds += time.time() - t0
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

    def finetune(self, model, prompts: list[str], responses: list[str], settings: dict, key: str) -> dict:
        """Fine-tune the causal LM `model` on (prompt, response) rows into the weights keyed
        `key` (recipe/runtime/train.py); weights already under that key are reused."""
        from .train import finetune, weights_path
        decl = as_decl(model)
        out = weights_path(self.weights_dir, key)
        if (out / "config.json").exists():
            return {"rows": len(prompts), "reused": True}
        m = self.model(decl)
        if not hasattr(m, "tok") or hasattr(m, "url"):
            raise UserError(f"finetune needs a local causal_lm base model; {decl['source']} is not one")
        return finetune(m._src, m.tok, m.chat, prompts, responses, settings, out, self.device, self.log)

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

    # ---- the cached, batched call pattern ---------------------------------------------
    def _cached(self, decl, call: str, args: dict, items: list, keyof, compute, progress=None) -> list:
        st = self._stat(decl)
        st.requests += len(items)
        keys = [key(decl["identity"], _BACKEND_CODE(), call, args, keyof(it)) for it in items]
        uniq, back = unique_order(keys)
        ukeys = [keys[i] for i in uniq]
        hit = self.cache.get_many(ukeys)
        todo = [j for j, k in enumerate(ukeys) if k not in hit]
        st.cache_hits += len(ukeys) - len(todo)
        if todo:
            t0 = time.time()
            res = compute([items[uniq[j]] for j in todo], progress)
            st.seconds += time.time() - t0
            st.computed += len(todo)
            new = {ukeys[j]: r for j, r in zip(todo, res)}
            self.cache.put_many(new)
            from ..faults import fault
            fault(f"model:{call}:after_cache")
            hit.update(new)
        return [hit[keys[i]] for i in range(len(items))]

    def _budget(self, decl, packed: bool = False) -> int:
        """Tokens per batch: small on CPU (measured: padded 2k-token batches ran 1.6x faster
        than 8k ones, cache-bound; packed rows did best at 4k), large on a GPU;
        `batch_tokens=` on the model overrides."""
        opt = (decl.get("options") or {}).get("batch_tokens")
        if opt:
            return int(opt)
        return 16384 if self.device.startswith("cuda") else (4096 if packed else 2048)

    # ---- calls -------------------------------------------------------------------------
    def embed(self, model, texts: list[str], progress=None) -> np.ndarray:
        decl = as_decl(model)
        st = self._stat(decl)
        st.requests += len(texts)
        keys = [key(decl["identity"], "embed", t) for t in texts]
        uniq, back = unique_order(keys)
        ukeys = [keys[i] for i in uniq]
        found = self.cache.get_embeddings(ukeys)
        todo = [j for j, k in enumerate(ukeys) if k not in found]
        st.cache_hits += len(ukeys) - len(todo)
        if todo:
            m = self.model(decl)
            t0 = time.time()
            todo_texts = [texts[uniq[j]] for j in todo]
            if hasattr(m, "embed") and not hasattr(m, "url"):
                st.tokens += m.n_tokens(todo_texts) if len(todo_texts) <= 200_000 else 0
                # one encode call: sentence-transformers sorts by length itself
                vecs = m.embed(todo_texts, batch_size=1) if self.invariant else m.embed(todo_texts)
            else:
                vecs = np.asarray(m.embed(todo_texts), dtype=np.float32)
                vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            st.seconds += time.time() - t0
            st.computed += len(todo)
            self.cache.put_embeddings([ukeys[j] for j in todo], vecs)
            vecs = vecs.astype(np.float16)  # what the cache holds: fresh and cached vectors agree
            for j, v in zip(todo, vecs):
                found[ukeys[j]] = v
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.stack([found[ukeys[back[i]]] for i in range(len(texts))]).astype(np.float32)
        # float16 storage: re-normalise so cached and fresh vectors agree
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def loglik(self, model, prompts: list[str], continuations: list[str], progress=None) -> list[dict]:
        """Summed log-probability of each continuation given its prompt; the two are tokenized
        separately with no special tokens added."""
        decl = as_decl(model)
        budget = self._budget(decl, packed=True)

        def compute(pairs, prog):
            m = self.model(decl)
            if hasattr(m, "url"):
                return m.loglik(pairs)
            toks = [(m.encode(p), m.encode(c)) for p, c in pairs]
            self._stat(decl).tokens += sum(len(a) + len(b) for a, b in toks)
            lens = [len(a) + len(b) for a, b in toks]
            if self.invariant:
                return _solo(toks, lambda t: m.loglik_rows([[t]])[0], prog)
            # pairs share sequences (no padding); a pair longer than a row gets its own
            return run_packed(toks, lens, min(m.max_len, PACK_ROW), budget, m.loglik_rows, prog)
        return self._cached(decl, "loglik", {}, list(zip(prompts, continuations)), lambda x: list(x), compute, progress)

    def choice_probs(self, model, prompts: list[str], choices: list[str], progress=None) -> np.ndarray:
        """Next-token probability of each choice (its first token) after each prompt."""
        decl = as_decl(model)
        budget = self._budget(decl, packed=True)

        def compute(items, prog):
            m = self.model(decl)
            if hasattr(m, "url"):  # the prompt is sent as the user turn of a chat request
                return m.choice_probs(items, choices)
            ids = [m.encode(c)[0] for c in choices]
            toks = [m.encode(p) for p in items]
            self._stat(decl).tokens += sum(map(len, toks))
            if self.invariant:
                return _solo(toks, lambda t: m.next_token_rows([[t]], ids)[0], prog)
            return run_packed(toks, [len(t) for t in toks], min(m.max_len, PACK_ROW), budget,
                              lambda rows: m.next_token_rows(rows, ids), prog)
        res = self._cached(decl, "choice_probs", {"choices": choices}, list(prompts), lambda x: x, compute, progress)
        return np.asarray(res, dtype=np.float64).reshape(len(prompts), len(choices))

    def generate(self, model, prompts: list[str], n: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0, progress=None) -> list[list[str]]:
        """`n` completions per prompt. Greedy when temperature is 0; with sampling, each prompt
        is generated on its own with a seed derived from (seed, prompt), so results do not
        depend on what else is in the batch or in the cache."""
        decl = as_decl(model)
        args = {"n": n, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed}

        def compute(items, prog):
            m = self.model(decl)
            if hasattr(m, "url"):
                return m.generate(items, max_new_tokens, temperature, seed, n)
            if temperature > 0:
                out = []
                for i, p in enumerate(items):
                    s = int(key(seed, p)[:8], 16)
                    out += m.generate_batch([p], max_new_tokens, temperature, s, n)
                    if prog:
                        prog(i + 1, len(items))
                return out
            lens = [len(m.encode(p)) for p in items]
            budget = self._budget(decl)
            return run_batched(items, [x + max_new_tokens for x in lens], budget,
                               lambda b: m.generate_batch(b, max_new_tokens, 0.0, seed, n), prog)
        return self._cached(decl, "generate", args, list(prompts), lambda x: x, compute, progress)

    def classify(self, model, texts: list[str], pairs: list[str] | None = None, progress=None) -> np.ndarray:
        """Logits of a sequence-classification (or reward) head for each text (or text pair)."""
        decl = as_decl(model)
        items = list(zip(texts, pairs if pairs is not None else [None] * len(texts)))

        def compute(its, prog):
            m = self.model(decl)
            lens = [len(a) // 4 + (len(b) // 4 if b else 0) + 2 for a, b in its]
            if self.invariant:
                return _solo(its, lambda t: m.classify_batch([t])[0], prog)
            return run_batched(its, [min(x, 512) for x in lens], 8192, m.classify_batch, prog)
        res = self._cached(decl, "classify", {}, items, lambda x: [x[0], x[1]], compute, progress)
        return np.asarray(res, dtype=np.float64)

    def chat_prompt(self, model, user: str, system: str | None = None) -> str:
        """The model's chat template around one user turn (operators that want one use this)."""
        m = self.model(as_decl(model))
        return m.chat(user, system) if hasattr(m, "chat") else user

    def count_tokens(self, model, text: str) -> int:
        """Tokens of a text under the model's tokenizer (words for an endpoint)."""
        m = self.model(as_decl(model))
        return len(m.encode(text)) if hasattr(m, "encode") else len(text.split())

    def stats(self) -> dict:
        return {k: vars(v) | {"seconds": round(v.seconds, 3), "load_seconds": round(v.load_seconds, 3)}
                for k, v in self._stats.items()}


def _solo(items: list, one, progress) -> list:
    """`one(item)` for each item in turn (batch-invariant mode), with progress."""
    out = []
    for i, it in enumerate(items):
        out.append(one(it))
        if progress and (i % 16 == 15 or i == len(items) - 1):
            progress(i + 1, len(items))
    return out


def _BACKEND_CODE() -> str:
    """The code that computes model results is part of their cache key: a fixed scoring
    bug is not served from results of the old code."""
    from ..codehash import source_hash
    return source_hash("recipe.runtime", "recipe.runtime.hf", "recipe.runtime.batching",
                       "recipe.runtime.openai_client")

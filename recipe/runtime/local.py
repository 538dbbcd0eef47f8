"""Local backends: a model's files on this machine (a model directory, a GGUF file, a built-in
or a fine-tuned model), run by transformers or sentence-transformers on the best device.

They batch by tokens (packed sequences for scoring, length-sorted batches for generation)
or, in batch-invariant mode, compute each item alone (recipe/runtime/__init__.py says why).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..models import ModelDecl
from .backends import finished
from .batching import run_batched, run_batched_apart, run_packed, token_counts
from .cache import key

PACK_ROW = 512  # tokens per packed LM sequence: 384-512 measured best on CPU (attention per row stays cheap)


def solo(items: list, one, progress) -> list:
    """`one(item)` for each item, each computed alone (batch-invariant mode) on one thread:
    a product split over two threads rounds differently from one on one thread (a tiny
    model's perplexities moved in the 7th digit), so a result would depend on the machine's
    cores, or on a Ray actor's share of them. The items are spread over as many threads as
    torch had instead (measured on SmolLM2 here: 1.2-1.4x faster than one item at a time on two
    threads, the same bits as one thread alone). The first item runs on the calling thread,
    so a model that loads on first use loads once."""
    import torch
    workers = max(1, min(torch.get_num_threads(), len(items) - 1))
    out = []

    def done(r) -> None:
        out.append(r)
        if progress and (len(out) % 16 == 0 or len(out) == len(items)):
            progress(len(out), len(items))
    with one_thread():
        if workers == 1:
            for it in items:
                done(one(it))
        else:
            from concurrent.futures import ThreadPoolExecutor
            done(one(items[0]))
            with ThreadPoolExecutor(workers, thread_name_prefix="recipe-solo") as ex:
                for r in ex.map(one, items[1:]):
                    done(r)
    return out


class LocalLM:
    """A causal LM: log-likelihoods, choice probabilities, generation. With `bos=true` every
    sequence starts with the tokenizer's BOS token (as a server that adds it does)."""

    def __init__(self, rt, decl: ModelDecl, res):
        from .hf import CausalLM
        st = rt._stat(decl)
        self.decl, self.rt = decl, rt
        # weights load lazily (a fully cached run only needs the tokenizer); count that load
        self.m = CausalLM(res, rt.weights_dir, rt.device, decl.options.get("dtype"), rt.log,
                          on_load=lambda secs: (setattr(st, "loads", st.loads + 1),
                                                setattr(st, "load_seconds", st.load_seconds + secs)))
        self.bos = [self.m.tok.bos_token_id] if decl.options.get("bos") and self.m.tok.bos_token_id is not None else []
        self.loads_lazily = True

    # the fine-tuning step trains from these
    @property
    def tok(self):
        return self.m.tok

    def _tokens(self, n: int) -> None:
        self.rt._stat(self.decl).tokens += n

    def chat(self, user: str, system: str | None = None) -> str:
        return self.m.chat(user, system)

    def chat_turns(self, turns: list[dict]) -> str:
        return self.m.chat_turns(turns)

    def context_length(self) -> int:
        return self.m.max_len

    def count_tokens(self, text: str) -> int:
        return len(self.m.encode(text))

    def token_counts(self, items: list) -> list[int]:
        return token_counts(self.m.tok, items)

    def loglik(self, pairs, progress=None) -> list[dict]:
        m = self.m
        toks = []
        for p, c in pairs:
            pt, ct = m.encode(p), m.encode(c)
            if self.bos and not pt and ct:
                # with no prompt the first continuation token is never scored (it has no
                # context without BOS, and servers drop it with BOS): it joins the prompt
                pt, ct = ct[:1], ct[1:]
            toks.append((self.bos + pt, ct))
        self._tokens(sum(len(a) + len(b) for a, b in toks))
        if self.rt.invariant:
            return solo(toks, lambda t: m.loglik_rows([[t]])[0], progress)
        # pairs share sequences (no padding); a pair longer than a row gets its own
        return run_packed(toks, [len(a) + len(b) for a, b in toks], min(m.max_len, PACK_ROW),
                          self.rt._budget(self.decl, packed=True), m.loglik_rows, progress)

    def choice_probs(self, prompts, choices, progress=None) -> list[list[float]]:
        m = self.m
        ids = [m.encode(c)[0] for c in choices]
        toks = [self.bos + m.encode(p) for p in prompts]
        self._tokens(sum(map(len, toks)))
        if self.rt.invariant:
            return solo(toks, lambda t: m.next_token_rows([[t]], ids)[0], progress)
        return run_packed(toks, [len(t) for t in toks], min(m.max_len, PACK_ROW), self.rt._budget(self.decl, packed=True),
                          lambda rows: m.next_token_rows(rows, ids), progress)

    def generate(self, prompts, n, max_new_tokens, temperature, seed, progress=None, stop=None,
                 ends=False) -> list[list]:
        m = self.m
        if self.bos:
            prompts = [m.tok.bos_token + p for p in prompts]
        lens = [len(m.encode(p)) for p in prompts]
        seeds = [[int(key(seed, p, j)[:16], 16) for j in range(n)] for p in prompts]
        # each completion's randomness is its own generator's (seeded by seed, prompt, j)
        cost = [(x + max_new_tokens) * (n if temperature > 0 else 1) for x in lens]
        budget = self.rt._budget(self.decl)

        def run(at: list) -> list:
            return m.generate_batch([prompts[i] for i in at], max_new_tokens, temperature, n, [seeds[i] for i in at],
                                    stop)
        if not self.rt.invariant:  # a GPU: every prompt batched (sampled ones were one at a time)
            out = run_batched(list(range(len(prompts))), cost, budget, run, progress)
        elif m.fp32_fits():
            # batch-invariant mode (a CPU): in float32, on one thread, batches of prompts of one
            # token length (no padding): 30 of 30 prompts came out as they do alone, batched in
            # any order or subset, greedy and sampled. bf16 batches changed 10 of 16 greedy
            # completions; float32 ones on two threads differed from run to run
            with m.float32(), one_thread():
                out = run_batched_apart(lens, cost, budget, run, progress)
        else:  # a large model held in bf16: each prompt alone
            out = []
            for i in range(len(prompts)):
                out += run([i])
                if progress:
                    progress(i + 1, len(prompts))
        # the prompts read and the tokens written (the models table said 0 for generation)
        self._tokens(sum(lens) + sum(len(m.encode(t)) for outs in out for t, _ in outs))
        return finished([[t for t, _ in outs] for outs in out], [[c for _, c in outs] for outs in out], stop, ends)


@contextmanager
def one_thread():
    """torch on one thread for the block: its matrix products on two threads split the work in
    ways that round differently from run to run when a batch has several rows."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LocalEmbedder:
    def __init__(self, rt, decl: ModelDecl, res):
        from .hf import Embedder
        self.decl, self.rt = decl, rt
        self.m = Embedder(res, rt.device)

    def embed(self, texts, progress=None) -> np.ndarray:
        self.rt._stat(self.decl).tokens += self.m.n_tokens(texts) if len(texts) <= 200_000 else 0
        if self.rt.invariant:  # each text alone, on one thread (see `solo`)
            vecs = solo(texts, lambda t: self.m.embed([t], batch_size=1)[0], progress)
            return np.stack(vecs) if vecs else self.m.embed(texts)
        # one encode call: sentence-transformers sorts by length itself
        return self.m.embed(texts)

    def chat(self, user: str, system: str | None = None) -> str:
        return user

    def count_tokens(self, text: str) -> int:
        return self.m.n_tokens([text])

    def token_counts(self, items: list) -> list[int]:
        return token_counts(self.m.model.tokenizer, items)


class LocalClassifier:
    def __init__(self, rt, decl: ModelDecl, res):
        from .hf import Classifier
        self.decl, self.rt = decl, rt
        self.m = Classifier(res, rt.device, decl.options.get("dtype"))

    def classify(self, items, progress=None) -> list[list[float]]:
        if self.rt.invariant:
            return solo(items, lambda t: self.m.classify_batch([t])[0], progress)
        lens = [len(a) // 4 + (len(b) // 4 if b else 0) + 2 for a, b in items]
        return run_batched(items, [min(x, 512) for x in lens], 8192, self.m.classify_batch, progress)

    def chat(self, user: str, system: str | None = None) -> str:
        return user

    def count_tokens(self, text: str) -> int:
        return len(self.m.tok(text)["input_ids"])

    def token_counts(self, items: list) -> list[int]:
        return token_counts(self.m.tok, items)


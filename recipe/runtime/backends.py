"""The backend interface: one implementation per model source kind, registered here.

A backend serves the calls of the model kinds it can (recipe/models.py says which, before
the run); the runtime around it caches and de-duplicates, so a backend computes exactly the
items it is given, in order:

    embed(texts)                                 -> float32 [n, d], L2-normalised
    loglik(pairs)                                -> [{"logprob", "tokens"}]  (prompt, continuation)
    choice_probs(prompts, choices)               -> [[p per choice]]
    generate(prompts, n, max_new_tokens, temperature, seed) -> [[n texts]]
    classify(items)                              -> [[logits]]  (text, text pair or None)
    identify(texts)                              -> [[language, probability] or None]
    chat(user, system) -> prompt;  count_tokens(text) -> int
    token_counts(items) -> [int]  (texts, or conversations under the chat template)

`progress(done, total)` is passed to each call. Implementations: recipe/runtime/local.py
(transformers and sentence-transformers, GGUF via transformers),
recipe/runtime/fasttext_lid.py (fastText language identifiers) and recipe/runtime/endpoint.py
(OpenAI-compatible servers).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from ..diagnostics import UserError
from ..models import KIND_CALLS, ModelDecl


class Chat(str):
    """A user turn (and optional system text, and the turns before it) that a server should
    put in its own chat template (an endpoint given no local tokenizer). It is the user text
    itself, so it prints as that; result cache keys tell it apart from the same raw text
    (`cache_item`). `history`: (role, content) pairs between the system text and the turn."""

    def __new__(cls, user: str, system: str | None = None, history: tuple = ()):
        obj = super().__new__(cls, user)
        obj.system = system
        obj.history = tuple((r, c) for r, c in history)
        return obj

    @classmethod
    def of(cls, turns: list[dict]) -> "Chat":
        """The conversation `turns` (a leading system turn, ..., the user turn to answer)."""
        system = turns[0]["content"] if turns and turns[0]["role"] == "system" else None
        rest = turns[1:] if system is not None else turns
        return cls(rest[-1]["content"], system, tuple((t["role"], t["content"]) for t in rest[:-1]))

    def messages(self) -> list[dict]:
        return ([{"role": "system", "content": self.system}] if self.system else []) + \
            [{"role": r, "content": c} for r, c in self.history] + [{"role": "user", "content": str(self)}]

    def __reduce__(self):  # survives pickling (Ray actors) as a Chat
        return (Chat, (str(self), self.system, self.history))


def cache_item(x):
    """A request item as its cache key sees it: a chat turn differs from the same raw text."""
    if isinstance(x, Chat):  # a single turn's key is what it was before turns had a history
        return ["chat", str(x), x.system] + ([[list(h) for h in x.history]] if x.history else [])
    if isinstance(x, (tuple, list)):
        return [cache_item(v) for v in x]
    return x


class Embeds(Protocol):
    def embed(self, texts: list[str], progress=None) -> np.ndarray: ...


class Scores(Protocol):  # causal LM scoring
    def loglik(self, pairs: list[tuple[str, str]], progress=None) -> list[dict]: ...


class Chooses(Protocol):  # choice probabilities
    def choice_probs(self, prompts: list[str], choices: list[str], progress=None) -> list[list[float]]: ...


class Generates(Protocol):
    def generate(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 progress=None, stop: list[str] | None = None, ends: bool = False) -> list[list]:
        """Each prompt's `n` completions; with `ends`, each as [text, cut]: cut when generation
        ended at `max_new_tokens` (or the context's end) rather than at an end of turn or a stop."""


class Classifies(Protocol):
    def classify(self, items: list[tuple[str, str | None]], progress=None) -> list[list[float]]: ...


class Identifies(Protocol):
    def identify(self, texts: list[str], progress=None) -> list: ...


class Backend(Protocol):
    """What every backend has; it serves one or more of the interfaces above."""
    decl: ModelDecl

    def chat(self, user: str, system: str | None = None) -> str: ...
    def chat_turns(self, turns: list[dict]) -> str: ...
    def count_tokens(self, text: str) -> int: ...
    def token_counts(self, items: list) -> list[int]: ...


# recipe.models.CALLS -> the interface that serves it
INTERFACE = {"embed": Embeds, "loglik": Scores, "loglik_chat": Scores, "choice_probs": Chooses,
             "generate": Generates, "classify": Classifies, "identify": Identifies}


def _local(rt, decl, res):
    from . import local
    return {"embedding": local.LocalEmbedder, "causal_lm": local.LocalLM,
            "classifier": local.LocalClassifier, "reward": local.LocalClassifier}[decl.kind](rt, decl, res)


def _endpoint(rt, decl, res):
    from .endpoint import EndpointBackend
    return EndpointBackend(rt, decl, res)


def _fasttext(rt, decl, res):
    from .fasttext_lid import FastTextLID
    return FastTextLID(rt, decl, res)


# source kind (recipe.runtime.resolve.Resolved.kind) -> constructor(runtime, decl, resolved)
REGISTRY: dict[str, Callable] = {"local": _local, "gguf": _local, "openai": _endpoint, "fasttext": _fasttext}


def load(rt, decl: ModelDecl, res) -> Backend:
    if decl.kind not in KIND_CALLS:
        raise UserError(f"unknown model kind {decl.kind}")
    return REGISTRY[res.kind](rt, decl, res)


def needs(backend, call: str):
    """The backend's method for `call`, or a clear error naming the model (the checks catch
    these before a run; this guards the Python API and `recipe eval`)."""
    fn = getattr(backend, call, None)
    if fn is None:
        from ..models import CALL_TEXT
        d = backend.decl
        raise UserError(f"model {d.source} ({d.kind}) cannot serve {CALL_TEXT.get(call, call)}")
    return fn


def finished(texts: list[list[str]], cuts: list[list[bool]], stop: list[str] | None, ends: bool) -> list[list]:
    """What `generate` returns: the texts cut at the stop strings, with `ends` each beside its cut flag."""
    out = [[cut_at_stop(t, stop) for t in ts] for ts in texts]
    return [[[t, bool(c)] for t, c in zip(ts, cs)] for ts, cs in zip(out, cuts)] if ends else out


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """`text` up to the first of the `stop` strings in it (the strings themselves left out)."""
    if not stop:
        return text
    at = min((i for i in (text.find(x) for x in stop if x) if i >= 0), default=-1)
    return text if at < 0 else text[:at]

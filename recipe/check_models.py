"""Checks of model declarations and of what operators ask of them: the kind and the source
(a built-in, a local folder or file, an endpoint) can serve the calls, the options exist, and
a fine-tuned model names a causal LM and the rows to train on."""
from __future__ import annotations

from .check_io import options_of as _options
from .ir import OpCall
from .checked import Checked, model_option, model_source, value_of as _value
from .diagnostics import Diagnostic, did_you_mean
from .model_files import source_problem, tokenizer_problem
from .models import (BUILTIN_NAMES, CALL_TEXT, LOCAL_ONLY_KINDS, OPTIONS, SOURCE_TEXT, location_problem,
                     option_problem, source_kind, unsupported)

MODEL_KINDS = ("embedding", "causal_lm", "classifier", "reward", "language_id", "finetune")


def model_kind(c, name: str) -> str | None:
    """A declared model's kind as operators see it: a fine-tuned model is a causal LM."""
    m = next((m for m in c.recipe.models if m.name == name), None)
    if m is None:
        return None
    return "causal_lm" if m.kind == "finetune" else m.kind


def _call_text(op: OpCall, args: dict) -> str:
    key = next((k for k in ("metric", "method") if k in args), None)
    return f"`{op.op}({key}={args[key]})`" if key else f"`{op.op}`"


def check_models(c: Checked) -> None:
    for m in c.recipe.models:
        if m.kind not in MODEL_KINDS:
            c.diagnostics.append(Diagnostic("E0306", f"unknown model kind `{m.kind}`", m.kind_span,
                                            did_you_mean(m.kind, MODEL_KINDS) or (f"kinds: {', '.join(MODEL_KINDS)}",)))
        src = model_source(m, c)
        if m.kind == "finetune":
            _check_finetune(c, m, src)
            continue
        if not isinstance(src, str):
            c.diagnostics.append(Diagnostic("E0204", "a model's location must be a string", m.source.span))
        elif (where := location_problem(src)) is not None:  # found now, not when a step first loads it
            c.diagnostics.append(Diagnostic("E0312", where, m.source.span, did_you_mean(src, BUILTIN_NAMES) or (
                "give builtin:minilm, builtin:smollm2, builtin:lid176, a local model folder, .gguf file or "
                "fastText file (relative to the recipe file), or openai:URL#MODEL; models are never downloaded",)))
        elif (found := source_problem(src, m.kind)) is not None:
            c.diagnostics.append(Diagnostic(found.code, found.message, m.source.span, (found.hint,)))
        elif m.kind in LOCAL_ONLY_KINDS and src.startswith("openai:"):
            # an OpenAI-compatible server has no classification API: say so now, not mid-run
            c.diagnostics.append(Diagnostic("E0307", f"a `{m.kind}` model cannot be served by an OpenAI-compatible "
                                            "endpoint", m.source.span,
                                            ("the endpoint API has no language identification; give builtin:lid176 "
                                             "or a local fastText model file (lid.176.bin, GlotLID's model.bin)",)
                                            if m.kind == "language_id" else
                                            ("the endpoint API has no classification head; point the model at a "
                                             "local directory with one, e.g. a reward model checkpoint",)))
        if isinstance(src, str):
            for a in m.options:
                why = option_problem(src, a.name, model_option(a, c))
                if not why and a.name == "tokenizer" and (found := tokenizer_problem(model_option(a, c))):
                    c.diagnostics.append(Diagnostic(found.code, found.message, a.value.span, (found.hint,)))
                    continue
                if why:
                    known = OPTIONS[source_kind(src)]
                    c.diagnostics.append(Diagnostic("E0310", why, a.span, did_you_mean(a.name, known) or (
                        f"options of {SOURCE_TEXT[source_kind(src)]} model: {', '.join(sorted(known))}",)))


def check_model_calls(c: Checked, op: OpCall, spec, args: dict) -> None:
    """What the operator asks of each model (embeddings, prompt log-probabilities, a
    classification head, ...) is something that model's source can serve; said on the
    model's line, since that is what to change."""
    for pname, calls in spec.model_calls(args).items():
        m = next((m for m in c.recipe.models if m.name == args.get(pname) and m.kind != "finetune"), None)
        src = model_source(m, c) if m else None
        if not isinstance(src, str) or m.kind in LOCAL_ONLY_KINDS and src.startswith("openai:"):
            continue  # no such model, or E0307 already said it
        opts = {a.name: model_option(a, c) for a in m.options}
        for call in calls:
            bad = unsupported(m.kind, src, opts, call)
            if bad:
                c.diagnostics.append(Diagnostic(
                    "E0311", f"{_call_text(op, args)} needs {CALL_TEXT[call]} from `{m.name}`: {bad[0]}",
                    m.source.span, (bad[1],)))
                break
        for arg, message, hints in spec.check_model(args, pname, src):  # what the op's args ask of this model
            a = op.arg(arg)
            c.diagnostics.append(Diagnostic("E0207", message, a.value.span if a else op.span, hints))


def _check_finetune(c: Checked, m, base) -> None:
    """`model NAME = finetune(BASE, on=NODE, epochs=..., ...)`: BASE a causal_lm model declared
    here, NODE a node or source, the settings those of the finetune step."""
    from .ops.finetune import OP as spec
    if model_kind(c, base) != "causal_lm" or base == m.name:
        c.diagnostics.append(Diagnostic("E0308", f"`finetune` needs a causal_lm model to start from; `{base}` is "
                                        + ("not a declared model" if model_kind(c, base) is None else
                                           f"{'an' if model_kind(c, base)[0] in 'aeiou' else 'a'} {model_kind(c, base)} model"),
                                        m.source.span,
                                        ("declare it first: `model lm = causal_lm(\"builtin:smollm2\")`, then "
                                         f"`model {m.name} = finetune(lm, on=NODE)`",)))
    known = {p.name: p for p in spec.params if p.name != "base"} | {"on": None}
    opts = _options(c, "finetune", m.options, known)
    nodes = [n.name for n in c.recipe.nodes] + [x.name for x in c.recipe.sources]
    on = opts.get("on", (None, None))[1]
    if on not in nodes:
        a = opts.get("on", (None,))[0]
        c.diagnostics.append(Diagnostic("E0309", "`finetune` needs `on=NODE`: the rows to train on" if a is None else
                                        f"`finetune` trains on `{on}`, which is not a node or source",
                                        a.value.span if a else m.span,
                                        (did_you_mean(str(on), nodes) or (f"nodes: {', '.join(nodes)}",)) if a
                                        else (f"e.g. `on={nodes[-1] if nodes else 'seed'}`",)))
    for name, (a, v) in opts.items():
        p = known[name]
        if p is not None and not _fits(p.type, v):
            c.diagnostics.append(Diagnostic("E0204", f"`finetune` option `{name}` takes a {p.type}", a.value.span))


def _fits(t: str, v) -> bool:
    if t == "bool":
        return isinstance(v, bool)
    if t == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return True


def finetune_node(c, model: str) -> str | None:
    """The node a fine-tuned model trains on (None for other models)."""
    m = next((m for m in c.recipe.models if m.name == model and m.kind == "finetune"), None)
    if m is None:
        return None
    a = next((a for a in m.options if a.name == "on"), None)
    return _value(a.value, c.params) if a else None

"""finetune: the training step a `model NAME = finetune(BASE, on=NODE, ...)` declaration
makes (not written in pipelines): fine-tunes the base causal LM on the node's rows through
the shared runtime (recipe/runtime/train.py) and passes the rows on unchanged. The trained
weights are keyed by this step's fingerprint, so steps that use the model depend on it.
Memory: the model being trained, and the node's instruction and response texts."""
from __future__ import annotations

from .base import Op, P
from ._common import row_texts

SETTINGS = ("epochs", "lr", "lora", "max_tokens", "seed", "batch_rows")


class Finetune(Op):
    name = "finetune"
    kind = "global"
    internal = True
    needs_models = True
    doc = "Fine-tune a causal LM on a node's rows (made by a `finetune` model declaration)."
    params = (
        P("base", "model", required=True, doc="the causal_lm model to fine-tune"),
        P("epochs", "float", default=1, min=0.01, doc="passes over the rows"),
        P("lr", "float", default=2e-4, min=0.0, doc="learning rate (linear decay)"),
        P("lora", "bool", default=True, doc="LoRA adapters (merged after training) instead of every weight"),
        P("max_tokens", "int", default=256, min=8, doc="tokens per packed training sequence (rows are cut to it)"),
        P("seed", "int", default=0),
        P("batch_rows", "int", default=4, min=1, doc="packed sequences per optimiser step"),
    )

    def run(self, ctx, args, inputs):
        src = inputs[0]
        settings = {k: args.get(k) for k in SETTINGS}
        ctx.info.update(ctx.runtime.finetune(ctx.models[args["base"]], row_texts(ctx, src, "instruction"),
                                             row_texts(ctx, src, "response"), settings, ctx.fingerprint,
                                             progress=ctx.progress))
        ctx.out.keep(src, list(range(src.count())), "not kept")


OP = Finetune()

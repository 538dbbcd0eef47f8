"""necessity (MoDS, Du et al. 2023): how badly a given model (the checkpoint being
trained) handles each row; higher means the row is more needed. Adds `necessity`.

`loss`: mean token loss of the gold response under the model (chat template applied).
`generate_judge`: the model answers, a judge scores the answer (reward head logit, or a
causal LM's expected 1-5 rating); necessity = -score, so MoDS's "keep rows whose answer
scores below beta" is `filter(necessity > -beta)`. The answer is kept in `necessity_answer`.
Memory: the texts of one node.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .base import Op, P
from ._common import row_texts
from .score import JUDGE_PROMPT


class Necessity(Op):
    name = "necessity"
    kind = "map"
    version = 1
    doc = "MoDS necessity: loss of the gold response, or generate-and-judge, under the model being trained."
    params = (
        P("method", "str", default="loss", choices=("loss", "generate_judge")),
        P("model", "model", required=True, doc="the model being trained (causal_lm)"),
        P("judge", "model", doc="generate_judge: a reward/classifier model or a causal_lm judge"),
        P("column", "str", default="necessity"),
        P("max_new_tokens", "int", default=128, min=8),
    )

    def adds(self, args):
        out = [args.get("column", "necessity")]
        return out + (["necessity_answer"] if args.get("method") == "generate_judge" else [])

    def reads(self, args):
        return ["instruction", "response"]

    def types(self, args):
        out = {args.get("column", "necessity"): "float"}
        if args.get("method") == "generate_judge":
            out["necessity_answer"] = "str"
        return out

    def model_kinds(self, args):
        return {"model": ("causal_lm",), "judge": ("reward", "classifier", "causal_lm")}

    def model_calls(self, args):
        if args.get("method", "loss") == "loss":
            return {"model": ("loglik_chat",)}
        return {"model": ("generate",), "judge": ("classify", "choice_probs")}

    def models(self, args):
        return [m for m in (args.get("model"), args.get("judge")) if m]

    def check(self, args):
        if args.get("method") == "generate_judge" and not args.get("judge"):
            return [("method", "necessity(method=generate_judge) needs `judge=<model>`")]
        return []

    def run(self, ctx, args, inputs):
        rt, model = ctx.runtime, ctx.models[args["model"]]
        inst, resp = row_texts(ctx, inputs[0], "instruction"), row_texts(ctx, inputs[0], "response")
        prompts = [rt.chat_prompt(model, i) for i in inst]
        col = args.get("column", "necessity")
        if args.get("method", "loss") == "loss":
            res = rt.loglik(model, prompts, resp, progress=ctx.progress)
            vals = [(-r["logprob"] / r["tokens"]) if r["tokens"] else None for r in res]
            ctx.out.add_columns(inputs[0], pa.table({col: pa.array(vals, pa.float64())}))
            return
        answers = [g[0].strip() for g in rt.generate(model, prompts, max_new_tokens=args.get("max_new_tokens", 128),
                                                     progress=ctx.progress)]
        judge = ctx.models[args["judge"]]
        if judge["kind"] in ("reward", "classifier"):
            logits = rt.classify(judge, inst, answers)
            score = logits[:, 0] if logits.shape[1] == 1 else logits[:, -1]
        else:
            jp = [rt.chat_prompt(judge, JUDGE_PROMPT.format(instruction=i, response=a)) for i, a in zip(inst, answers)]
            p = rt.choice_probs(judge, jp, ["1", "2", "3", "4", "5"])
            score = (p / np.maximum(p.sum(1, keepdims=True), 1e-12)) @ np.arange(1, 6)
        ctx.out.add_columns(inputs[0], pa.table({col: pa.array((-np.asarray(score)).tolist(), pa.float64()),
                                             "necessity_answer": pa.array(answers, pa.string())}))


OP = Necessity()

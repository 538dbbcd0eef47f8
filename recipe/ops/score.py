"""score: add a named score column: IFD, perplexity, LM judge, reward model, text statistics,
tag complexity, or an expression over other columns.

Model-backed metrics go through the shared runtime (batched, cached per text), so
changing a threshold downstream recomputes nothing. Memory: the scored texts of one node.
"""
from __future__ import annotations

import math
import string

import numpy as np
import pyarrow as pa

from .base import Op, P
from ._common import approx_tokens, row_texts

JUDGE_PROMPT = ("Rate how good the response is as an answer to the instruction, from 1 (useless) to 5 "
                "(excellent, accurate and helpful). Reply with one digit.\n\n"
                "Instruction:\n{instruction}\n\nResponse:\n{response}\n\nRating:")
# LIFT (Xu et al. 2023) rates instructions with GPT-4 on these four aspects
RUBRIC_PROMPT = ("Score the following instruction and its answer from 1 to 5, considering together: "
                 "clarity of the instruction, difficulty, how well the answer explains, and its accuracy. "
                 "Reply with one digit.\n\nInstruction:\n{instruction}\n\nAnswer:\n{response}\n\nScore:")
MODEL_METRICS = ("ifd", "perplexity", "judge", "rubric", "reward")


class Score(Op):
    name = "score"
    kind = "map"
    describes_text = True

    def kind_of(self, args):
        return "relational" if args.get("metric") == "expr" else "map"
    version = 2  # 2: expressions: words/trim/log/sqrt/% translated anew
    doc = "Add a score column: ifd, perplexity, judge, rubric, reward, length, words, tokens, complexity, expr."
    params = (
        P("metric", "str", required=True, choices=MODEL_METRICS + ("length", "words", "tokens", "complexity", "expr")),
        P("column", "str", doc="name of the new column (default: the metric name)"),
        P("model", "model", doc="the model for ifd, perplexity, judge, rubric, reward; for tokens, the tokenizer to "
                                "count with (default: an estimate from words and punctuation)"),
        P("on", "column", default="response", doc="text column for length/words/tokens"),
        P("tags", "column", default="tags", doc="list column for complexity"),
        P("expr", "expr", doc="expression for metric=expr, e.g. `0.9 * judge + 0.1 * length_score`"),
        P("prompt", "str", doc="judge/rubric prompt; {column} placeholders, e.g. {instruction} and {response}"),
        P("chat_template", "bool", default=True, doc="wrap prompts in the model's chat template (tokens of a "
                                                     "conversation: render it with the template)"),
    )

    def out_name(self, args) -> str:
        return args.get("column") or args["metric"]

    def adds(self, args):
        return [self.out_name(args)]

    def types(self, args):
        return {self.out_name(args): "float"}

    def expr_type(self, param):
        return "float" if param == "expr" else None

    def model_kinds(self, args):
        m = args.get("metric")
        if m in ("ifd", "perplexity", "judge", "rubric"):
            return {"model": ("causal_lm",)}
        if m == "reward":
            return {"model": ("reward", "classifier")}
        if m == "tokens":  # optional: any model with a tokenizer counts exactly
            return {"model": ("causal_lm", "embedding", "classifier", "reward")}
        return {}

    def model_calls(self, args):
        m = args.get("metric")
        chat = args.get("chat_template", True)
        return {"model": {"ifd": ("loglik_chat" if chat else "loglik",), "perplexity": ("loglik_chat" if chat else "loglik",),
                          "judge": ("choice_probs",), "rubric": ("choice_probs",), "reward": ("classify",)}.get(m, ())}

    def templates(self, args):
        return ["prompt"] if args.get("metric") in ("judge", "rubric") else []

    def column_types(self, args):
        return {"tags": "list"} if args.get("metric") == "complexity" else {}

    def reads(self, args):
        m = args.get("metric")
        if m in MODEL_METRICS:
            return ["instruction", "response"]
        if m in ("length", "words", "tokens") and args.get("on", "response") != "conversation":
            return [args.get("on", "response")]
        if m == "complexity":
            return [args.get("tags", "tags")]
        return []

    def check(self, args):
        m = args.get("metric")
        if m in MODEL_METRICS and not args.get("model"):
            return [("metric", f"score(metric={m}) needs `model=<model>`")]
        if m == "expr" and args.get("expr") is None:
            return [("metric", "score(metric=expr) needs `expr=...`")]
        return []

    def run(self, ctx, args, inputs):
        src = inputs[0]
        m, name = args["metric"], self.out_name(args)
        if m == "expr":  # the engine evaluates it; `finish` reads what it made
            ctx.out.derive(src, {name: args["expr"]}, cast={name: "float"})
            return
        if m == "complexity":
            values = [float(len(t or [])) for t in src.column(args.get("tags", "tags"))]
        elif m in ("length", "words", "tokens"):
            texts = row_texts(ctx, src, args.get("on", "response"))
            values = ([float(len(t)) for t in texts] if m == "length" else
                      [float(len(t.split())) for t in texts] if m == "words" else
                      self.model_tokens(ctx, src, args) if args.get("model") else approx_tokens(texts).tolist())
        else:
            values = self.model_scores(ctx, src, args, m)
        arr = np.asarray(values, dtype=np.float64)
        nulls = _describe(ctx, name, arr)
        if nulls:  # a null score is not a low one: selections and filters treat it apart, so say so
            why = ("IFD and perplexity score the response, and these rows have none"
                   if m in ("ifd", "perplexity") and nulls == sum(not t for t in row_texts(ctx, src, "response"))
                   else "no finite value")
            ctx.warn(f"{nulls} of {len(arr)} rows scored null ({why})")
        ctx.out.add_columns(src, pa.table({name: pa.array([None if not math.isfinite(v) else v for v in values],
                                                      pa.float64())}))

    def finish(self, ctx, args, out):
        if args["metric"] != "expr":
            return
        name = self.out_name(args)
        arr = out.floats(name)
        nulls = _describe(ctx, name, arr)
        if nulls:  # an expression over a column the rows lack, or text that is no number, is null
            ctx.warn(f"{nulls} of {len(arr)} rows scored null (the expression is null for them: a field "
                     f"they lack, or text that is no number)")

    def model_tokens(self, ctx, src, args) -> list[float]:
        """Tokens under the model's tokenizer: of the text `on`, or with `on=conversation` (and
        `chat_template`, the default) of every turn rendered by the model's chat template, as a
        training run would see the row (`filter(tokens <= 2048)` keeps what fits a context)."""
        on = args.get("on", "response")
        if on == "conversation" and args.get("chat_template", True):
            items = [list(ms or []) for ms in src.column("messages")]
        else:
            items = row_texts(ctx, src, on)
        return [float(n) for n in ctx.runtime.token_counts(ctx.models[args["model"]], items)]

    def model_scores(self, ctx, src, args, m) -> list[float]:
        rt, model = ctx.runtime, ctx.models[args["model"]]
        inst = row_texts(ctx, src, "instruction")
        resp = row_texts(ctx, src, "response")
        chat = args.get("chat_template", True)
        wrap = (lambda u: rt.chat_prompt(model, u)) if chat else (lambda u: u + "\n")
        if m in ("ifd", "perplexity"):
            cond = rt.loglik(model, [wrap(i) for i in inst], resp, progress=ctx.progress)
            ppl_c = [_ppl(r) for r in cond]
            if m == "perplexity":
                return ppl_c
            # IFD (Li et al. 2023, Cherry LLM): PPL(response | instruction) / PPL(response)
            alone = rt.loglik(model, [""] * len(resp), resp, progress=ctx.progress)
            return [c / a if a and math.isfinite(a) and a > 0 else float("nan") for c, a in zip(ppl_c, (_ppl(r) for r in alone))]
        if m in ("judge", "rubric"):
            tmpl = args.get("prompt") or (JUDGE_PROMPT if m == "judge" else RUBRIC_PROMPT)
            fields = sorted({f for _, f, _, _ in string.Formatter().parse(tmpl) if f} - {"instruction", "response"})
            extra = {f: row_texts(ctx, src, f) for f in fields}
            prompts = [wrap(tmpl.format(instruction=i, response=r, **{f: extra[f][j] for f in fields}))
                       for j, (i, r) in enumerate(zip(inst, resp))]
            probs = rt.choice_probs(model, prompts, ["1", "2", "3", "4", "5"], progress=ctx.progress)
            # expected rating under the renormalised distribution over the five digits (SelectIT-style)
            p = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
            return (p @ np.arange(1, 6)).tolist()
        from ._common import reward_values
        return reward_values(rt.classify(model, inst, resp, progress=ctx.progress))


def _describe(ctx, name: str, arr: np.ndarray) -> int:
    """The scores' statistics into the run summary; returns how many are null."""
    finite = arr[np.isfinite(arr)]
    if len(finite):
        ctx.info[name] = score_stats(finite)
    return len(arr) - len(finite)


def _ppl(r: dict) -> float:
    return math.exp(-r["logprob"] / r["tokens"]) if r["tokens"] else float("nan")


def score_stats(finite: np.ndarray) -> dict:
    """Mean, min and max for the run summary, to six significant digits (six decimals made
    an IFD of 2e-07 a min of 0)."""
    return {k: float(f"{float(v):.6g}") for k, v in (("mean", finite.mean()), ("min", finite.min()),
                                                      ("max", finite.max()))}


OP = Score()

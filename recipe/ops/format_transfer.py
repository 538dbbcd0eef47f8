"""format_transfer: structural conversion, template rendering (PromptSource / FLAN), and
UIT's `unify` (Liang et al. 2023): the LM writes N candidate task definitions and
perplexity denoising keeps the one under which the task's own outputs are most likely.

Memory: the rows of one node (templates and unify rewrite every row).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from functools import lru_cache

import numpy as np
import pyarrow as pa

from ..diagnostics import UserError
from ..io.formats import BadRow, from_row
from .base import Op, P
from ._common import fetch_rows, set_aside, with_turn, write_rows

UNIFY_PROMPT = ("Here are examples of one task, as input and output pairs.\n\n{examples}"
                "Write the task's Definition in the style of Super-NaturalInstructions: one paragraph that "
                "tells a person exactly what to do with an input and what to output. Reply with only the definition.")
PARENTS = pa.field("_parents", pa.list_(pa.string()))


class FormatTransfer(Op):
    name = "format_transfer"
    kind = "map"

    def kind_of(self, args):
        return "global" if args.get("method") == "unify" else "map"  # unify picks one definition per task
    version = 1
    doc = "Convert between formats, render PromptSource/FLAN templates, or unify task instructions (UIT)."
    creates_rows = True
    params = (
        P("method", "str", required=True, choices=("convert", "template", "unify")),
        P("to", "str", choices=("alpaca", "sharegpt", "openai", "dolly", "prompt_completion"),
          doc="convert: rows the target format cannot hold are set aside"),
        P("promptsource", "str", path=True, doc="template: path to a PromptSource templates.yaml (or a folder of them)"),
        P("flan", "str", path=True, doc="template: path to a FLAN templates JSON"),
        P("flan_task", "str", doc="template: the FLAN task whose patterns to use"),
        P("pick", "str", default="seed", choices=("seed", "all"), doc="template: one per row by seed, or all"),
        P("model", "model", doc="unify: the LM that writes and scores definitions"),
        P("task_column", "str", default="task", doc="unify: rows with the same value form a task"),
        P("candidates", "strs", doc="unify: given candidate definitions instead of generated ones"),
        P("candidates_from", "column", doc="unify: a text column whose distinct values in a task are its candidates "
                                           "(data that brings its own, as UIT's 32 transfers of a task)"),
        P("n", "int", default=4, min=1, max=64, doc="unify: candidates to generate per task"),
        P("shots", "int", default=2, min=0, max=8, doc="unify: examples shown to the LM and in the scoring prompt"),
        P("eval_instances", "int", default=16, min=1, doc="unify: instances whose outputs score each candidate"),
        P("max_new_tokens", "int", default=96, min=8),
        P("temperature", "float", default=0.7, min=0.0, max=2.0),
        P("seed", "int", default=0),
    )

    def models(self, args):
        return [args["model"]] if args.get("model") else []

    def adds(self, args):
        return {"unify": ["definition", "definition_loss"], "template": ["template"]}.get(args.get("method"), [])

    def types(self, args):
        known = {"definition": "str", "definition_loss": "float", "template": "str"}
        return {c: known[c] for c in self.adds(args)}

    def model_kinds(self, args):
        return {"model": ("causal_lm",)}

    def model_calls(self, args):
        return {"model": ("generate", "loglik")}

    def reads(self, args):
        if args.get("method") != "unify":
            return []
        return [args.get("task_column", "task")] + ([args["candidates_from"]] if args.get("candidates_from") else [])

    def check(self, args):
        m = args.get("method")
        if m == "convert" and not args.get("to"):
            return [("method", "format_transfer(method=convert) needs `to=<format>`")]
        if m == "template" and not (args.get("promptsource") or (args.get("flan") and args.get("flan_task"))):
            return [("method", "format_transfer(method=template) needs `promptsource=PATH` or `flan=PATH, flan_task=NAME`")]
        if m == "unify" and not args.get("model"):
            return [("method", "format_transfer(method=unify) needs `model=<causal_lm>`")]
        if args.get("candidates") and args.get("candidates_from"):
            return [("candidates_from", "format_transfer takes `candidates` or `candidates_from`, not both")]
        if args.get("candidates_from") and m != "unify":
            return [("candidates_from", "`candidates_from` is for method=\"unify\"")]
        if m == "template":
            try:  # read now: a missing or unreadable file, or an unknown FLAN task, fails here, not mid-run
                _templates(args)
            except UserError as e:
                where = "flan_task" if "no task" in str(e) else "promptsource" if args.get("promptsource") else "flan"
                return [(where, str(e))]
        return []

    def files(self, args):
        return [args[k] for k in ("promptsource", "flan") if args.get(k)] if args.get("method") == "template" else []

    def template_fields(self, args):
        if args.get("method") != "template":
            return None
        from ..templates import template_fields
        try:
            temps = _templates(args)
        except UserError:
            return None
        return ("promptsource" if args.get("promptsource") else "flan"), [(t.name, template_fields(t)) for t in temps]

    def run(self, ctx, args, inputs):
        getattr(self, "_" + args["method"])(ctx, args, inputs[0])

    # ---- structural conversion ----------------------------------------------------------
    def _convert(self, ctx, args, src):
        rows, schema = fetch_rows(ctx, src)
        keep, bad = [], []
        for i, r in enumerate(rows):
            try:
                from_row(args["to"], r)
                keep.append(i)
            except BadRow as e:
                bad.append((i, f"cannot be {args['to']}: {e}"))
        ctx.out.keep(src, keep, dict(bad))

    # ---- templates ------------------------------------------------------------------------
    def _template(self, ctx, args, src):
        from ..templates import render
        temps = _templates(args)
        rows, schema = fetch_rows(ctx, src)
        rng = np.random.Generator(np.random.PCG64(args.get("seed", 0)))
        picks = rng.integers(0, len(temps), size=len(rows))
        out, aside = [], []
        for i, r in enumerate(rows):
            fields = {k: v for k, v in r.items() if k not in ("messages", "_parents")}
            if args.get("pick") == "all":
                made = 0
                for j, t in enumerate(temps):
                    try:
                        inp, tgt = render(t, fields)
                    except ValueError:
                        continue
                    out.append(with_turn({**r, "_id": f"{r['_id']}#t{j}", "_parents": [r["_id"]], "template": t.name}, inp, tgt))
                    made += 1
                aside.append((r["_id"], f"rendered into {made} rows, one per template" if made else "no template could render this row"))
                continue
            t = temps[int(picks[i])]
            try:
                inp, tgt = render(t, fields)
            except ValueError as e:
                aside.append((r["_id"], str(e)))
                continue
            out.append(with_turn({**r, "template": t.name}, inp, tgt))
        write_rows(ctx, out, schema, [PARENTS, pa.field("template", pa.string())])
        set_aside(ctx, aside)
        ctx.info["templates"] = len(temps)

    # ---- UIT unify ------------------------------------------------------------------------
    def _unify(self, ctx, args, src):
        rt, model = ctx.runtime, ctx.models[args["model"]]
        rows, schema = fetch_rows(ctx, src)
        col = args.get("task_column", "task")
        tasks: OrderedDict[str, list[int]] = OrderedDict()
        for i, r in enumerate(rows):
            tasks.setdefault(str(r.get(col)) if col in r else "all", []).append(i)
        given = args.get("candidates_from")
        shots = args.get("shots", 2)
        report = {}
        for task, idx in tasks.items():
            inst = [_task_input(rows[i]) for i in idx]
            outs = [rows[i]["response"] for i in idx]
            # each instance once in the examples and the scoring (a task given as its candidates'
            # copies holds every instance once per candidate)
            pairs = list(dict.fromkeys(zip(inst, outs)))
            # the examples: the task's own positive examples where its rows carry them (NI and
            # UIT task files), as UIT scores a definition; else its first instances, which are
            # then not scored as well (their outputs are in the prompt) when others are left
            own = _positive_examples([rows[i] for i in idx], shots)
            scored = pairs if own or len(pairs) <= shots else pairs[shots:]
            task_examples = examples_text(own or pairs[:shots])
            cands = list(args.get("candidates") or [])
            examples = {}
            if given:
                by_cand: OrderedDict[str, list[dict]] = OrderedDict()
                for i in idx:
                    v = rows[i].get(given)
                    if isinstance(v, str) and v.strip():
                        by_cand.setdefault(v.strip(), []).append(rows[i])
                cands = list(by_cand)
                # UIT's transfers each bring their own examples, written in their own format
                examples = {c: examples_text(e) for c, rs in by_cand.items() if (e := _positive_examples(rs, shots))}
            if not cands:
                prompt = rt.chat_prompt(model, UNIFY_PROMPT.format(examples=task_examples))
                gen = rt.generate(model, [prompt], n=args.get("n", 4), max_new_tokens=args.get("max_new_tokens", 96),
                                  temperature=args.get("temperature", 0.7), seed=args.get("seed", 0))[0]
                cands = list(dict.fromkeys(c.strip() for c in gen if c.strip())) or ["Complete the task."]
                report[task] = {"generated": True}
            losses = definition_losses(rt, model, cands, [a for a, _ in scored], [b for _, b in scored],
                                       [examples.get(c, task_examples) for c in cands], args.get("eval_instances", 16))
            best = int(np.argmin(losses))
            report[task] = {"candidates": [{"definition": c, "loss": round(l, 6)} for c, l in zip(cands, losses)],
                            "chosen": best, "instances": len(pairs), "scored": min(len(scored), args.get("eval_instances", 16)),
                            "examples": "positive_examples" if own or examples else "instances", **report.get(task, {})}
            for j, i in enumerate(idx):
                rows[i] = with_turn({**rows[i], "definition": cands[best], "definition_loss": losses[best]},
                                    f"{cands[best]}\n\n{inst[j]}", outs[j])
        write_rows(ctx, rows, schema, [pa.field("definition", pa.string()), pa.field("definition_loss", pa.float64())])
        ctx.info["unify"] = report


def _task_input(row: dict) -> str:
    v = row.get("input")
    return v if isinstance(v, str) and v.strip() else row["instruction"]


def _positive_examples(rows: list[dict], shots: int) -> list[tuple[str, str]]:
    """The first `shots` (input, output) pairs of the `positive_examples` of the first of
    `rows` that has usable ones (the NI reader's column: a task file's "Positive Examples")."""
    import json
    for r in rows:
        v = r.get("positive_examples")
        if isinstance(v, str):  # stored as JSON text
            try:
                v = json.loads(v)
            except ValueError:
                continue
        got = [(e["input"], e["output"]) for e in v or [] if isinstance(e, dict)
               and isinstance(e.get("input"), str) and isinstance(e.get("output"), str)] if isinstance(v, list) else []
        if got:
            return got[:shots]
    return []


def examples_text(pairs) -> str:
    """Examples as UIT's main_ppl_annotation.py lays them out before the instance to complete
    (`Positive Examples 1`, ...; until session 41 bare `Input:`/`Output:` pairs, which agreed
    less with GPT-J's ranking of UIT's 32 definitions: Spearman 0.45 against 0.48)."""
    return "".join(f"Positive Examples {k}\nInput: {a}\nOutput: {b}\n\n" for k, (a, b) in enumerate(pairs, 1))


def definition_losses(rt, model, cands: list[str], inputs: list[str], outputs: list[str], examples: list[str],
                      eval_instances: int) -> list[float]:
    """UIT's perplexity denoising (main_ppl_annotation.py): for each candidate, the mean
    token loss of the task's own instance outputs given `Definition + examples + input`, laid
    out as UIT's script does (`examples[i]`: the text of candidate i's examples)."""
    m = min(eval_instances, len(inputs))
    prompts, conts, owner = [], [], []
    for ci, c in enumerate(cands):
        for j in range(m):
            prompts.append(f"Definition: {c}\n\n{examples[ci]}Now complete the following example -\nInput: {inputs[j]}\nOutput:")
            conts.append(" " + outputs[j].strip())
            owner.append(ci)
    res = rt.loglik(model, prompts, conts)
    tot = np.zeros(len(cands))
    cnt = np.zeros(len(cands))
    for o, r in zip(owner, res):
        tot[o] += -r["logprob"]
        cnt[o] += r["tokens"]
    return [float(t / c) if c else math.inf for t, c in zip(tot, cnt)]


OP = FormatTransfer()


def _templates(args) -> list:
    """The call's templates, read once per file state (`check` and the run both ask)."""
    from ..templates import template_files
    path = args.get("promptsource") or args.get("flan")
    state = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in template_files(path))
    return _load(bool(args.get("promptsource")), path, args.get("flan_task"), state)


@lru_cache(maxsize=8)
def _load(promptsource: bool, path: str, task, state) -> list:
    from ..templates import load_flan, load_promptsource
    return load_promptsource(path) if promptsource else load_flan(path, task)

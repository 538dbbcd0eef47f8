"""instances: inputs and outputs written for each instruction-only row by an LM, as Self-Instruct
(Wang et al. 2023) made the instances of its bootstrapped tasks (`identify_clf_or_not.py`,
`generate_instances.py`, `prepare_for_finetuning.py`).

Each task (a row whose last turn is a user's: `self_instruct`'s new rows) is first asked whether
it is a classification task ("Is it classification?", few-shot, greedy, three tokens; a first
word of Yes counts, as the paper read it). A classification task is then prompted output first
(each class label, then an input for it: a small model otherwise writes inputs of one label
only, the paper found), any other task input first ("Example 1", its input, its output), both
greedy, up to `max_new_tokens`, stopping at "Example <per_task + 1>" or at the next "Task:".
The answer is parsed as the paper parsed it; the last instance is dropped when generation
reached `max_new_tokens`; an instance with an empty output, with the same input and output, or
ending in a colon is set aside; a task with two instances of the same input and different
outputs is set aside whole; repeats are set aside; of the rest, `per_task` are kept (a seeded
draw, in order).

The first kept instance becomes the task's row (its id stays); each further one is a new row
`ID+instanceK` (K: its place in the model's answer) with `_parents` [ID]. Instances set aside
are created rows set aside with the reason; a task with none usable is set aside with why.
Rows that have an answer are left as they were. Adds `input` (the instance's input, joined to
the instruction in the user turn, as the Alpaca reader does) and `is_classification`.

The prompts are this project's wording and examples (`ops/_instance_prompts.py`), composed as
the paper composed its own, so `check_file=`, `input_first_file=` and `output_first_file=` take
the paper's templates word for word. The paper also used a presence penalty of 1.5, which local
generation does not have. Memory: the rows of one node.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from . import _instance_prompts as ip
from ._common import fetch_rows, set_aside, with_turn, write_rows
from .base import Op, P

PARENTS = pa.field("_parents", pa.list_(pa.string()))
INPUT = pa.field("input", pa.string())
CLF = pa.field("is_classification", pa.bool_())


class Instances(Op):
    name = "instances"
    kind = "global"  # a task's row turns into several
    version = 1
    doc = "Write inputs and outputs for instruction-only rows with an LM (Self-Instruct's instance generation)."
    creates_rows = True
    params = (
        P("model", "model", required=True, doc="the LM that writes the instances"),
        P("per_task", "int", default=5, min=1, max=20, doc="instances kept per task at most (the paper's 5)"),
        P("max_new_tokens", "int", default=300, min=16, doc="per task's answer (the paper's 300)"),
        P("prompt", "str", default="raw", choices=("raw", "chat"),
          doc="raw: the prompts continued as text (base models); chat: in the model's chat template"),
        P("check_file", "str", path=True, doc="the classification check's prompt, up to its last `Task:` "
                                              "(the paper's clf_task_template word for word)"),
        P("input_first_file", "str", path=True, doc="the prompt for tasks that are not classification"),
        P("output_first_file", "str", path=True, doc="the prompt for classification tasks"),
        P("seed", "int", default=0, doc="which instances are kept when a task has more than per_task"),
    )

    def models(self, args):
        return [args["model"]] if args.get("model") else []

    def adds(self, args):
        return ["_parents", "input", "is_classification"]

    def types(self, args):
        return {"_parents": "list", "input": "str", "is_classification": "bool"}

    def model_kinds(self, args):
        return {"model": ("causal_lm",)}

    def model_calls(self, args):
        return {"model": ("generate",)}

    def files(self, args):
        return [args[k] for k in ("check_file", "input_first_file", "output_first_file") if args.get(k)]

    def run(self, ctx, args, inputs):
        rows, schema = fetch_rows(ctx, inputs[0])
        tasks = [i for i, r in enumerate(rows) if _unanswered(r.get("messages"))]
        if not tasks:
            ctx.warn("no row is a task without an answer: nothing was made (rows with answers are left as they were)")
        maker = Maker(ctx, args)
        out, aside = maker.run(rows, tasks)
        write_rows(ctx, out, schema, [PARENTS, INPUT, CLF])
        set_aside(ctx, aside)


def _unanswered(msgs) -> bool:
    """A task: a user turn with no answer after it (an empty one counts as none)."""
    last = _last_user(msgs)
    return last is not None and not any((m.get("content") or "").strip() for m in msgs[last + 1:])


def _last_user(msgs) -> int | None:
    return max((j for j, m in enumerate(msgs or []) if m.get("role") == "user"), default=None)


def _prefix(args: dict, key: str, default: str) -> str:
    return Path(args[key]).read_text(encoding="utf-8").rstrip("\n ") if args.get(key) else default


class Maker:
    def __init__(self, ctx, args: dict):
        self.ctx, self.args = ctx, args
        self.rt, self.model = ctx.runtime, ctx.models[args["model"]]
        self.per = args.get("per_task", 5)
        self.chat = args.get("prompt", "raw") == "chat"
        self.why: dict[str, int] = {}

    def _ask(self, texts: list[str], **kw) -> list[tuple[str, bool]]:
        prompts = [self.rt.chat_prompt(self.model, t) if self.chat else t for t in texts]
        outs = self.rt.generate(self.model, prompts, temperature=0.0, progress=self.ctx.progress, ends=True, **kw)
        return [(text, cut) for ((text, cut),) in outs]

    def run(self, rows: list[dict], tasks: list[int]) -> tuple[list[dict], list[tuple[str, str]]]:
        a = self.args
        instr = [_instruction(rows[i]) for i in tasks]
        check = _prefix(a, "check_file", ip.CLF_CHECK)
        answers = self._ask([ip.check_prompt(check, t) for t in instr], max_new_tokens=3, stop=["\n", "Task"])
        clf = [ip.is_yes(text) for text, _ in answers]
        firsts = {True: _prefix(a, "output_first_file", ip.OUTPUT_FIRST),
                  False: _prefix(a, "input_first_file", ip.INPUT_FIRST)}
        made = self._ask([ip.instance_prompt(firsts[c], t) for c, t in zip(clf, instr)],
                         max_new_tokens=a.get("max_new_tokens", 300), stop=[f"Example {self.per + 1}", "Task:"])
        out = [{"is_classification": None} | r for r in rows]  # a seed's own flag stays
        extra: dict[int, list[dict]] = {}
        aside: list[tuple[str, str]] = []
        gone: set[int] = set()
        for i, t, c, (text, cut) in zip(tasks, instr, clf, made):
            rid = rows[i]["_id"]
            pairs = ip.parse_classification(text) if c else ip.parse_generation(text)
            cut_one = bool(cut and pairs)
            if cut_one:
                pairs = pairs[:-1]
                self._count("cut off at max_new_tokens (the last instance)")
            kept, lost, whole = self._sift(rid, pairs, c)
            aside += lost
            if whole or not kept:
                aside.append((rid, f"instances: {whole or self._none_why(text, pairs, cut_one)}"))
                gone.add(i)
                continue
            news = [_row(rows[i], t, inp, o, c) for _, inp, o in kept]
            out[i] = news[0]
            extra[i] = [n | {"_id": f"{rid}+instance{k}", "_parents": [rid]} for (k, _, _), n in zip(kept[1:], news[1:])]
        result = [r for i, r in enumerate(out) if i not in gone for r in [r] + extra.get(i, [])]
        n_clf = sum(clf)
        self.ctx.info.update({"tasks": len(tasks), "classification tasks": n_clf,
                              "instances": sum(1 + len(v) for v in extra.values()),
                              "tasks set aside": len(gone)} | ({"set aside for": dict(sorted(
                                  self.why.items(), key=lambda kv: -kv[1]))} if self.why else {}))
        if tasks and len(gone) == len(tasks):
            self.ctx.warn("no task got a usable instance: see the reasons in set_aside.jsonl (a model that does not "
                          "keep the prompts' layout writes none)")
        return result, aside

    def _sift(self, rid: str, pairs: list[tuple[str, str]], clf: bool):
        """The instances kept ((K, input, output), in order), those set aside (created rows with
        why), and why the whole task goes (or None)."""
        ok, lost = [], []
        for k, (inp, o) in enumerate(pairs, 1):
            why = ip.invalid(inp, o)
            if why:
                lost.append((f"{rid}+instance{k}", f"instances: {why}"))
                self._count(why)
            else:
                ok.append((k, inp, o))
        seen: dict[str, str] = {}
        for _, inp, o in ok:
            if inp and seen.setdefault(inp, o) != o:
                self._count("the same input with different outputs (the whole task)")
                what = "label" if clf else "output"
                return [], lost, f"two instances have the same input and a different {what}: {_short(inp)}"
        kept, first = [], {}
        for k, inp, o in ok:
            if (inp, o) in first:
                lost.append((f"{rid}+instance{k}", f"instances: a repeat of instance {first[(inp, o)]}"))
                self._count("a repeat")
            else:
                first[(inp, o)] = k
                kept.append((k, inp, o))
        if len(kept) > self.per:
            rng = np.random.default_rng([self.args.get("seed", 0), int.from_bytes(rid.encode()[:8], "little")])
            pick = set(rng.choice(len(kept), self.per, replace=False).tolist())
            for j, (k, _, _) in enumerate(kept):
                if j not in pick:
                    lost.append((f"{rid}+instance{k}", f"instances: more than per_task={self.per}"))
                    self._count(f"more than per_task={self.per}")
            kept = [x for j, x in enumerate(kept) if j in pick]
        return kept, lost, None

    def _none_why(self, text: str, pairs: list, cut_one: bool) -> str:
        if not pairs and cut_one:
            return (f"the answer ran to max_new_tokens={self.args.get('max_new_tokens', 300)} and its one instance "
                    f"was cut off there: {_short(text.strip())}")
        if not pairs:
            self._count("no instance in the model's layout")
            return f"the model's answer holds no instance in the prompt's layout: {_short(text.strip()) or '(empty)'}"
        return "no usable instance (each is set aside with why)"

    def _count(self, why: str) -> None:
        self.why[why] = self.why.get(why, 0) + 1


def _instruction(row: dict) -> str:
    msgs = row["messages"]
    return msgs[_last_user(msgs)].get("content") or ""


def _row(row: dict, instruction: str, inp: str, out: str, clf: bool) -> dict:
    user = f"{instruction}\n\n{inp}" if inp.strip() else instruction
    head = row["messages"][:_last_user(row["messages"])]  # a system turn before the task stays
    new = with_turn(dict(row), user, out)
    new["messages"] = head + new["messages"]
    return new | {"input": inp, "is_classification": clf}


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."


OP = Instances()

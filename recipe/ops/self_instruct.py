"""self_instruct: new instructions bootstrapped from the input rows' instructions by an LM, as
Self-Instruct (Wang et al. 2023, `bootstrap_instructions.py`) and Stanford Alpaca made theirs.

Each prompt lists `per_prompt` example tasks, `from_made` of them drawn from the instructions
made so far (when there are any) and the rest from the input rows, in a seeded random order,
and asks for more ("Come up with a series of tasks:" and the next number: the published prompt,
continued as plain text; `prompt="chat"` puts it in the model's chat template for a model that
only follows chats). Generation stops at the paper's stop sequences (a blank line, or the number
after seven new tasks: "16." for 8 examples); the numbered tasks written before are the
candidates, the last one dropped when the answer reached `max_new_tokens` (it may be cut
mid-sentence). Each candidate is then kept or set aside, in order, by the paper's
filters: more than 3 and at most 150 words; none of its words for what a language model cannot
do (image, graph, picture, file, map, draw, plot, go to, and their plurals); not starting with
"Write a program", punctuation or a non-ASCII character; and ROUGE-L F1 at most `max_similarity`
with every instruction in the pool (the input rows' and those kept so far; rouge-score's, with
an exact shortcut in algorithms/rouge_pool.py). The paper also capitalised each candidate
(lower-casing the rest of it); here only the first letter is raised.

Rounds of `prompts_per_round` prompts run until `n` instructions are made, `max_rounds` pass,
or three rounds in a row make none. The input rows come out first, unchanged; new rows follow,
instruction-only (answer them with `respond`), with `_parents` (the example tasks of their
prompt). Candidates set aside are created rows set aside with their reason, so accounting is
exact. Memory: the rows of one node and the pool's token counts.

`method="alpaca"` is Stanford Alpaca's one pass instead (`ops/_alpaca_prompt.py`): 3 example
tasks from the rows, each with its input and output, after a list of requirements; the model
writes whole tasks up to task 20, and each is kept with its input and output (Alpaca's longer
keyword list, a task without an output set aside), so the new rows need no `respond`.
"""
from __future__ import annotations

import re
import string
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import _alpaca_prompt as alpaca
from .base import Op, P
from ._alpaca_prompt import Task
from ._common import fetch_rows, set_aside, write_rows

PARENTS = pa.field("_parents", pa.list_(pa.string()))
INPUT = pa.field("input", pa.string())
HEADER = "Come up with a series of tasks:\n"
# Self-Instruct's keyword filter: things a language model cannot see, make or do
CANNOT = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
          "plot", "go to")
_ITEM = re.compile(r"(?:^|\n)[ \t]*(?:task[ \t]*)?\d+[ \t]*[.):][ \t]*", re.I)
STALL_ROUNDS = 3


def encode_prompt(tasks: list[str]) -> str:
    """The published prompt: the tasks numbered, then the next number for the model to go on."""
    lines = "".join(f"{i + 1}. {_one_line(t)}\n" for i, t in enumerate(tasks))
    return f"{HEADER}{lines}{len(tasks) + 1}."


def bare(instruction: str, given) -> str:
    """The instruction without the input a reader joined to it (Alpaca's `input`, a Self-Instruct
    instance's): the paper's prompts and its novelty test hold instructions alone."""
    if isinstance(given, str) and given.strip() and instruction.endswith("\n\n" + given):
        return instruction[:-len(given) - 2]
    return instruction


def _one_line(task: str) -> str:
    return re.sub(r"\s+", " ", task).strip().rstrip(":")


def parse_tasks(text: str, continued: bool, cut: bool) -> list[str]:
    """The tasks in a model's answer: numbered items up to the first blank line; with
    `continued` (a plain-text prompt that ended in the next number) the text before the first
    number is a task too; with `cut` (the answer reached max_new_tokens) the last is dropped."""
    text = text.split("\n\n", 1)[0] if continued else _first_list(text)
    parts = _ITEM.split(text)
    items = parts if continued else parts[1:]
    items = [re.sub(r"\s+", " ", t).strip() for t in items]
    if cut and items:
        items = items[:-1]
    return [t for t in items if t]


def _first_list(text: str) -> str:
    """A chat answer's numbered list: from its first item to the blank line after the list."""
    m = _ITEM.search(text)
    if not m:
        return ""
    rest = text[m.start():]
    end = re.search(r"\n[ \t]*\n(?![ \t]*(?:task[ \t]*)?\d+[ \t]*[.):])", rest, re.I)
    return rest[:end.start()] if end else rest


def unusable(task: str, cannot: tuple = CANNOT) -> tuple[str, str] | None:
    """(filter, why) when one of Self-Instruct's filters drops a candidate, else None (`cannot`:
    the words for what a language model cannot do; Alpaca's list is longer)."""
    words = len(task.split())
    if words <= 3 or words > 150:
        return "length", f"{words} words (more than 3 and at most 150 needed)"
    low = task.lower()
    for w in cannot:
        if re.search(rf"\b{re.escape(w)}\b", low):
            return "asks for what a language model cannot do", f"asks for `{w}`, which a language model cannot see or make"
    if task.startswith("Write a program"):
        return "starts with `Write a program`", "starts with `Write a program` (the paper found the model adding it to other tasks)"
    if task[0] in string.punctuation:
        return "starts with punctuation", "starts with punctuation"
    if not task[0].isascii():
        return "starts with a non-ASCII character", "starts with a non-ASCII character"
    return None


class SelfInstruct(Op):
    name = "self_instruct"
    kind = "global"  # every prompt draws from all the rows and from what earlier rounds made
    version = 1
    doc = "Bootstrap new instructions from the rows' instructions with an LM (Self-Instruct); new rows keep _parents."
    creates_rows = True
    params = (
        P("model", "model", required=True, doc="the LM that writes new tasks"),
        P("n", "int", required=True, min=1, doc="new instructions to make"),
        P("method", "str", default="self_instruct", choices=("self_instruct", "alpaca"),
          doc="self_instruct: instructions alone (answer them with `respond`); alpaca: Stanford Alpaca's one "
              "pass, each task an instruction, an input and an output"),
        P("per_prompt", "int", min=2, max=30, doc="example tasks in each prompt (self_instruct: 8; alpaca: 3)"),
        P("from_made", "int", min=0, doc="of those, how many come from the instructions made so far "
                                         "(self_instruct: 2; alpaca: 0)"),
        P("prompt_file", "str", path=True, doc="alpaca: the requirements to put before the examples (Alpaca's "
                                               "prompt.txt, word for word); default: this project's wording"),
        P("max_similarity", "float", default=0.7, min=0.0, max=1.0,
          doc="a task with a higher ROUGE-L F1 with any instruction in the pool is set aside"),
        P("prompt", "str", default="raw", choices=("raw", "chat"),
          doc="raw: the published prompt continued as text (base models); chat: in the model's chat template"),
        P("prompts_per_round", "int", default=8, min=1, doc="prompts sent to the model together"),
        P("max_rounds", "int", default=50, min=1, doc="rounds at most, however many were made"),
        P("max_new_tokens", "int", default=512, min=16, doc="per answer"),
        P("temperature", "float", default=0.7, min=0.0, max=2.0, doc="the paper's 0.7"),
        P("seed", "int", default=0, doc="which example tasks each prompt draws, and sampling"),
    )

    def models(self, args):
        return [args["model"]] if args.get("model") else []

    def adds(self, args):
        return ["_parents"] + (["input"] if args.get("method") == "alpaca" else [])

    def types(self, args):
        return {"_parents": "list"} | ({"input": "str"} if args.get("method") == "alpaca" else {})

    def model_kinds(self, args):
        return {"model": ("causal_lm",)}

    def model_calls(self, args):
        return {"model": ("generate",)}

    def files(self, args):
        return [args["prompt_file"]] if args.get("prompt_file") else []

    def check(self, args):
        per, made = sizes(args)
        if made >= per:
            return [("from_made", f"`from_made` must be below `per_prompt` ({per}): every prompt needs an input "
                                  f"row's task")]
        if args.get("prompt_file") and args.get("method", "self_instruct") != "alpaca":
            return [("prompt_file", "`prompt_file` is the requirements of `method=\"alpaca\"`'s prompt")]
        if args.get("method") == "alpaca" and args.get("prompt", "raw") == "chat":
            return [("prompt", "`method=\"alpaca\"` continues Alpaca's prompt as text: leave `prompt` out")]
        return []

    def run(self, ctx, args, inputs):
        from ..algorithms.rouge_pool import RougePool
        rows, schema = fetch_rows(ctx, inputs[0])
        seeds = [(r["_id"], Task(bare(r["instruction"], r.get("input")), r.get("input") or "", r.get("response") or ""))
                 for r in rows if (r.get("instruction") or "").strip()]
        if not seeds:
            ctx.warn("no row has an instruction to start from: nothing was made")
            write_rows(ctx, rows, schema, [PARENTS])
            return
        pool = RougePool()
        for rid, task in seeds:
            pool.add(rid, task.instruction)
        made, aside = Bootstrap(ctx, args, seeds, pool).run()
        base = {k: None for k in schema.names}
        alpaca = args.get("method") == "alpaca"
        new = [{**base, "_id": rid, "_parents": parents, **_row(task, alpaca)} for rid, task, parents in made]
        write_rows(ctx, rows + new, schema, [PARENTS] + ([INPUT] if alpaca else []))
        set_aside(ctx, aside)


def sizes(args: dict) -> tuple[int, int]:
    """(per_prompt, from_made), the method's defaults where not given."""
    alpaca = args.get("method") == "alpaca"
    per, made = args.get("per_prompt"), args.get("from_made")
    return (per if isinstance(per, int) else 3 if alpaca else 8), (made if isinstance(made, int) else 0 if alpaca else 2)


def _row(task: Task, alpaca: bool) -> dict:
    """A new row: the instruction alone (self_instruct), or Alpaca's three parts, the input joined
    to the user turn as the Alpaca reader joins it and kept as the column `input`."""
    if not alpaca:
        return {"messages": [{"role": "user", "content": task.instruction}], "instruction": task.instruction,
                "response": ""}
    user = f"{task.instruction}\n\n{task.input}" if task.input.strip() else task.instruction
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": task.output}],
            "instruction": user, "response": task.output, "input": task.input}


class Bootstrap:
    """The rounds: prompts drawn, answers parsed, candidates filtered in order into the pool."""

    def __init__(self, ctx, args: dict, seeds: list[tuple[str, str]], pool):
        self.ctx, self.args, self.seeds, self.pool = ctx, args, seeds, pool
        self.rt, self.model = ctx.runtime, ctx.models[args["model"]]
        self.n = args["n"]
        self.per, self.from_made = sizes(args)
        self.alpaca = args.get("method") == "alpaca"
        self.requirements = alpaca.REQUIREMENTS
        if self.alpaca and args.get("prompt_file"):
            self.requirements = Path(args["prompt_file"]).read_text(encoding="utf-8")
        self.made: list[tuple[str, Task, list[str]]] = []
        self.aside: list[tuple[str, str]] = []
        self.why: dict[str, int] = {}

    def run(self) -> tuple[list, list]:
        a = self.args
        mnt, chat = a.get("max_new_tokens", 512), a.get("prompt", "raw") == "chat"
        stalled = rnd = unread = empty = 0
        for rnd in range(a.get("max_rounds", 50)):
            jobs = [self._draw(rnd, k) for k in range(a.get("prompts_per_round", 8))]
            prompts = [self._prompt([t for _, t in tasks], chat) for tasks in jobs]
            # the paper's stop sequences: a blank line, or the number after seven new tasks;
            # Alpaca's: task 20
            last = f"\n{self.per + 8}"
            stop = (alpaca.stops() if self.alpaca else [last + ".", last + " ."] if chat
                    else ["\n\n", last + ".", last + " ."])
            outs = self.rt.generate(self.model, prompts, max_new_tokens=mnt, temperature=a.get("temperature", 0.7),
                                    seed=a.get("seed", 0), progress=self.ctx.progress, stop=stop, ends=True)
            before = len(self.made)
            for tasks, ((text, cut),) in zip(jobs, outs):
                cands = (alpaca.parse(text, len(tasks), cut) if self.alpaca
                         else [Task(t) for t in parse_tasks(text, not chat, cut)])
                empty += not cands
                for i, cand in enumerate(cands):
                    if len(self.made) >= self.n:
                        unread += len(cands) - i
                        break
                    if cand.instruction:
                        cand = cand._replace(instruction=cand.instruction[0].upper() + cand.instruction[1:])
                    self._consider(cand, [rid for rid, _ in tasks])
            stalled = stalled + 1 if len(self.made) == before else 0
            if len(self.made) >= self.n or stalled >= STALL_ROUNDS:
                break
        info = {"made": len(self.made), "rounds": rnd + 1, "candidates set aside": len(self.aside)}
        if self.why:
            info["set aside for"] = dict(sorted(self.why.items(), key=lambda kv: -kv[1]))
        if unread:
            info["candidates not needed"] = unread
        if empty:  # the model did not write the list's layout: a smaller model's usual failure
            info["answers without a task"] = empty
        self.ctx.info.update(info)
        if len(self.made) < self.n:
            self.ctx.warn(f"made {len(self.made)} of n={self.n} new instructions in {rnd + 1} rounds"
                          + (f" ({STALL_ROUNDS} rounds in a row made none)" if stalled >= STALL_ROUNDS else "")
                          + ": raise max_rounds, or see the reasons in set_aside.jsonl")
        return self.made, self.aside

    def _prompt(self, tasks: list[Task], chat: bool) -> str:
        if self.alpaca:
            return alpaca.encode(tasks, self.requirements)
        text = encode_prompt([t.instruction for t in tasks])
        return self.rt.chat_prompt(self.model, text) if chat else text

    def _draw(self, rnd: int, k: int) -> list[tuple[str, Task]]:
        """A prompt's example tasks: `from_made` made ones (as many as there are), the rest
        from the input rows, in a seeded random order."""
        rng = np.random.default_rng([self.args.get("seed", 0), rnd, k])
        m = min(self.from_made, len(self.made))
        mine = [self.made[i][:2] for i in sorted(rng.choice(len(self.made), m, replace=False))] if m else []
        s = min(self.per - m, len(self.seeds))
        theirs = [self.seeds[i] for i in sorted(rng.choice(len(self.seeds), s, replace=False))]
        tasks = mine + theirs
        return [tasks[i] for i in rng.permutation(len(tasks))]

    def _consider(self, task: Task, parents: list[str]) -> None:
        rid = f"{self.ctx.step.split('/')[0]}+self_instruct{len(self.made) + len(self.aside) + 1}"
        bad = unusable(task.instruction, alpaca.CANNOT if self.alpaca else CANNOT) if task.instruction else \
            ("length", "no instruction")
        if bad is None and self.alpaca and not task.output:
            bad = "no output", "the task has no output"
        if bad is None:
            limit = self.args.get("max_similarity", 0.7)
            hit = self.pool.most_similar(task.instruction, limit)
            if hit:
                bad = "too similar", f"ROUGE-L {hit[1]:.2f} with `{hit[0]}` (max_similarity {limit:g})"
        if bad:
            self.aside.append((rid, f"self_instruct: {bad[1]}: {_short(task.instruction)}"))
            self.why[bad[0]] = self.why.get(bad[0], 0) + 1
            return
        self.made.append((rid, task, parents))
        self.pool.add(rid, task.instruction)


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


OP = SelfInstruct()

"""Stanford Alpaca's one-pass generation (`generate_instruction.py`), for `self_instruct(method=
"alpaca")`: a prompt of requirements and three example tasks, each an instruction, an input
(`<noinput>` when none) and an output, between `###` lines, ending in the next task's
"Instruction:" for the model to continue; the answer is read back task by task as Alpaca read
it (`post_process_gpt3_response`: a task is kept only when it has all three parts).

The requirements here are this project's wording of Alpaca's (its `prompt.txt` is not shipped);
give Alpaca's own file with `prompt_file=` to use it word for word.
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Task(NamedTuple):
    instruction: str
    input: str = ""
    output: str = ""


REQUIREMENTS = """You are asked to come up with a set of 20 diverse tasks for an AI assistant, each with an \
instruction, an input and an output, in the format of the examples below.

Requirements:
1. Vary the verbs and the kinds of task: open-ended writing, classification, editing, rewriting, \
reasoning, coding, questions.
2. Each task must be one that a text-only language model can complete: no images, audio or video, \
and no actions in the world (such as setting a reminder).
3. Write in English. Each instruction is one or two sentences, an imperative or a question.
4. Give an input when the task needs one: a specific, realistic example of at most 100 words. When \
it needs none, write <noinput>.
5. The output is an appropriate answer to the instruction and the input, in at most 100 words.

List of 20 tasks:"""
# Alpaca's keyword filter: Self-Instruct's, and video, audio, music, flowchart, diagram
CANNOT = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
          "plot", "go to", "video", "audio", "music", "flowchart", "diagram")
LIST_END = 20  # the list's length in the prompt: the model stops before task 20


def encode(tasks: list[Task], requirements: str = REQUIREMENTS) -> str:
    out = requirements.rstrip("\n") + "\n"
    for i, t in enumerate(tasks, 1):
        inst = re.sub(r"\s+", " ", t.instruction).strip().rstrip(":")
        out += f"###\n{i}. Instruction: {inst}\n{i}. Input:\n{t.input or '<noinput>'}\n{i}. Output:\n{t.output}\n"
    return out + f"###\n{len(tasks) + 1}. Instruction:"


def stops() -> list[str]:
    return [f"\n{LIST_END}", f"{LIST_END}."]


def parse(text: str, examples: int, cut: bool) -> list[Task]:
    """The tasks of an answer to `encode`'s prompt with `examples` tasks; with `cut` (the answer
    reached max_new_tokens) the last is dropped, as Alpaca dropped it."""
    chunks = re.split("###", f"{examples + 1}. Instruction:" + text)
    out = []
    for k, chunk in enumerate(chunks):
        if cut and k == len(chunks) - 1:
            continue
        idx = examples + 1 + k
        parts = re.split(rf"{idx}\.\s+(Instruction|Input|Output):", chunk)
        if len(parts) != 7:
            continue
        inp = parts[4].strip()
        out.append(Task(parts[2].strip(), "" if inp.lower() == "<noinput>" else inp, parts[6].strip()))
    return out

"""UIT's `unify` scores each candidate definition with examples in its prompt: a task's own
positive examples where its rows carry them (NI and UIT task files), as UIT's
`main_ppl_annotation.py` does, each transfer's own in `candidates_from` mode; else the task's
first instances, which are then not scored too (their outputs would be in the prompt). A tiny
model built in the test; the runtime records the prompts it scores."""
from __future__ import annotations

import json

import pytest

from recipe.api import load
from recipe.runtime import ModelRuntime

from conftest import write_jsonl


class Recording(ModelRuntime):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.scored = []

    def loglik(self, model, prompts, continuations, progress=None):
        self.scored += list(zip(prompts, continuations))
        return super().loglik(model, prompts, continuations, progress)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from test_runtime import _tiny_lm
    root = tmp_path_factory.mktemp("unify")
    _tiny_lm(root / "lm")
    return root / "lm"


def ni_task(path, definition: str, examples: list[tuple[str, str]], instances: list[tuple[str, str]]):
    path.write_text(json.dumps({
        "Definition": [definition], "Categories": ["Question Answering"],
        "Positive Examples": [{"input": a, "output": b, "explanation": "x"} for a, b in examples],
        "Instances": [{"id": f"{path.stem}-{i}", "input": a, "output": [b]} for i, (a, b) in enumerate(instances)]}))
    return path


def unify(lm, tmp_path, source: str, call: str, steps: str = ""):
    f = tmp_path / "u.recipe"
    f.write_text(f'recipe u\nmodel lm = causal_lm("{lm}", dtype="fp32")\nsource raw = read("{source}")\n'
                 f"u = raw{steps}\n  | format_transfer(method=\"unify\", model=lm, {call})\nwrite u to \"u.jsonl\"\n")
    rt = Recording(tmp_path / "models")
    res = load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c", runtime=rt)
    node = next(n for n in res.manifest["nodes"] if n["op"] == "format_transfer")
    return node["stats"]["unify"], rt.scored


INSTANCES = [(f"w{i} w{i + 1}", f"w{i + 2}") for i in range(1, 7)]


def test_a_tasks_positive_examples_are_its_examples_and_every_instance_is_scored(lm, tmp_path):
    ni_task(tmp_path / "task1_add.json", "w1 w2 w3", [("w40 w41", "w42"), ("w43 w44", "w45"), ("w46", "w47")],
            INSTANCES)
    report, scored = unify(lm, tmp_path, tmp_path / "task1_add.json", 'candidates=["w5 w6", "w7 w8"], shots=2')
    task = report["task1_add"]
    assert task["examples"] == "positive_examples" and task["scored"] == 6 and task["instances"] == 6
    assert len(scored) == 2 * 6  # two candidates, each over every instance
    shown = ("Positive Examples 1\nInput: w40 w41\nOutput: w42\n\nPositive Examples 2\nInput: w43 w44\nOutput: w45\n\n"
             "Now complete the following example -\nInput: ")
    assert all(shown in p and "w46" not in p for p, _ in scored)  # the first `shots` of them
    assert sorted({c.strip() for _, c in scored}) == sorted(b for _, b in INSTANCES)


def test_without_positive_examples_the_instances_shown_are_not_scored(lm, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "w9", "input": a, "output": b, "task": "t"}
                                              for a, b in INSTANCES])
    report, scored = unify(lm, tmp_path, data, 'candidates=["w5 w6", "w7 w8"], shots=2')
    assert report["t"]["examples"] == "instances" and report["t"]["scored"] == 4
    assert len(scored) == 2 * 4
    for p, c in scored:
        assert "Positive Examples 1\nInput: w1 w2\nOutput: w3\n\nPositive Examples 2\nInput: w2 w3\nOutput: w4\n\n" in p
        assert c.strip() not in ("w3", "w4")  # the shown instances' outputs are not the ones scored


def test_each_transfer_is_scored_with_its_own_examples(lm, tmp_path):
    """UIT's 32 files of one task: each has its own definition and its own positive examples."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    ni_task(folder / "0of2_add.json", "w11 w12", [("w40", "w41")], INSTANCES)
    ni_task(folder / "1of2_add.json", "w13 w14", [("w50", "w51")], INSTANCES)
    report, scored = unify(lm, tmp_path, folder, "task_column=\"family\", candidates_from=definition, shots=1",
                           '\n  | derive(family = regexp_replace(task, "^[0-9]+of2_", ""))')
    add = report["add"]
    assert [c["definition"] for c in add["candidates"]] == ["w11 w12", "w13 w14"]
    assert add["examples"] == "positive_examples" and add["scored"] == 6
    assert len(scored) == 2 * 6
    for p, _ in scored:
        own = ("Positive Examples 1\nInput: w40\nOutput: w41" if p.startswith("Definition: w11 w12")
               else "Positive Examples 1\nInput: w50\nOutput: w51")
        other = "Input: w50" if own.endswith("w41") else "Input: w40"
        assert own in p and other not in p

"""Golden files: the IR and the plan of every example and library recipe
(tests/golden/<name>/{ir.json, plan.txt}; regenerate with `pytest --update-golden`)."""
from pathlib import Path

import pytest

from recipe.api import load
from recipe.cli import plan_text

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
DATA = GOLDEN / "data.jsonl"
RECIPES = sorted(list((ROOT / "examples").glob("*.recipe")) + list((ROOT / "stdlib_recipes").glob("*.recipe")))


def _check(path: Path, text: str, update: bool):
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: write it with --update-golden and review it"
    assert text == path.read_text(), f"{path} changed; review and rerun with --update-golden"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_golden_ir_and_plan(path, update_golden):
    r = load(str(path))
    case = GOLDEN / f"{path.parent.name}-{path.stem}"
    _check(case / "ir.json", r.recipe.dumps(), update_golden)
    sources = {} if path.parent.name == "examples" else {s.name: str(DATA) for s in r.linked.sources}
    plan = r.plan(sources=sources)
    _check(case / "plan.txt", plan_text(plan, None, fingerprints=False), update_golden)
    # every step has a distinct fingerprint
    fps = [s.fingerprint for s in plan.steps]
    assert len(set(fps)) == len(fps)

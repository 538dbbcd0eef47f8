"""Every diagnostic class: a recipe next to its exact rendered message (tests/errors/).
A first line `# --set name=value` gives the case command-line overrides."""
import os
from pathlib import Path

import pytest

from recipe.api import load
from recipe.diagnostics import RecipeError, render_all

CASES = Path(__file__).parent / "errors"
FILES = sorted(p for p in CASES.iterdir() if p.suffix in (".recipe", ".yaml"))


def diagnose(path: Path) -> str:
    cwd = os.getcwd()
    os.chdir(CASES)  # rendered paths are relative to the case folder
    try:
        first = path.read_text().splitlines()[0]
        overrides = dict(kv.split("=", 1) for kv in first.split("--set", 1)[1].split()) if "--set" in first else {}
        try:
            r = load(path.name)
            diags = r.check(params=overrides).diagnostics
        except RecipeError as e:
            diags = e.diagnostics
        return render_all(diags) + "\n"
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_rendered_diagnostic(path, update_golden):
    got = diagnose(path)
    expected = path.with_suffix(path.suffix + ".expected")
    if update_golden:
        expected.write_text(got)
    assert expected.exists(), f"{expected.name} is missing: write it (pytest --update-golden) and review it"
    assert got == expected.read_text()
    assert "Traceback" not in got
    assert got.startswith(("error[", "warning["))

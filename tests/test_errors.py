"""Every diagnostic class: a recipe next to its exact rendered message (tests/errors/)."""
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
        try:
            r = load(path.name)
            diags = r.check().diagnostics
        except RecipeError as e:
            diags = e.diagnostics
        return render_all(diags) + "\n"
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_rendered_diagnostic(path, update_golden):
    got = diagnose(path)
    expected = path.with_suffix(path.suffix + ".expected")
    if update_golden or not expected.exists():
        expected.write_text(got)
    assert got == expected.read_text()
    assert "Traceback" not in got
    assert got.startswith(("error[", "warning["))

"""Every diagnostic class: a recipe next to its exact rendered message (tests/errors/).
A first line `# --set name=value` gives the case command-line overrides; `# --pad N`
makes the case N bytes longer (a comment line), for limits too large to commit.
Every code declared in recipe/codes.py has a case, and every code the package raises is
declared there."""
import os
import re
from pathlib import Path

import pytest

from recipe.api import load
from recipe.frontend import parse_any
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
            if "--pad" in first:  # the limit is checked while parsing: no run-time state needed
                parse_any(path.read_text() + "# " + "x" * int(first.split("--pad", 1)[1]) + "\n", path.name)
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


def test_every_code_is_declared_and_has_a_case():
    from recipe.codes import CODES
    root = Path(__file__).resolve().parents[1] / "recipe"
    raised = set()
    for f in root.rglob("*.py"):
        raised |= set(re.findall(r"Diagnostic\(\s*\"([EW]\d{4})\"", f.read_text()))
    assert raised, "the scan found no diagnostics: the pattern is out of date"
    assert raised - set(CODES) == set(), "raised but not declared in recipe/codes.py"
    assert set(CODES) - raised == set(), "declared but never raised: remove them from recipe/codes.py"
    covered = set()
    for f in CASES.glob("*.expected"):
        covered |= set(re.findall(r"^(?:error|warning)\[([EW]\d{4})\]", f.read_text(), re.M))
    assert set(CODES) - covered == set(), "codes without a case in tests/errors/"


def test_an_undeclared_code_is_a_bug():
    from recipe.diagnostics import Diagnostic
    with pytest.raises(ValueError, match="not declared"):
        Diagnostic("E9999", "nothing")

"""The built wheel works on its own: it carries the grammar and the standard library, so an
installed `recipe` checks and plans a text recipe and `stdlib:qdit` from another directory,
with no source tree on the path."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", ".recipe", "out", "__pycache__",
                              "bench", "tests", "examples", ".ci")


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=SKIP)  # builds leave build/ behind: not in the checkout
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(src), "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("recipe-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "recipe/grammars/recipe.lark" in names and "recipe/stdlib_recipes/qdit.recipe" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "d.jsonl").write_text('{"instruction": "a question", "output": "an answer"}\n')
    (work / "t.recipe").write_text('recipe t\nsource raw = read("d.jsonl")\n'
                                   'x = raw | dedupe(method="exact")\nwrite x to "x.jsonl"\n')
    # the installed copy comes first on the path; the test environment supplies the dependencies
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*args):
        p = subprocess.run([sys.executable, "-m", "recipe", *args], cwd=work, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout

    where = subprocess.run([sys.executable, "-c", "import recipe; print(recipe.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target)), where
    assert "ok" in run("check", "t.recipe")
    assert "dedupe" in run("plan", "t.recipe")
    assert "ok" in run("check", "stdlib:qdit", "--source", "raw=d.jsonl")
    plan = run("plan", "stdlib:qdit", "--source", "raw=d.jsonl")
    assert "select" in plan and "fingerprint" in plan

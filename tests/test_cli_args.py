"""The command line refuses values a run would misuse, in one line, before anything runs:
found by a probe (`--replicas 0` and `eval --epochs -1` ran; `--address` of a cluster that is
not there waited minutes in Ray's retries, printing its warnings)."""
import subprocess
import sys

import pytest

from recipe.api import load
from recipe.cli import main
from recipe.diagnostics import UserError

from conftest import write_jsonl

RECIPE = 'recipe ok\nsource raw = read("{data}")\nwrite raw to "o.jsonl"\n'


@pytest.mark.parametrize("args, says", [
    (["run", "R", "--replicas", "0"], "--replicas: 0 must be at least 1"),
    (["eval", "R", "--eval", "E", "--epochs", "-1"], "--epochs: -1 must be at least 0.01"),
    (["eval", "R", "--eval", "E", "--lr", "0"], "--lr: 0 must be above 0.0"),
    (["eval", "R", "--eval", "E", "--max-tokens", "x"], "--max-tokens: 'x' is not a whole number"),
    (["eval", "R", "--eval", "E", "--seeds", "-2"], "--seeds: -2 must be at least 0"),
])
def test_numbers_out_of_range_are_refused_by_the_parser(args, says, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_replicas_below_one_are_refused_from_python(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Hi?", "output": "Hi."}])
    with pytest.raises(UserError, match="at least 1"):
        load(RECIPE.format(data=data)).run(out=tmp_path / "o", cache_dir=tmp_path / "c", replicas=0)


@pytest.mark.parametrize("address, says", [
    ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1: Connection refused"),
    ("ray://127.0.0.1:1", "cannot reach the Ray cluster at ray://127.0.0.1:1: Connection refused"),
    ("nocolon", "--address nocolon: write HOST:PORT"),
])
def test_a_ray_address_that_does_not_answer_is_one_line_at_once(address, says, tmp_path):
    pytest.importorskip("ray")
    data = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Hi?", "output": "Hi."}])
    (tmp_path / "r.recipe").write_text(RECIPE.format(data=data))
    # its own process: a Ray instance another test left in this one would be used instead
    got = subprocess.run([sys.executable, "-m", "recipe", "run", str(tmp_path / "r.recipe"), "--engine", "ray",
                          "--address", address, "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "-q"],
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 1 and got.stderr.startswith("error: " if "nocolon" in address else "error: cannot reach")
    assert says in got.stderr and "Traceback" not in got.stderr, got.stderr

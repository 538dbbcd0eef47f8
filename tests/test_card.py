"""`recipe card`: a dataset card for the Hub, written from the run's manifest (and the written
rows' languages from the step cache)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from recipe.api import load
from recipe.card import card, size_category
from recipe.diagnostics import UserError

from conftest import write_jsonl

ROWS = [{"instruction": "What is the capital of France?", "output": "Paris."},
        {"instruction": "Quelle est la capitale de l'Italie ?", "output": "Rome."},
        {"instruction": "Wie heißt die Hauptstadt von Spanien?", "output": "Madrid."},
        {"instruction": "Write to jane@gmail.com about the trip.", "output": "Done."}]


def run(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    f = tmp_path / "c.recipe"
    text = (f'# two languages, no addresses\nrecipe capitals\nmodel lid = language_id("builtin:lid176")\n'
            f'source raw = read("{data}", format="alpaca")\n'
            'kept = raw | language(model=lid, keep=["en", "fr"]) | redact()\n'
            'write kept to "train.jsonl"\nwrite kept to "train.parquet"\n')
    f.write_text(text)
    res = load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    return res, text


def test_the_card_says_what_the_run_did(tmp_path):
    res, text = run(tmp_path)
    body = card(tmp_path / "out", tmp_path / "cache")
    meta = yaml.safe_load(body.split("---\n")[1])
    assert [c["data_files"][0]["path"] for c in meta["configs"]] == ["train.jsonl", "train.parquet"]
    assert [c["config_name"] for c in meta["configs"]] == ["train_jsonl", "train_parquet"]  # names must differ
    assert meta["size_categories"] == ["n<1K"] and meta["language"] == ["en", "fr"]  # de was set aside
    # each file's container as its extension says (the Parquet file was listed as "jsonl")
    assert "| `train.jsonl` | `kept` | 3 | rows, JSON lines |" in body
    assert "| `train.parquet` | `kept` | 3 | rows, Parquet |" in body
    for n in res.manifest["nodes"]:
        assert f"| `{n['name']}` | {n['op']} | {n['rows_in']:,} | {n['rows_created']:,} | {n['rows_out']:,} | " \
               f"{n['rows_set_aside']:,} |" in body
    assert "found: email 1" in body and res.manifest["inputs"]["raw"]["sha256"][:16] in body
    assert body.rstrip().endswith("```") and text.rstrip() in body  # the recipe as written, comments and all


def test_without_the_step_cache_the_card_names_no_language(tmp_path):
    run(tmp_path)
    meta = yaml.safe_load(card(tmp_path / "out", tmp_path / "elsewhere").split("---\n")[1])
    assert "language" not in meta


def test_a_folder_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no finished run"):
        card(tmp_path)


def test_size_categories_are_the_hubs():
    assert [size_category(n) for n in (0, 999, 1000, 54_999, 2_000_000, 10 ** 9)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M", "n>100M"]


def test_run_card_writes_readme(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS[:1])
    f = tmp_path / "c.recipe"
    f.write_text(f'recipe one\nsource raw = read("{data}")\nwrite raw to "x.jsonl"\n')
    p = subprocess.run([sys.executable, "-m", "recipe", "run", str(f), "--out", str(tmp_path / "o"), "--cache-dir",
                        str(tmp_path / "c"), "--card", "-q"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "o" / "README.md").read_text().startswith("---\nconfigs:\n- config_name: \"x\"")

"""A trial run on the first records: `read(..., head=N)` and `recipe run --head N` read only the
first N records of a source (rows and unreadable ones alike, in file order, across a folder's
files), on every reader path and both engines; the rows are those a whole read gives first,
with the same ids; the rest is never read, so nothing about it is set aside."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import recipe.engine.read as read_mod
from conftest import alpaca_rows, read_jsonl, write_jsonl
from recipe.api import load
from recipe.diagnostics import RecipeError


def lines_with_bad(n: int) -> list:
    rows = alpaca_rows(n)
    rows[3] = '{"instruction": "broken'  # record 3 of the file is unreadable
    return rows


def run(tmp_path, path, head, name, **kw):
    opt = f", head={head}" if head else ""
    res = load(f'recipe t\nsource raw = read("{path}"{opt})\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / name, cache_dir=tmp_path / f"c-{name}", **kw)
    return res, read_jsonl(tmp_path / name / "x.jsonl"), read_jsonl(tmp_path / name / "set_aside.jsonl")


def _files(tmp_path):
    rows = alpaca_rows(40)
    write_jsonl(tmp_path / "d.jsonl", lines_with_bad(40))
    (tmp_path / "d.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet", row_group_size=7)
    import csv
    with open(tmp_path / "d.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3):
        write_jsonl(folder / f"part{i}.jsonl", alpaca_rows(6))


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.parquet", "d.csv", "folder"])
@pytest.mark.parametrize("path", ["fast", "record by record"])
def test_the_first_records_of_any_file_are_the_whole_reads_first_rows(tmp_path, monkeypatch, name, path):
    _files(tmp_path)
    if path != "fast":
        for f in ("_fast", "_fast_parquet", "_fast_array", "_fast_csv", "_fast_arrow"):
            monkeypatch.setattr(read_mod, f, lambda *a, **k: None)
    _, whole, whole_aside = run(tmp_path, tmp_path / name, None, "whole")
    res, got, aside = run(tmp_path, tmp_path / name, 9, "head")
    bad = 1 if name == "d.jsonl" else 0  # record 3 of d.jsonl is unreadable: one of the first 9
    assert len(got) == 9 - bad and got == whole[:9 - bad]
    assert [a["_id"] for a in aside] == [a["_id"] for a in whole_aside][:bad]
    (read,) = res.manifest["nodes"]
    assert read["rows_out"] + read["rows_set_aside"] == 9 and read["stats"]["head"].startswith("the first 9 records")
    if name == "folder":  # the first file's 6 rows, then the next file's first 3
        assert [r["_id"] for r in got][5:7] == ["raw:part0.jsonl:5", "raw:part1.jsonl:0"]
        assert read["stats"]["head"] == "the first 9 records, from 2 of the 3 files"


def test_a_head_larger_than_the_source_reads_it_all(tmp_path):
    _files(tmp_path)
    _, whole, _ = run(tmp_path, tmp_path / "d.parquet", None, "whole")
    res, got, _ = run(tmp_path, tmp_path / "d.parquet", 1000, "head")
    assert got == whole and "head" not in res.manifest["nodes"][0].get("stats", {})


def test_the_command_line_head_reaches_every_source_unless_it_has_its_own(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", alpaca_rows(30))
    write_jsonl(tmp_path / "b.jsonl", alpaca_rows(30))
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe t\nsource a = read("{tmp_path / "a.jsonl"}")\nsource b = read("{tmp_path / "b.jsonl"}", head=4)\n'
                 f'all = union(a, b)\nwrite all to "x.jsonl"\n')
    cmd = [sys.executable, "-m", "recipe"]
    got = subprocess.run(cmd + ["run", str(f), "--head", "10", "--out", str(tmp_path / "o"), "--cache-dir",
                                str(tmp_path / "c")], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert {n["name"]: n["rows_out"] for n in man["nodes"]} == {"a": 10, "b": 4, "all": 14}
    plan = subprocess.run(cmd + ["plan", str(f), "--head", "10", "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True).stdout
    assert plan.count("[cached]") == 3  # the same steps as the run: --head is part of the reads' keys
    whole = subprocess.run(cmd + ["plan", str(f), "--cache-dir", str(tmp_path / "c")], capture_output=True, text=True).stdout
    assert "params changed: head" in whole and "estimate ~30 rows" in whole  # a's whole read; b keeps its head=4


def test_head_must_be_a_whole_number_of_records(tmp_path):
    d = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(3))
    for bad in ("0", "2.5", '"ten"'):
        with pytest.raises(RecipeError, match="`head` must be a whole number of records, at least 1"):
            load(f'recipe t\nsource raw = read("{d}", head={bad})\nwrite raw to "x.jsonl"\n').check()
    got = subprocess.run([sys.executable, "-m", "recipe", "run", "x.recipe", "--head", "0"], capture_output=True, text=True)
    assert got.returncode == 2 and "must be at least 1" in got.stderr

"""Compressed files: a text sink named `.gz`, `.bz2`, `.xz` or `.zst` is that sink's bytes
compressed, the same on every run (gzip's header holds no time or name), and reads back as
the rows written; a source named `.zst` reads as the others do; names that cannot be written
are `check` errors."""
from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import alpaca_rows, write_jsonl
from recipe.api import load
from recipe.diagnostics import RecipeError

UNPACK = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress,
          ".zst": lambda b: pa.Codec("zstd").decompress(b, decompressed_size=1 << 24).to_pybytes()}


def zstd_bytes(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as z:
        z.write(data)
    return sink.getvalue().to_pybytes()


def unpack(path: Path) -> bytes:
    if path.suffix == ".zst":
        with pa.input_stream(str(path), compression="zstd") as fh:
            return fh.read()
    return UNPACK[path.suffix](path.read_bytes())


SINKS = [("rows.jsonl", None), ("rows.json", "alpaca"), ("rows.csv", "alpaca"), ("rows.tsv", None)]


def recipe_text(data: Path, packed: str) -> str:
    lines = ["recipe packed", f'source raw = read("{data}")', "kept = raw | filter(length(response) > 10)"]
    for name, fmt in SINKS:
        opt = f' (format="{fmt}")' if fmt else ""
        lines += [f'write kept to "plain/{name}"{opt}', f'write kept to "packed/{name}{packed}"{opt}']
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("packed", [".gz", ".bz2", ".xz", ".zst"])
def test_a_compressed_sink_is_the_plain_sinks_bytes_the_same_on_every_run(packed, tmp_path):
    rows = alpaca_rows(30)
    rows[3]["output"] = "ünïcödé — and a line\nbreak, \"quoted\", with\ttab"
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    r = load(recipe_text(data, packed))
    r.run(out=tmp_path / "a", cache_dir=tmp_path / "ca")
    r.run(out=tmp_path / "b", cache_dir=tmp_path / "cb")
    for name, _ in SINKS:
        plain = (tmp_path / "a" / "plain" / name).read_bytes()
        packed_a = tmp_path / "a" / "packed" / f"{name}{packed}"
        assert packed_a.read_bytes() != plain and unpack(packed_a) == plain, name
        assert packed_a.read_bytes() == (tmp_path / "b" / "packed" / f"{name}{packed}").read_bytes(), name
        if packed == ".gz":  # two runs a second apart, or under other names, write the same bytes too
            head = packed_a.read_bytes()[:10]
            assert head[3] & 0x08 == 0 and head[4:8] == b"\0\0\0\0", head  # no file name, no time
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert len({s["rows"] for s in man["sinks"]}) == 1
    assert not list((tmp_path / "a" / "packed").glob(".*"))  # no temporary file left behind


def test_compressed_sinks_read_back_as_the_rows_written(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(25))
    load(recipe_text(data, ".zst")).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    lines = ["recipe back"]
    for i, (name, _) in enumerate(SINKS):
        for kind, z in (("plain", ""), ("packed", ".zst")):
            lines += [f'source {kind}{i} = read("{tmp_path / "o" / kind / (name + z)}")',
                      f'write {kind}{i} to "{kind}{i}.jsonl"']
    load("\n".join(lines) + "\n").run(out=tmp_path / "back", cache_dir=tmp_path / "cb")

    def rows(f):  # ids name the source they were read from
        return [{k: v for k, v in json.loads(x).items() if k != "_id"} for x in f.read_text().splitlines()]
    for i, (name, _) in enumerate(SINKS):
        plain, packed = rows(tmp_path / "back" / f"plain{i}.jsonl"), rows(tmp_path / "back" / f"packed{i}.jsonl")
        assert plain == packed and len(plain) > 0, name


@pytest.mark.parametrize("name", ["d.jsonl.zst", "d.json.zst", "d.csv.zst"])
def test_a_zstd_source_reads_as_the_plain_file(name, tmp_path, monkeypatch):
    rows = alpaca_rows(40)
    plain = tmp_path / name.removesuffix(".zst")
    if plain.suffix == ".jsonl":
        write_jsonl(plain, rows)
    elif plain.suffix == ".json":
        plain.write_text(json.dumps(rows))
    else:
        import csv
        with open(plain, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    (tmp_path / name).write_bytes(zstd_bytes(plain.read_bytes()))
    outs = []
    for f in (plain, tmp_path / name):
        r = load(f'recipe z\nsource raw = read("{f}")\nwrite raw to "x.jsonl"\n')
        r.check()
        r.run(out=tmp_path / f"o-{f.name}", cache_dir=tmp_path / f"c-{f.name}")
        outs.append((tmp_path / f"o-{f.name}" / "x.jsonl").read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 40


def test_a_file_that_is_not_zstd_is_a_clear_error(tmp_path):
    (tmp_path / "d.jsonl.zst").write_bytes(b'{"instruction": "not compressed"}\n')
    with pytest.raises(RecipeError, match="cannot read it as .zst"):
        load(f'recipe t\nsource raw = read("{tmp_path / "d.jsonl.zst"}")\nwrite raw to "x.jsonl"\n').check()


def test_sink_names_that_cannot_be_written_are_check_errors(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(3))
    text = (f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.parquet.gz"\nwrite raw to "y.txt.zst"\n'
            f'write raw to "t.json.gz" (format="tag_counts")\n')
    with pytest.raises(RecipeError) as e:
        load(text).check()
    msg = str(e.value)
    assert "Parquet compresses inside the file: name it `.parquet`" in msg
    assert "unknown extension `.txt.zst`" in msg
    assert "`tag_counts` writes one JSON document" in msg


def test_explain_finds_a_row_in_a_compressed_sink_without_the_step_cache(tmp_path):
    import subprocess
    import sys
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(5))
    (tmp_path / "r.recipe").write_text(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl.gz"\n'
                                       f'write raw to "y.csv.xz"\n')
    load(str(tmp_path / "r.recipe")).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    got = subprocess.run([sys.executable, "-m", "recipe", "explain", "--out", str(tmp_path / "o"), "--row", "raw:2",
                          "--cache-dir", str(tmp_path / "elsewhere")], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    assert "written to" in got.stdout and "x.jsonl.gz" in got.stdout and "y.csv.xz" in got.stdout


def test_the_plan_says_which_sinks_are_compressed(tmp_path):
    import subprocess
    import sys
    data = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(3))
    (tmp_path / "r.recipe").write_text(recipe_text(data, ".zst"))
    got = subprocess.run([sys.executable, "-m", "recipe", "plan", str(tmp_path / "r.recipe"), "--cache-dir",
                          str(tmp_path / "c")], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    assert "write kept -> packed/rows.json.zst (alpaca records, a JSON array, zstd-compressed)" in got.stdout
    assert "write kept -> plain/rows.json (alpaca records, a JSON array)\n" in got.stdout


def test_csv_sinks_write_booleans_as_duckdb_and_arrow_do(tmp_path):
    import pyarrow.csv as pcsv
    rows = [dict(r, ok=i % 2 == 0) for i, r in enumerate(alpaca_rows(4))]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    load(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.csv"\nwrite raw to "x.tsv.gz"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    import csv
    import io
    with open(tmp_path / "o" / "x.csv", newline="") as fh:
        assert [r["ok"] for r in csv.DictReader(fh)] == ["true", "false", "true", "false"]
    tsv = csv.DictReader(io.StringIO(unpack(tmp_path / "o" / "x.tsv.gz").decode(), newline=""), delimiter="\t")
    assert [r["ok"] for r in tsv] == ["true", "false", "true", "false"]
    assert pcsv.read_csv(tmp_path / "o" / "x.csv").column("ok").to_pylist() == [True, False, True, False]

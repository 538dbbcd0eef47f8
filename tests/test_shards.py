"""Sharded sinks (`shards=N`, `shard_rows=N`): the rows in order across files named as the
Hugging Face Hub names a split's shards, each file what the unsharded sink would hold for its
rows, with the manifest, `explain`, the card and stale-output warnings reading every file."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recipe.api import load
from recipe.diagnostics import RecipeError

from conftest import alpaca_rows, write_jsonl


def run(tmp_path, sinks: str, rows=None, out="o"):
    data = write_jsonl(tmp_path / "d.jsonl", rows if rows is not None else alpaca_rows(23))
    return load(f'recipe s\nsource raw = read("{data}")\n{sinks}').run(out=tmp_path / out, cache_dir=tmp_path / "c")


def lines(paths) -> list[bytes]:
    return [ln for p in paths for ln in (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes())
            .splitlines()]


def test_shards_hold_the_unsharded_rows_in_order(tmp_path):
    res = run(tmp_path, 'kept = raw | filter(not ends_with(_id, "3"))\n'
                        'write kept to "k.jsonl"\nwrite kept to "ks.jsonl" (shards=3)\n'
                        'write raw to "all.jsonl"\nwrite raw to "part.jsonl.gz" (shards=4)\n'
                        'write raw to "all.parquet"\nwrite raw to "data/train.parquet" (shard_rows=10)\n'
                        'write raw to "all.csv"\nwrite raw to "t.csv" (shards=2)\n')
    o = tmp_path / "o"
    # a step that keeps some rows (a view over its input) reads its ranges in its own order
    assert lines([o / f"ks-{i:05d}-of-00003.jsonl" for i in range(3)]) == lines([o / "k.jsonl"])
    assert len(lines([o / "k.jsonl"])) == 21
    parts = [o / f"part-{i:05d}-of-00004.jsonl.gz" for i in range(4)]
    assert lines(parts) == lines([o / "all.jsonl"])
    assert [len(lines([p])) for p in parts] == [5, 6, 6, 6]  # as equal as 23 rows divide
    train = [o / "data" / f"train-{i:05d}-of-00003.parquet" for i in range(3)]
    assert [pq.read_metadata(p).num_rows for p in train] == [10, 10, 3]
    assert pa.concat_tables([pq.read_table(p) for p in train]).equals(pq.read_table(o / "all.parquet"))
    # a CSV's header is each file's own, the rows the whole file's
    csv = [(o / f"t-{i:05d}-of-00002.csv").read_text().splitlines() for i in range(2)]
    whole = (o / "all.csv").read_text().splitlines()
    assert csv[0][0] == csv[1][0] == whole[0] and csv[0][1:] + csv[1][1:] == whole[1:]
    sinks = res.manifest["sinks"][2:]
    assert sinks[1]["rows"] == 23 and [f["rows"] for f in sinks[1]["files"]] == [5, 6, 6, 6]
    assert sinks[1]["file"] == "part.jsonl.gz" and sinks[1]["path"] == str(parts[0]) and "files" not in sinks[0]


def test_rows_a_format_cannot_hold_are_set_aside_from_their_shard(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": f"Answer {i}."}]
             + ([{"from": "human", "value": "And then?"}, {"from": "gpt", "value": "Done."}] if i == 7 else [])}
            for i in range(9)]  # row 7 has two exchanges: a prompt/completion pair holds one
    res = run(tmp_path, 'write raw to "d.jsonl" (format="prompt_completion", shards=3)\n', rows)
    s = res.manifest["sinks"][0]
    assert [f["rows"] for f in s["files"]] == [3, 3, 2] and s["rows"] == 8 and s["rows_not_written"] == 1
    aside = [json.loads(x) for x in (tmp_path / "o" / "set_aside.jsonl").read_text().splitlines()]
    assert [(a["_id"], a["node"]) for a in aside] == [("raw:7", "write d.jsonl")]


def test_fewer_rows_than_shards_and_no_rows(tmp_path):
    res = run(tmp_path, 'write raw to "a.jsonl" (shards=8)\n', alpaca_rows(3))
    assert [f["rows"] for f in res.manifest["sinks"][0]["files"]] == [1, 1, 1]
    assert (tmp_path / "o" / "a-00002-of-00003.jsonl").is_file()
    res = run(tmp_path, 'kept = raw | filter(length(instruction) > 10000)\nwrite kept to "e.parquet" (shards=4)\n',
              alpaca_rows(3), out="e")
    assert [f["rows"] for f in res.manifest["sinks"][0]["files"]] == [0]
    assert pq.read_table(tmp_path / "e" / "e-00000-of-00001.parquet").num_rows == 0


def test_explain_the_card_and_stale_outputs_read_every_shard(tmp_path, capsys):
    from recipe.card import card
    from recipe.cli import main
    run(tmp_path, 'write raw to "data/train.jsonl" (shards=3)\nwrite raw to "sub/all.jsonl"\n')
    o = tmp_path / "o"
    assert main(["explain", "--out", str(o), "--row", "raw:20", "--cache-dir", str(tmp_path / "none")]) == 0
    assert f"kept: written to {o}/data/train-00002-of-00003.jsonl" in capsys.readouterr().out
    assert main(["explain", "--out", str(o), "--row", "raw:20", "--cache-dir", str(tmp_path / "c")]) == 0
    assert f"written to {o}/data/train-*-of-00003.jsonl" in capsys.readouterr().out
    text = card(o)
    assert '- config_name: "train"' in text and 'path: "data/train-*-of-00003.jsonl"' in text
    assert 'path: "sub/all.jsonl"' in text  # a sink in a folder: the card named `all.jsonl` until session 39
    # fewer shards the next time: the earlier run's third file is named, not deleted
    res = run(tmp_path, 'write raw to "data/train.jsonl" (shards=2)\n')
    stale = res.manifest["stale_outputs"]
    assert sorted(stale) == [str(o / "data" / f"train-{i:05d}-of-00003.jsonl") for i in range(3)] + [str(o / "sub" / "all.jsonl")]
    assert all((o / "data" / f"train-{i:05d}-of-00003.jsonl").is_file() for i in range(3))


@pytest.mark.parametrize("opts, message", [
    ("shards=0", "`shards` must be a whole number, at least 1"),
    ("shards=2, shard_rows=5", "`shards` and `shard_rows` both size the files: give one"),
    ('format="tag_counts", shards=2', "`tag_counts` writes one JSON document: it has no shards")])
def test_check_refuses_shard_options_that_cannot_be_met(tmp_path, opts, message):
    path = "t.json" if "tag_counts" in opts else "t.jsonl"
    with pytest.raises(RecipeError) as e:
        load(f'recipe s\nsource raw = read("d.jsonl")\nwrite raw to "{path}" ({opts})\n').check().raise_if_errors()
    assert message in [d.message for d in e.value.diagnostics]

"""`recipe card`: a dataset card for the Hub, written from the run's manifest (and the written
rows' languages from the step cache)."""
from __future__ import annotations

import hashlib
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
    # the Parquet file is no config: the Hub would read it with the JSON files' loader
    assert [c["data_files"][0]["path"] for c in meta["configs"]] == ["train.jsonl"]
    assert [c["config_name"] for c in meta["configs"]] == ["train_jsonl"]  # named apart from train.parquet's
    assert 'load_dataset("USER/NAME")  # train\n```' in body  # one config: the default
    assert "`train.parquet` would not load as a config" in body
    assert meta["size_categories"] == ["n<1K"] and meta["language"] == ["en", "fr"]  # de was set aside
    # each file's container as its extension says (the Parquet file was listed as "jsonl")
    assert "| `train.jsonl` | `kept` | 3 | rows, JSON lines |" in body
    assert "| `train.parquet` | `kept` | 3 | rows, Parquet |" in body
    for n in res.manifest["nodes"]:
        assert f"| `{n['name']}` | {n['op']} | {n['rows_in']:,} | {n['rows_created']:,} | {n['rows_out']:,} | " \
               f"{n['rows_set_aside']:,} |" in body
    # the source's SHA-256 is the file's, as `sha256sum` prints it (until session 41 it was the
    # read's cache key, a hash of the file's hashed segments, under the same name)
    real = hashlib.sha256((tmp_path / "d.jsonl").read_bytes()).hexdigest()
    assert res.manifest["inputs"]["raw"]["sha256"] == real
    assert f"| `raw` | `{tmp_path / 'd.jsonl'}` | {(tmp_path / 'd.jsonl').stat().st_size:,} | `{real}` |" in body
    assert "found: email 1" in body
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


def _load_with_datasets(folder, *config, tmp_path):
    """The folder loaded as the Hub would load the repository: by `datasets`, from its card."""
    import os
    datasets = pytest.importorskip("datasets")
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return datasets.load_dataset(str(folder), *config)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_split_files_are_one_config_and_the_hub_loader_reads_every_column(tmp_path):
    """`data/train.jsonl` (2 shards) and `data/test.jsonl` are the `train` and `test` splits of
    one config; every column's type is declared, so `datasets` does not guess it from the first
    file: a union whose first source lacks `note` leaves it null in the first shard, and the
    loader failed on the second ("Couldn't cast array of type string to null") until session 40."""
    a = write_jsonl(tmp_path / "a.jsonl", [{"instruction": f"Question {i} about apples?", "output": f"A{i}"}
                                           for i in range(12)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"instruction": f"Question {i} about pears?", "output": f"P{i}",
                                            "note": f"n{i}", "score": i / 2} for i in range(12)])
    f = tmp_path / "s.recipe"
    f.write_text(f'recipe split\nsource a = read("{a}", format="alpaca")\nsource b = read("{b}", format="alpaca")\n'
                 'pool = union(a, b)\n'
                 'train = pool | filter(bucket(instruction, 4) > 0)\nheldout = pool | filter(bucket(instruction, 4) == 0)\n'
                 'write train to "data/train.jsonl" (shards=2)\nwrite heldout to "data/test.jsonl"\n'
                 'write pool to "alpaca.json" (format="alpaca", columns=["note"])\n')
    res = load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    rows = {s["file"]: s["rows"] for s in res.manifest["sinks"]}
    body = card(tmp_path / "out")
    (tmp_path / "out" / "README.md").write_text(body)
    meta = yaml.safe_load(body.split("---\n")[1])
    by_name = {c["config_name"]: c for c in meta["configs"]}
    assert by_name["data"]["data_files"] == [{"split": "train", "path": "data/train-*-of-00002.jsonl"},
                                             {"split": "test", "path": "data/test.jsonl"}]
    assert by_name["data"]["default"] is True and by_name["alpaca"]["data_files"][0]["split"] == "train"
    types = {c["config_name"]: {f["name"]: f.get("dtype", f.get("list")) for f in c["features"]}
             for c in meta["dataset_info"]}
    assert types["data"]["note"] == "string" and types["data"]["score"] == "float64"
    assert types["data"]["messages"] == [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]
    assert types["alpaca"] == {"instruction": "string", "input": "string", "output": "string", "note": "string"}
    assert "| `data/test.jsonl` | `heldout` |" in body and "`data` / `test` |" in body
    assert 'load_dataset("USER/NAME")  # train, test\nload_dataset("USER/NAME", "alpaca")  # train' in body

    got = _load_with_datasets(tmp_path / "out", tmp_path=tmp_path)  # the default config: the splits
    assert {k: v.num_rows for k, v in got.items()} == {"train": rows["data/train.jsonl"], "test": rows["data/test.jsonl"]}
    assert sum(got["train"]["note"][i] is not None for i in range(got["train"].num_rows)) + \
        sum(v is not None for v in got["test"]["note"]) == 12
    assert _load_with_datasets(tmp_path / "out", "alpaca", tmp_path=tmp_path)["train"].num_rows == 24


def test_features_say_what_datasets_would_make_of_the_arrow_types():
    """Each type as `datasets` writes it in a card, and none where a column's values have no
    one type (DuckDB's JSON)."""
    import pyarrow as pa
    datasets = pytest.importorskip("datasets")
    from recipe.io.features import hub_features, merged
    schema = pa.schema([("t", pa.string()), ("n", pa.int64()), ("x", pa.float32()), ("ok", pa.bool_()),
                        ("tags", pa.list_(pa.string())), ("emb", pa.list_(pa.float32(), 4)), ("nil", pa.null()),
                        ("turns", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
                        ("meta", pa.struct([("a", pa.int32()), ("b", pa.list_(pa.list_(pa.float64())))]))])
    ours = hub_features(schema)
    assert datasets.Features._from_yaml_list(ours) == datasets.Features.from_arrow_schema(schema.remove(5)
                                                                                          .insert(5, pa.field("emb", pa.list_(pa.float32()))))
    assert hub_features(pa.schema([("j", pa.json_())])) is None and hub_features(None) is None
    assert merged([{"name": "a", "dtype": "null"}], [{"name": "a", "dtype": "string"}]) == [{"name": "a", "dtype": "string"}]
    assert merged([{"name": "a", "dtype": "int64"}], [{"name": "a", "dtype": "string"}]) is None


def test_split_words_are_found_as_the_hub_finds_them():
    """A split's word between separators names the split; files differing only in it, of one
    format and columns, are one config named by the rest of the name; a file beside them with
    that name gets its whole name; other files stay configs of their own."""
    from recipe.card import hub_configs, split_of
    assert split_of("vicuna_train.json") == ("train", "vicuna_{}.json") and split_of("x-dev-1.parquet")[0] == "validation"
    assert split_of("pretrained.jsonl") is None and split_of("devices.jsonl") is None
    f = [{"name": "t", "dtype": "string"}]
    data = [(p, {"file": p, "format": fmt, "features": feats}) for p, fmt, feats in (
        ("vicuna.jsonl", "jsonl", f), ("vicuna_train.json", "sharegpt", f), ("vicuna_test.json", "sharegpt", f),
        ("eval.jsonl", "jsonl", f), ("other_test.json", "sharegpt", [{"name": "u", "dtype": "string"}]))]
    got = [(c["name"], [(sp, n) for sp, n, _ in c["files"]], c.get("default", False)) for c in hub_configs(data)]
    assert got == [("vicuna", [("train", "vicuna_train.json"), ("test", "vicuna_test.json")], True),  # the default first
                   ("vicuna_jsonl", [("train", "vicuna.jsonl")], False),
                   ("eval", [("test", "eval.jsonl")], False),
                   ("other_test", [("test", "other_test.json")], False)]


def test_configs_the_hub_would_read_with_another_loader_are_not_listed(tmp_path):
    """The Hub loads every config with the loader of the first one's files: a Parquet file
    beside JSON-lines splits failed to load as its config (`datasets` read it as JSON); it is
    left out of the configs and the card says why, and the listed configs load."""
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    f = tmp_path / "p.recipe"
    f.write_text(f'recipe mixed\nsource raw = read("{data}", format="alpaca")\n'
                 'train = raw | filter(bucket(instruction, 2) == 0)\ntest = raw | filter(bucket(instruction, 2) == 1)\n'
                 'write raw to "all.parquet"\nwrite train to "train.jsonl"\nwrite test to "test.jsonl"\n')
    res = load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    body = card(tmp_path / "out")
    (tmp_path / "out" / "README.md").write_text(body)
    meta = yaml.safe_load(body.split("---\n")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["default"]
    assert "`all.parquet` would not load as a config" in body and "| `all.parquet` | `raw` | 4 |" in body
    rows = {s["file"]: s["rows"] for s in res.manifest["sinks"]}
    got = _load_with_datasets(tmp_path / "out", tmp_path=tmp_path)
    assert {k: v.num_rows for k, v in got.items()} == {"train": rows["train.jsonl"], "test": rows["test.jsonl"]}


def test_nested_input_values_are_typed_by_their_values(tmp_path):
    """Nested input values (kept as JSON, written as the values they are) get the type of
    their values in the card, so a list of objects loads as one (the card declared no
    features for such a sink at first)."""
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"Q{i}?", "output": "A.", "shots": [{"q": f"s{i}", "a": "t"}]}
                                              for i in range(3)])
    f = tmp_path / "n.recipe"
    f.write_text(f'recipe nested\nsource raw = read("{data}", format="alpaca")\nwrite raw to "train.jsonl"\n')
    load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    body = card(tmp_path / "out")
    (tmp_path / "out" / "README.md").write_text(body)
    feats = {x["name"]: x for x in yaml.safe_load(body.split("---\n")[1])["dataset_info"][0]["features"]}
    assert feats["shots"] == {"name": "shots", "list": [{"name": "q", "dtype": "string"}, {"name": "a", "dtype": "string"}]}
    got = _load_with_datasets(tmp_path / "out", tmp_path=tmp_path)["train"]
    assert got[2]["shots"] == [{"a": "t", "q": "s2"}]


def test_a_folder_source_lists_each_file_with_its_sha256(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(12):
        write_jsonl(folder / f"p{i:02d}.jsonl", [{"instruction": f"q{i}", "output": "a"}])
    f = tmp_path / "c.recipe"
    f.write_text(f'recipe parts\nsource raw = read("{folder}")\nwrite raw to "all.jsonl"\n')
    res = load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    entry = res.manifest["inputs"]["raw"]
    assert "sha256" not in entry  # several files: no one SHA-256 for them
    files = sorted(folder.iterdir())
    assert entry["files"] == [{"file": str(p), "bytes": p.stat().st_size,
                               "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in files]
    body = card(tmp_path / "out", tmp_path / "cache")
    assert f"| `raw` | `{files[9]}` |" in body and f"`{files[10]}`" not in body
    assert "| `raw` | and 2 more files (12 in all; each with its SHA-256 in `manifest.json`) |" in body

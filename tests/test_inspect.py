"""`recipe inspect PATH`: the facts of a data file, read as a source reads it: rows and what
was set aside (grouped by reason, with the first place), columns, empty texts, lengths,
turns, the rows exact dedupe would set aside (checked against the op itself), first words."""
from __future__ import annotations

import json

import numpy as np

import forked
from conftest import write_jsonl
from recipe.api import load
from recipe.inspect import inspect, render

ROWS = [
    {"instruction": "Write a poem.", "output": "Roses are red.", "cat": "art"},
    {"instruction": "write   a POEM.", "output": "Violets are blue."},
    {"instruction": "Explain gravity to me", "output": " "},
    '{"instruction": "broken',
    {"instruction": "Explain tides", "output": "Roses are red."},
    {"instruction": "Name three colours", "input": "in French", "output": "rouge, bleu, vert", "cat": "lang"},
    {"output": "no instruction"},
    '{"instruction": "also broken',
]


def data(tmp_path):
    return write_jsonl(tmp_path / "d.jsonl", ROWS)


def test_the_facts_of_a_small_file(tmp_path):
    f = inspect(str(data(tmp_path)))
    assert f["rows"] == 5 and f["format"] == "alpaca (detected)" and f["files"] == 1 and f["warnings"] == []
    assert [(g["rows"], g["first"]) for g in f["set_aside"]] == [(2, "d.jsonl:4"), (1, "d.jsonl:7")]
    assert f["set_aside"][0]["reason"].startswith("malformed JSON")
    cols = {c["name"]: (c["type"], c["non_null"]) for c in f["columns"]}
    assert cols["messages"] == ("conversation", 5) and cols["cat"] == ("text", 2) and cols["instruction"] == ("text", 5)
    ins, res = f["texts"]["instruction"], f["texts"]["response"]
    assert (ins["empty"], res["empty"]) == (0, 1)
    assert (ins["exact_duplicates"], res["exact_duplicates"], f["exact_duplicates_of_both"]) == (1, 1, 0)
    # the lengths of the texts as read (Alpaca's input joins the instruction)
    got = load(f'recipe t\nsource raw = read("{tmp_path / "d.jsonl"}")\nwrite raw to "x.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c").table("raw")
    lens = np.array([len(t) for t in got.column("instruction").to_pylist()])
    assert ins["chars"] == {"p5": int(np.percentile(lens, 5, method="lower")), "p50": int(np.percentile(lens, 50, method="lower")),
                            "p95": int(np.percentile(lens, 95, method="lower")), "max": int(lens.max())}
    assert f["first_words"] == [["write", 2], ["explain", 2], ["name", 1]]
    text = render(f)
    assert "5 rows (format alpaca (detected)), 3 set aside:" in text and "(first: d.jsonl:4)" in text
    assert "instructions start with: write 2 (40.0%), explain 2 (40.0%), name 1 (20.0%)" in text


def test_exact_duplicates_are_what_exact_dedupe_sets_aside(tmp_path):
    rows = [{"instruction": f"Task {i % 7}:  DO it", "output": f"answer {i % 5}"} for i in range(60)]
    d = write_jsonl(tmp_path / "d.jsonl", rows)
    f = inspect(str(d))
    res = load(f'recipe t\nsource raw = read("{d}")\na = raw | dedupe(method="exact", on=instruction)\n'
               f'b = raw | dedupe(method="exact", on=response)\nwrite a to "a.jsonl"\nwrite b to "b.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    aside = {n["name"]: n["rows_set_aside"] for n in res.manifest["nodes"]}
    assert f["texts"]["instruction"]["exact_duplicates"] == aside["a"] == 53
    assert f["texts"]["response"]["exact_duplicates"] == aside["b"] == 55
    assert f["exact_duplicates_of_both"] == 60 - 35  # (i % 7, i % 5) repeats every 35 rows


def test_the_command_prints_text_or_json_and_keeps_a_cache_when_asked(tmp_path):
    d = data(tmp_path)
    cmd = ["inspect", str(d), "--cache-dir", str(tmp_path / "c")]
    a = forked.run(cmd + ["--format", "json"])
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout)["rows"] == 5 and (tmp_path / "c" / "cache.duckdb").exists()
    b = forked.run(cmd)  # the second reads from the cache
    assert b.returncode == 0 and "5 rows" in b.stdout and "exact duplicates" in b.stdout
    first = forked.run(cmd[:2] + ["--head", "3", "--format", "json"])
    assert first.returncode == 0 and json.loads(first.stdout)["rows"] == 3  # the first 3 records are rows
    forced = forked.run(["inspect", str(d), "--data-format", "sharegpt"])
    assert forced.returncode == 0 and "0 rows (format sharegpt), 8 set aside" in forced.stdout
    assert "warning: every row" in forced.stdout  # the read's own warning


def test_what_check_warns_of_in_the_file_is_said(tmp_path):
    """A Hub dataset folder of two splits: read whole, its test split would be training data."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    d = tmp_path / "hub" / "data"
    d.mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(pa.Table.from_pylist([{"instruction": f"{split} q", "output": "a"}]), d / f"{split}-00000-of-00001.parquet")
    f = inspect(str(tmp_path / "hub"))
    assert f["rows"] == 2 and len(f["warnings"]) == 1 and "several dataset splits (test, train)" in f["warnings"][0]
    assert "warning: the files of this source belong to several dataset splits" in render(f)


def test_a_bad_path_or_an_unknown_format_is_one_clear_error(tmp_path):
    miss = forked.run(["inspect", str(tmp_path / "nope.jsonl")])
    assert miss.returncode == 1 and "input not found" in miss.stderr and "<string>" not in miss.stderr
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"a": 1, "b": 2}])
    got = forked.run(["inspect", str(odd)])
    assert got.returncode == 1 and "cannot tell the format" in got.stderr and "--data-format" in got.stderr
    assert "Traceback" not in got.stderr and "writes nothing" not in got.stderr


def test_a_headerless_tsv_takes_its_fields_names_and_an_empty_text_has_no_words(tmp_path):
    (tmp_path / "d.tsv").write_text("What is 2+2?\t4\tcount\nName a colour\tred\tpick\n")
    got = forked.run(["inspect", str(tmp_path / "d.tsv"), "--columns", "q, a, why", "--data-format", "raw",
                      "--format", "json"])
    assert got.returncode == 0, got.stderr
    f = json.loads(got.stdout)
    assert [c["name"] for c in f["columns"]][-3:] == ["q", "a", "why"] and f["rows"] == 2
    # raw rows have no conversation yet: their own text columns are described, not the empty turns
    assert list(f["texts"]) == ["q", "a", "why"] and f["texts"]["q"]["words_median"] == 3
    assert "exact_duplicates_of_both" not in f
    shown = forked.run(["inspect", str(tmp_path / "d.tsv"), "--columns", "q, a, why", "--data-format", "raw"])
    assert "`derive(instruction = q, response = a)` makes one" in shown.stdout
    t = inspect(str(tmp_path / "d.tsv"), "alpaca", columns=["instruction", "output", "why"])
    assert t["texts"]["instruction"]["words_median"] == 3 and t["texts"]["response"]["chars"]["max"] == 3


def test_near_duplicates_are_what_minhash_dedupe_sets_aside(tmp_path):
    base = "Write a short poem about the sea and the wind at night, with rhymes"
    # the odd rows answer otherwise than row 0, which they resemble
    rows = [{"instruction": base + "!" * (i % 3) + (" please" if i % 4 == 0 else ""), "output": f"p{i % 2 * i}"}
            for i in range(12)]
    rows += [{"instruction": f"Unrelated task number {i} about {'xyz' * i}", "output": "o"} for i in range(1, 6)]
    d = write_jsonl(tmp_path / "d.jsonl", rows)
    f = inspect(str(d), near=0.8)
    res = load(f'recipe t\nsource raw = read("{d}")\na = raw | dedupe(method="minhash", on=instruction, threshold=0.8)\n'
               f'write a to "a.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    aside = res.manifest["nodes"][1]["rows_set_aside"]
    assert f["near_duplicates"] == {"threshold": 0.8, "instruction": aside, "answered_otherwise": 6} and aside >= 10
    assert "near-duplicate instructions: " in render(f) and "; 6 of them not exact copies and answered" in render(f)
    bad = forked.run(["inspect", str(d), "--near", "1.5"])
    assert bad.returncode == 1 and "at most 1" in bad.stderr


def test_languages_personal_data_and_repairs_are_what_the_operators_find(tmp_path):
    rows = [{"instruction": "What is the capital of France?", "output": "Paris, jane@gmail.com says."},
            {"instruction": "Quelle est la capitale de l'Allemagne ?", "output": "Berlin. Appelez +33 1 23 45 67 89."},
            {"instruction": "Area = 64\u00e2\u02c6\u01613 cm2?", "output": "Yes  "},
            {"instruction": "Server 8.8.8.8 is down", "output": "Restart it."}]
    d = write_jsonl(tmp_path / "d.jsonl", rows)
    f = inspect(str(d), languages=True, pii=True, repairs=True)
    res = load(f'recipe t\nmodel lid = language_id("builtin:lid176")\nsource raw = read("{d}")\n'
               'a = raw | language(model=lid)\nb = raw | redact(kinds=["email", "ip", "key", "phone", "credit_card"])\n'
               'c = raw | normalize()\nwrite a to "a.jsonl"\nwrite b to "b.jsonl"\nwrite c to "c.jsonl"\n'
               ).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    stats = {n["name"]: n.get("stats") or {} for n in res.manifest["nodes"]}
    assert f["languages"]["counts"] == stats["a"]["languages"] and f["languages"]["counts"]["fr"] == 1
    assert f["personal_data"]["found"] == stats["b"]["found"] == {"email": 1, "ip": 1, "phone": 1}
    assert f["personal_data"]["rows"] == stats["b"]["rows changed"] == 3
    assert f["repairs"] == stats["c"]["rows changed"] == {"unicode": 1, "whitespace": 1}
    text = render(f)
    assert "languages (builtin:lid176" in text and "email 1, ip 1, phone 1, in 3 rows" in text
    assert "unicode in 1 row," in text


def test_a_column_of_mixed_values_is_named_so(tmp_path):
    # a field that is an object in one row and text in another widens to JSON text (pyarrow's
    # `arrow.json` type, which is not a subclass of pa.ExtensionType: inspect printed its repr)
    d = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": "b", "extra": {"k": 1}},
                                           {"instruction": "c", "output": "d", "extra": "text"}])
    cols = {c["name"]: c["type"] for c in inspect(str(d))["columns"]}
    assert cols["extra"] == "mixed (JSON)"


def test_a_json_column_whose_values_share_a_shape_is_named_by_it(tmp_path):
    # nested input values are stored as JSON text; when every row's value has one shape (NI's
    # positive examples: a list of objects), inspect says which, as a reader would type it
    # (until session 41 it said "mixed (JSON)" for any such column); nulls take no part
    rows = [{"instruction": f"q{i}", "output": "a",
             "shots": None if i < 3 else [{"input": "x", "output": "y"}, {"input": "z", "output": None}]}
            for i in range(6)]
    rows += [{"instruction": "q", "output": "a", "meta": {"k": 1}}]
    d = write_jsonl(tmp_path / "d.jsonl", rows)
    cols = {c["name"]: c for c in inspect(str(d))["columns"]}
    assert cols["shots"]["type"] == "list of object (input, output)" and cols["shots"]["non_null"] == 3
    assert cols["meta"]["type"] == "object (k)"


def test_set_aside_reasons_group_apart_from_their_particulars(tmp_path):
    # an OASST message file's replies each name their conversation's root, and a malformed
    # line's reason names its column: such reasons are one group (until session 41 a reply was
    # a group of its own, and a JSON array's places, `file.json[3]`, stayed in the reason)
    flat = []
    for root in ("alpha", "beta", "gamma"):
        flat += [{"message_id": root, "parent_id": None, "role": "prompter", "text": f"Q {root}?"},
                 {"message_id": root + "x", "parent_id": root, "role": "assistant", "text": "A.", "rank": 0},
                 {"message_id": root + "y", "parent_id": root + "x", "role": "prompter", "text": "More?"}]
    d = tmp_path / "m.json"
    d.write_text(json.dumps(flat))
    f = inspect(str(d))
    assert f["rows"] == 3 and f["set_aside"] == [
        {"reason": "an OASST reply, part of the conversation that starts at message …", "rows": 6, "first": "m.json[1]"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a" "output": "b"}\n'
                   '{"instruction": "abcdef" "output": "b"}\n')
    assert [(g["rows"], g["first"]) for g in inspect(str(bad))["set_aside"]] == [(2, "bad.jsonl:2")]

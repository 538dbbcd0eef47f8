"""`expect NODE: CONDITION`: what a node's rows must be once the run is done, over aggregates
of its rows; checked before the run, evaluated as soon as the node is finished on either
engine, kept in the manifest, and a run whose expectation is not met exits with code 3 (its
outputs written; with --fail-fast it stops there)."""
from __future__ import annotations

import json

import pytest

from recipe.api import load
from recipe.cli import main
from recipe.diagnostics import RecipeError
from recipe.frontend import parse_any
from recipe.frontend.printer import to_text, to_yaml

from conftest import write_jsonl

ROWS = [{"instruction": f"Question {i}?", "output": "yes" if i % 4 else "", "score": i} for i in range(8)]

RECIPE = '''recipe expects

param least: int = 5

source raw = read("{data}")

kept = raw | filter(length(response) > 0)

other = raw | filter(score > 5)

write kept to "kept.jsonl"

# enough rows, and answers that say something
expect kept: rows() >= least and share(length(response) > 0) == 1
expect kept: mean(score) > 3.5 and min(score) >= 1 and max(score) == 7 and sum(score) == 24
expect raw: count(length(response) == 0) == 2 and share(contains(conversation, "Question 1?")) == 0.125 and set_aside() == 0
expect other: rows() == 2  # read only by its expectation: it runs
'''


def recipe(tmp_path, text=RECIPE, rows=ROWS):
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "e.recipe"
    f.write_text(text.format(data=data))
    return f


def test_the_text_and_yaml_forms_say_the_same_and_format_canonically(tmp_path):
    f = recipe(tmp_path)
    r = parse_any(f.read_text(), str(f))
    assert len(r.expects) == 4 and r.expects[1].node.name == "kept"
    assert to_text(r) == f.read_text()  # canonical already, comments kept
    y = tmp_path / "e.yaml"
    y.write_text(to_yaml(r))
    ry = parse_any(y.read_text(), str(y))
    assert ry.to_json() == r.to_json() and to_text(ry) == f.read_text()
    assert "  - {node: other, that: \"rows() == 2\"}  # read only by its expectation: it runs" in y.read_text()


def test_expectations_are_evaluated_after_the_run_and_kept_in_the_manifest(tmp_path):
    res = load(str(recipe(tmp_path))).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    got = res.manifest["expectations"]
    assert [(e["node"], e["ok"], e["line"]) for e in got] == [("kept", True, 14), ("kept", True, 15),
                                                              ("raw", True, 16), ("other", True, 17)]
    assert got[0]["values"] == {"rows()": 6, "share(length(response) > 0)": 1.0}
    assert got[1]["values"] == {"mean(score)": 4.0, "min(score)": 1.0, "max(score)": 7.0, "sum(score)": 24.0}
    assert got[2]["values"]['share(contains(conversation, "Question 1?"))'] == 0.125
    assert "other" in [n["name"] for n in res.manifest["nodes"]]  # no sink, but an expectation reads it
    assert res.unmet == []


def test_a_failed_expectation_names_its_place_and_exits_3_with_the_outputs_written(tmp_path, capsys):
    text = RECIPE.replace("rows() >= least", "rows() >= least * 2").replace("== 0.125", "== 0.5")
    f = recipe(tmp_path, text)
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "-q"]) == 3
    err = capsys.readouterr().err
    assert f"{f}:14: expectation not met: expect kept: rows() >= least * 2 and " in err
    assert f"{f}:16: expectation not met" in err and "2 of 4 expectation(s) not met" in err
    assert len((tmp_path / "o" / "kept.jsonl").read_text().splitlines()) == 6
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [e["ok"] for e in man["expectations"]] == [False, True, False, True]
    # a --head trial reads part of each source: said, not enforced
    assert main(["run", str(f), "--out", str(tmp_path / "t"), "--cache-dir", str(tmp_path / "c"), "-q",
                 "--head", "3"]) == 0
    assert "expectation(s) not met on this --head trial (not enforced" in capsys.readouterr().err
    # met again, from the cache: exit 0
    assert main(["run", str(recipe(tmp_path)), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"),
                 "-q"]) == 0


FAST = ('recipe ff\nsource raw = read("{data}")\nkept = raw | filter(length(response) > 0)\n'
        'later = kept | derive(n=length(response))\nwrite later to "later.jsonl"\n'
        'expect kept: rows() == 99\nexpect later: rows() == 6\n')


def test_an_expectation_is_evaluated_once_its_node_is_finished_and_fail_fast_stops_there(tmp_path, capsys):
    from recipe.engine.expect import UnmetExpectations
    f = recipe(tmp_path, FAST)
    # said as soon as `kept` is finished, before the next step runs; the run goes on and exits 3
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]) == 3
    err = capsys.readouterr().err
    assert err.index("expect kept: rows() == 99: NOT MET (rows() = 6)") < err.index("later: running derive")
    assert (tmp_path / "o" / "later.jsonl").exists()
    # --fail-fast: the run stops there: no later step, no output, no manifest
    o2, c2 = tmp_path / "o2", tmp_path / "c2"
    assert main(["run", str(f), "--out", str(o2), "--cache-dir", str(c2), "-q", "--fail-fast"]) == 3
    err = capsys.readouterr().err
    assert "error: 1 expectation(s) not met; --fail-fast stopped the run there" in err
    assert f"  {f}:6: expect kept: rows() == 99 (rows() = 6)" in err
    assert not (o2 / "later.jsonl").exists() and not (o2 / "manifest.json").exists()
    with pytest.raises(UnmetExpectations) as got:
        load(str(f)).run(out=o2, cache_dir=c2, fail_fast=True)
    assert [(e["node"], e["line"]) for e in got.value.failed] == [("kept", 6)]
    # the finished steps were cached: a run without it resumes from them
    res = load(str(f)).run(out=o2, cache_dir=c2)
    assert [(n["name"], n["cached"]) for n in res.manifest["nodes"]] == [("raw", True), ("kept", True), ("later", False)]
    assert [e["ok"] for e in res.manifest["expectations"]] == [False, True]
    # a --head trial says them and does not stop
    assert main(["run", str(f), "--out", str(tmp_path / "t"), "--cache-dir", str(c2), "-q", "--head", "3",
                 "--fail-fast"]) == 0
    assert (tmp_path / "t" / "later.jsonl").exists()


def test_nulls_do_not_meet_an_expectation(tmp_path):
    # no rows: a share or a mean of nothing is null, and so is the condition; a count is 0
    text = ('recipe n\nsource raw = read("{data}")\nnone = raw | filter(score > 100)\nwrite none to "n.jsonl"\n'
            'expect none: share(score > 0) > 0.5\nexpect none: not (mean(score) > 1)\nexpect none: count(score > 0) == 0\n'
            'expect none: mean(score) > 1 or rows() == 0\n')
    res = load(str(recipe(tmp_path, text))).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [e["expect"] for e in res.unmet] == ["share(score > 0) > 0.5", "not mean(score) > 1"]
    assert [(e["ok"], list(e["values"].values())) for e in res.manifest["expectations"]] == [
        (False, [None]), (False, [None]), (True, [0]), (True, [None, 0])]


@pytest.mark.parametrize("line, message", [
    ("expect kept: rows()", "E0416"),
    ("expect kept: length(response) > 1", "E0415"),
    ("expect kept: share(length(respons) > 1) > 0.5", "E0401"),
    ("expect kept: mean(response) > 1", "E0405"),
    ("expect kept: share(score) > 1", "E0405"),
    ("expect kep: rows() > 1", "E0301"),
    ("expect kept: count() > 1", "E0403"),
    ("expect kept: max(min(score)) > 1", "E0415"),
    ("expect kept: rows() > \"many\"", "E0405"),
    ("expect kept by parity: set_aside() == 0", "E0415"),  # the whole node's count is no group's
    ("expect kept by parit: rows() > 1", "E0401"),
])
def test_a_wrong_expectation_is_a_check_error(tmp_path, line, message):
    f = recipe(tmp_path, 'recipe t\nsource raw = read("{data}")\nkept = raw | filter(score > 1) | derive(parity = score % 2)\n'
                         f'write kept to "k.jsonl"\n{line}\n')
    with pytest.raises(RecipeError) as e:
        load(str(f)).check()
    assert [d.code for d in e.value.diagnostics if d.is_error] == [message]


def test_the_same_results_on_ray(tmp_path):
    f = recipe(tmp_path)
    duck = load(str(f)).run(out=tmp_path / "o-duckdb", cache_dir=tmp_path / "c-duckdb")
    ray = load(str(f)).run(out=tmp_path / "o-ray", cache_dir=tmp_path / "c-ray", engine="ray")
    assert ray.manifest["expectations"] == duck.manifest["expectations"]


def test_plan_review_diff_card_and_report_show_them(tmp_path, capsys):
    from recipe.card import card
    from recipe.diff import diff
    from recipe.report import write_report
    f = recipe(tmp_path)
    assert main(["plan", str(f), "--cache-dir", str(tmp_path / "c")]) == 0
    assert "expect other: rows() == 2 (checked on other's rows as soon as that step is finished)" in capsys.readouterr().out
    loose = tmp_path / "loose.recipe"
    loose.write_text(f.read_text().replace("rows() == 2", "rows() >= 1"))
    assert main(["plan", str(loose), "--against", str(f), "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "- expect other: rows() == 2" in out and "+ expect other: rows() >= 1" in out
    assert diff(parse_any(f.read_text(), str(f)), parse_any(loose.read_text(), str(loose))) == [
        "- expect other: rows() == 2", "+ expect other: rows() >= 1"]
    text = f.read_text().replace("rows() == 2", "rows() == 3")
    f.write_text(text)
    load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    body = card(tmp_path / "o", tmp_path / "c")
    assert "| `other` | `rows() == 3` | rows() = 2 | **no** |" in body
    assert "| `kept` | `rows() >= least and share(length(response) > 0) == 1` | rows() = 6, " in body
    # the Mermaid graph for a pull request draws them beside their node (Mermaid's entities for
    # quotes and angle brackets)
    assert main(["graph", str(f)]) == 0
    graph = capsys.readouterr().out
    assert 'expect3{{"expect: rows() == 3"}}\n  n_other -.- expect3' in graph
    assert 'expect2{{"expect: count(length(response) == 0) == 2 and share(contains(conversation, #quot;Question 1?' in graph
    assert 'expect0{{"expect: rows() #gt;= least and ' in graph
    html = write_report(tmp_path / "o", tmp_path / "c").read_text()
    assert "<b>NOT MET</b></td><td>other</td><td><code>rows() == 3</code>" in html


def test_rows_of_another_node_guards_a_step_that_removes_too_much(tmp_path, capsys):
    # a recipe of expectations alone is a test of the data: no warning that it writes nothing
    text = ('recipe guard\nsource raw = read("{data}")\nkept = raw | filter(length(response) > 0 and score != 7)\n'
            'expect kept: rows() >= 0.75 * rows(raw)\nexpect kept: rows(raw) - rows() == 3\n')
    f = recipe(tmp_path, text)
    assert not [d for d in load(str(f)).diagnose().diagnostics if d.code == "W0602"]
    res = load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [(e["ok"], e["values"]) for e in res.manifest["expectations"]] == [
        (False, {"rows()": 5, "rows(raw)": 8}), (True, {"rows(raw)": 8, "rows()": 5})]
    # the rows a node's own steps set aside: 3 by `kept`'s filter
    res = load(str(recipe(tmp_path, text.replace("rows(raw) - rows() == 3", "set_aside() == 3 and set_aside() < 0.5 * rows(raw)")))
               ).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["expectations"][1]["values"] == {"set_aside()": 3, "rows(raw)": 8}
    assert res.manifest["expectations"][1]["ok"]
    bad = recipe(tmp_path, text.replace("rows(raw) - rows()", "rows(rw) - rows()"))
    with pytest.raises(RecipeError, match=r"`rows\(rw\)`: no node or source is named so"):
        load(str(bad)).check()


def test_a_used_recipes_expectations_are_checked_on_its_nodes(tmp_path):
    sub = tmp_path / "sub.recipe"
    sub.write_text('recipe sub\nparam most: int = 100\nsource pool = read("none.jsonl")\n'
                   'kept = pool | filter(length(response) > 0)\nwrite kept to "k.jsonl"\n'
                   'expect kept: rows() <= most and rows() >= 0.5 * rows(pool)\n'
                   'expect kept by score: rows() == 1\n')
    text = ('recipe main\nsource raw = read("{data}")\nuse "sub.recipe" as q (pool=raw, most=5)\n'
            'write q.kept to "out.jsonl"\n')
    res = load(str(recipe(tmp_path, text))).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    e, grouped = res.manifest["expectations"]
    assert (grouped["node"], grouped["by"], grouped["groups"], grouped["ok"]) == ("q.kept", "score", 6, True)
    assert e["node"] == "q.kept" and e["expect"] == "rows() <= q.most and rows() >= 0.5 * rows(raw)"
    assert e["values"] == {"rows()": 6, "rows(raw)": 8} and not e["ok"]  # 6 rows, at most 5


def test_by_a_column_each_group_must_meet_it(tmp_path, capsys):
    # `score % 2` as a group: odd and even rows; the empty answers are rows 0 and 4 (both even)
    text = ('recipe groups\nsource raw = read("{data}")\nkept = raw | derive(parity = score % 2)\n'
            'write kept to "k.jsonl"\n'
            'expect kept by parity: share(length(response) > 0) == 1  # every group answered in full\n'
            'expect kept by parity: rows() == 4\n')
    f = recipe(tmp_path, text)
    r = parse_any(f.read_text(), str(f))
    assert r.expects[0].by_text == "parity" and r.expects[1].by_text == "parity"
    assert "expect kept by parity: share(length(response) > 0) == 1  # every group answered in full\n" in to_text(r)
    y = tmp_path / "g.yaml"
    y.write_text(to_yaml(r))
    assert "  - {node: kept, by: parity, that: \"share(length(response) > 0) == 1\"}" in y.read_text()
    assert parse_any(y.read_text(), str(y)).to_json() == r.to_json()
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "-q"]) == 3
    err = capsys.readouterr().err
    assert ("expect kept by parity: share(length(response) > 0) == 1 (not met in 1 of 2 groups: 0: "
            "share(length(response) > 0) = 0.5)") in err
    first, second = json.loads((tmp_path / "o" / "manifest.json").read_text())["expectations"]
    assert (first["ok"], first["groups"], first["groups_not_met"]) == (False, 2, 1)
    assert first["not_met"] == [{"group": 0, "values": {"share(length(response) > 0)": 0.5}}]
    assert second["ok"] and second["groups"] == 2


def test_by_several_columns_each_combination_is_a_group(tmp_path, capsys):
    # parity x "has an answer": (0, false) holds rows 0 and 4, the only group of 2 rows
    text = ('recipe groups\nsource raw = read("{data}")\n'
            'kept = raw | derive(parity = score % 2, answered = length(response) > 0)\nwrite kept to "k.jsonl"\n'
            'expect kept by parity, answered: rows() >= 3\n')
    f = recipe(tmp_path, text)
    r = parse_any(f.read_text(), str(f))
    assert [b.name for b in r.expects[0].by] == ["parity", "answered"]
    assert "\nexpect kept by parity, answered: rows() >= 3\n" in to_text(r)
    y = tmp_path / "g.yaml"
    y.write_text(to_yaml(r))
    assert '  - {node: kept, by: [parity, answered], that: "rows() >= 3"}' in y.read_text()
    assert parse_any(y.read_text(), str(y)).to_json() == r.to_json()
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "-q"]) == 3
    assert ("expect kept by parity, answered: rows() >= 3 (not met in 2 of 3 groups: (0, false): rows() = 2; "
            "(0, true): rows() = 2)") in capsys.readouterr().err
    assert main(["plan", str(f), "--cache-dir", str(tmp_path / "c")]) == 0  # the plan's `by` is a list
    assert "expect kept by parity, answered: rows() >= 3 (checked on kept's rows" in capsys.readouterr().out
    e = json.loads((tmp_path / "o" / "manifest.json").read_text())["expectations"][0]
    assert e["by"] == "parity, answered" and e["not_met"] == [{"group": [0, False], "values": {"rows()": 2}},
                                                              {"group": [0, True], "values": {"rows()": 2}}]
    # each column is checked
    bad = recipe(tmp_path, text.replace("by parity, answered", "by parity, answerd"))
    with pytest.raises(RecipeError, match="column `answerd` does not exist at the end of `kept`"):
        load(str(bad)).check()


def test_grouped_results_are_the_same_on_ray(tmp_path):
    text = ('recipe groups\nsource raw = read("{data}")\nkept = raw | derive(parity = score % 2)\n'
            'write kept to "k.jsonl"\nexpect kept by parity: share(length(response) > 0) == 1 and mean(score) > 3\n'
            'expect kept by parity, instruction: rows() == 1\n')
    f = recipe(tmp_path, text)
    duck = load(str(f)).run(out=tmp_path / "o-duckdb", cache_dir=tmp_path / "c-duckdb")
    ray = load(str(f)).run(out=tmp_path / "o-ray", cache_dir=tmp_path / "c-ray", engine="ray")
    assert ray.manifest["expectations"] == duck.manifest["expectations"]
    assert duck.manifest["expectations"][0]["groups_not_met"] == 1


def test_a_changed_group_expectation_is_shown_with_its_column(tmp_path):
    from recipe.diff import diff
    base = 'recipe g\nsource raw = read("{data}")\nkept = raw | derive(parity = score % 2)\nwrite kept to "k.jsonl"\n'
    a = parse_any(base + "expect kept by parity: rows() == 4\n", "a.recipe")
    b = parse_any(base + "expect kept: rows() == 4\n", "b.recipe")
    assert diff(a, b) == ["- expect kept by parity: rows() == 4", "+ expect kept: rows() == 4"]

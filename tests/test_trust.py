"""What a recipe says is what it writes, and `check` finds what can be known before a run.

One test per case a first day on real data found (each failed before its fix)."""
import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recipe.api import load
from recipe.diagnostics import RecipeError

from conftest import alpaca_rows, read_jsonl, write_jsonl


def _run(text, tmp_path, out="out", cache="cache", **kw):
    return load(text).run(out=tmp_path / out, cache_dir=tmp_path / cache, **kw)


def _codes(text, **kw):
    return [d.code for d in load(text).diagnose(**kw).diagnostics if d.is_error]


@pytest.fixture
def data(tmp_path):
    rows = alpaca_rows(12)
    for i, r in enumerate(rows):
        r["source"] = "a" if i % 3 else "b"
        r["score"] = float(i % 5)
    return write_jsonl(tmp_path / "d.jsonl", rows)


# ---- output does not depend on what is in the cache ---------------------------------

def test_renamed_source_on_a_warm_cache_gives_its_own_ids(tmp_path, data):
    text = 'recipe t\nsource {name} = read("%s")\nwrite {name} to "x.jsonl"\n' % data
    _run(text.format(name="raw"), tmp_path)
    res = _run(text.format(name="code"), tmp_path)
    ids = [r["_id"] for r in read_jsonl(tmp_path / "out" / "x.jsonl")]
    assert ids and all(i.startswith("code:") for i in ids), ids[:3]
    assert not res.steps[0]["cached"]


# ---- the conversation has one source of truth -----------------------------------------

WRITE_FORMATS = [("x.jsonl", None), ("x.json", "alpaca"), ("x.jsonl", "sharegpt"), ("x.jsonl", "openai"),
                 ("x.jsonl", "dolly"), ("x.jsonl", "prompt_completion"), ("x.csv", "alpaca"),
                 ("x.parquet", "alpaca"), ("x.parquet", None), ("x.tsv", None)]


def _read_any(path: Path):
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh, delimiter="," if path.suffix == ".csv" else "\t"))
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return read_jsonl(path)


@pytest.mark.parametrize("column", ["instruction", "response"])
@pytest.mark.parametrize("file,fmt", WRITE_FORMATS, ids=lambda x: str(x))
def test_a_derived_canonical_column_reaches_every_writer(tmp_path, data, column, file, fmt):
    opts = f' (format="{fmt}")' if fmt else ""
    text = (f'recipe t\nsource raw = read("{data}", format="alpaca")\n'
            f'x = raw | derive({column}=upper({column}))\nwrite x to "{file}"{opts}\n')
    _run(text, tmp_path)
    recs = _read_any(tmp_path / "out" / file)
    assert len(recs) == 12
    blob = json.dumps(recs, ensure_ascii=False)
    marker = "TASK NUMBER 3: DESCRIBE ITEM 8" if column == "instruction" else "ITEM 8 IS DESCRIBED HERE WITH 3 WORDS"
    assert marker in blob
    # the original spelling survives nowhere (jsonl rows carry messages and the column)
    original = "Task number 3: describe item 8" if column == "instruction" else "Item 8 is described here with 3 words"
    assert original not in blob


def test_derived_response_on_rows_without_an_answer_adds_the_turn(tmp_path):
    data = write_jsonl(tmp_path / "q.jsonl", [{"question": "What is 2+2?"}, {"question": "Name a colour."}])
    text = (f'recipe t\nsource raw = read("{data}")\n'
            f'x = raw | derive(response=concat("Answer to: ", instruction))\nwrite x to "x.jsonl" (format="openai")\n')
    _run(text, tmp_path)
    rows = read_jsonl(tmp_path / "out" / "x.jsonl")
    assert rows[0]["messages"] == [{"role": "user", "content": "What is 2+2?"},
                                   {"role": "assistant", "content": "Answer to: What is 2+2?"}]


@pytest.mark.parametrize("fast", [True, False])
def test_the_response_is_the_answer_after_the_instruction(tmp_path, monkeypatch, fast):
    # a chat log that opens with the assistant's greeting: the greeting answered nothing, and was
    # taken as the answer to the first question (IFD, judges and filters paired them)
    if not fast:
        from recipe.engine import read
        monkeypatch.setattr(read, "_fast", lambda *a, **k: None)
    greet = [{"role": "assistant", "content": "Hi! How can I help?"}, {"role": "user", "content": "What is 2+2?"},
             {"role": "assistant", "content": "4"}]
    unanswered = [{"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name a colour."}]
    data = write_jsonl(tmp_path / "c.jsonl", [{"messages": greet}, {"messages": unanswered}])
    text = (f'recipe t\nsource raw = read("{data}")\nx = raw | derive(response=concat(response, "!"))\n'
            'write raw to "raw.jsonl"\nwrite x to "x.jsonl"\n')
    _run(text, tmp_path)
    raw = read_jsonl(tmp_path / "out" / "raw.jsonl")
    assert [(r["instruction"], r["response"]) for r in raw] == [("What is 2+2?", "4"), ("Name a colour.", "")]
    # the edit lands on the answer's turn; a row without one gets one after its question
    x = read_jsonl(tmp_path / "out" / "x.jsonl")
    assert x[0]["messages"] == greet[:2] + [{"role": "assistant", "content": "4!"}]
    assert x[1]["messages"] == unanswered + [{"role": "assistant", "content": "!"}]


def test_ops_cannot_overwrite_canonical_columns():
    text = ('recipe t\nmodel lm = causal_lm("builtin:smollm2")\nsource raw = read("d.jsonl")\n'
            'x = raw | score(metric="ifd", model=lm, column="instruction") | derive(_id=instruction)\n'
            'write x to "x.jsonl"\n')
    assert _codes(text, sniff=False) == ["E0407", "E0407"]


# ---- selections say what they did -------------------------------------------------------

def test_topk_on_text_is_a_check_error(data):
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | select(method="topk", by=instruction, k=5)\nwrite x to "x.jsonl"\n'
    assert _codes(text) == ["E0406"]
    ok = text.replace("by=instruction", "by=score")
    assert _codes(ok) == []


def test_quota_keeps_the_best_of_each_group_and_says_why(tmp_path, data):
    base = f'recipe t\nsource raw = read("{data}")\nx = raw | select(method="quota", by=source, per=2{{o}})\nwrite x to "x.jsonl"\n'
    assert _codes(base.format(o="")) == ["E0207"]  # which rows are best must be said
    res = _run(base.format(o=", order=score"), tmp_path)
    rows = read_jsonl(tmp_path / "out" / "x.jsonl")
    by_group: dict = {}
    for r in rows:
        by_group.setdefault(r["source"], []).append(r["score"])
    src = [json.loads(line) for line in (data.read_text().splitlines())]
    for g, scores in by_group.items():
        best = sorted((r["score"] for r in src if r["source"] == g), reverse=True)[:2]
        assert sorted(scores, reverse=True) == best
    aside = read_jsonl(tmp_path / "out" / "set_aside.jsonl")
    assert len(aside) == 12 - 4 and res.manifest["sinks"][0]["rows"] == 4
    assert all(a["reason"].startswith("quota: `source` = ") and "k=" not in a["reason"] for a in aside)


def test_topk_and_threshold_reasons_carry_the_values(tmp_path, data):
    text = (f'recipe t\nsource raw = read("{data}")\n'
            f'x = raw | select(method="threshold", by=score, min=1) | select(method="topk", by=score, k=3)\n'
            f'write x to "x.jsonl"\n')
    _run(text, tmp_path)
    reasons = [a["reason"] for a in read_jsonl(tmp_path / "out" / "set_aside.jsonl")]
    assert any(r == "threshold: `score` = 0 is below min=1" for r in reasons)
    assert any(r.startswith("topk: `score` = ") and "last kept: 3" in r for r in reasons)


def test_deita_shortfall_is_reported_and_reasons_name_the_similarity(tmp_path):
    # four rows, two of them copies in direction: tau refuses one copy, so k=4 cannot be met
    rows = [{"instruction": f"q{i}", "output": "a", "q": float(4 - i), "e": e}
            for i, e in enumerate([[1, 0], [1, 0.01], [0, 1], [-1, 0]])]
    data = write_jsonl(tmp_path / "e.jsonl", rows)
    text = (f'recipe t\nsource raw = read("{data}")\n'
            f'x = raw | select(method="deita", k=4, quality=q, embedding_column=e, tau=0.9)\nwrite x to "x.jsonl"\n')
    res = _run(text, tmp_path)
    assert res.manifest["sinks"][0]["rows"] == 3
    assert res.manifest["warnings"] == ["x: selected 3 of the 4 rows asked: the similarity limit tau=0.9 refused 1 rows"]
    (aside,) = read_jsonl(tmp_path / "out" / "set_aside.jsonl")
    assert aside["_id"] == "raw:1" and aside["reason"].startswith("deita: cosine 1.000 to kept row raw:0 is above tau=0.9")


# ---- write options ------------------------------------------------------------------------

def test_csv_sink_writes_csv(tmp_path, data):
    _run(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.csv"\n', tmp_path)
    recs = _read_any(tmp_path / "out" / "x.csv")
    assert len(recs) == 12 and json.loads(recs[0]["messages"])[0]["role"] == "user"


def test_write_options_are_checked(data):
    base = f'recipe t\nsource raw = read("{data}")\nwrite raw to "{{f}}"{{o}}\n'
    assert _codes(base.format(f="x.jsonl", o=' (columns=["nope"])')) == ["E0401"]
    assert _codes(base.format(f="x.jsonl", o=' (colums=["score"])')) == ["E0901"]
    assert _codes(base.format(f="x.jsonl", o=' (format="hf")')) == ["E0904"]
    assert _codes(base.format(f="../x.jsonl", o="")) == ["E0905"]
    assert _codes(base.format(f="x.txt", o="")) == ["E0906"]
    assert _codes(base.format(f="x.jsonl", o=' (columns=["score"])')) == []


def test_jsonl_columns_choose_what_is_written(tmp_path, data):
    _run(f'recipe t\nsource raw = read("{data}")\nwrite raw to "x.jsonl" (columns=["score"])\n', tmp_path)
    assert set(read_jsonl(tmp_path / "out" / "x.jsonl")[0]) == {"_id", "score"}


# ---- check knows what can be known ------------------------------------------------------

def test_text_plus_text_is_a_type_error_with_a_hint(data):
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | derive(text=instruction + " " + response)\nwrite x to "x.jsonl"\n'
    c = load(text).diagnose()
    (d,) = [d for d in c.diagnostics if d.is_error]
    assert d.code == "E0405" and "concat(" in d.hints[0]
    assert _codes(text.replace('instruction + " " + response', 'concat(instruction, " ", response)')) == []


def test_filter_must_be_a_condition(data):
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | filter(length(response))\nwrite x to "x.jsonl"\n'
    assert _codes(text) == ["E0405"]


def test_model_kind_is_checked_per_operator():
    text = ('recipe t\nmodel emb = embedding("builtin:minilm")\nsource raw = read("d.jsonl")\n'
            'x = raw | score(metric="ifd", model=emb)\nwrite x to "x.jsonl"\n')
    c = load(text).diagnose(sniff=False)
    (d,) = c.diagnostics
    assert d.code == "E0209" and "causal_lm" in d.message and "`emb` is embedding" in d.message


def test_template_placeholders_are_checked_against_the_columns(data):
    base = (f'recipe t\nmodel lm = causal_lm("builtin:smollm2")\nsource raw = read("{data}")\n'
            f'x = raw | score(metric="judge", model=lm, prompt="{{p}}")\nwrite x to "x.jsonl"\n')
    (d,) = load(base.replace("{p}", "Rate {instrction}: {response}")).diagnose().diagnostics
    assert d.code == "E0210" and "did you mean `instruction`" in d.hints[0]
    assert _codes(base.replace("{p}", "Rate {instruction} from {source}: {response}")) == []
    assert _codes(base.replace("{p}", "Rate {nope}")) == ["E0210"]
    assert _codes(base.replace("{p}", "Rate {0}")) == ["E0210"]


@pytest.mark.slow
def test_a_judge_template_reads_any_column(tmp_path, data, model_cache):
    from recipe.runtime import ModelRuntime
    text = (f'recipe t\nmodel lm = causal_lm("builtin:smollm2")\nsource raw = read("{data}")\n'
            f'x = raw | limit(n=2) | score(metric="judge", model=lm, prompt="From {{source}}: {{instruction}} '
            f'{{response}} Rate 1-5:", chat_template=false)\nwrite x to "x.jsonl"\n')
    res = _run(text, tmp_path, runtime=ModelRuntime(model_cache))
    rows = read_jsonl(tmp_path / "out" / "x.jsonl")
    assert all(1 <= r["judge"] <= 5 for r in rows) and res.manifest["model_runtime"]


def test_missing_input_and_exclusive_params_fail_check_not_the_run(tmp_path, data):
    missing = 'recipe t\nsource raw = read("nowhere.jsonl")\nwrite raw to "x.jsonl"\n'
    assert _codes(missing) == ["E0903"]
    with pytest.raises(RecipeError):
        _run(missing, tmp_path)
    assert not (tmp_path / "cache").exists()
    both = f'recipe t\nsource raw = read("{data}")\nx = raw | select(method="sample", k=3, fraction=0.5)\nwrite x to "x.jsonl"\n'
    assert _codes(both) == ["E0208"]
    bad_fmt = f'recipe t\nsource raw = read("{data}", format="alpacca", idd="x")\nwrite raw to "x.jsonl"\n'
    assert sorted(_codes(bad_fmt)) == ["E0901", "E0902"]


# ---- the Python API ----------------------------------------------------------------------

def test_api_check_raises_and_names_parameters(data):
    r = load(f'recipe t\nparam n: int = 3\nsource raw = read("{data}")\nx = raw | limit(n=n)\nwrite x to "x.jsonl"\n')
    with pytest.raises(RecipeError) as e:
        r.check(params={"n": "many"})
    assert "--set" not in e.value.diagnostics[0].message
    assert r.check(params={"n": "2"}).ok


def test_result_tables(tmp_path, data):
    res = _run(f'recipe t\nsource raw = read("{data}")\nx = raw | limit(n=2)\nwrite x to "x.jsonl"\n', tmp_path)
    assert res.table("x").num_rows == 2
    with pytest.raises(KeyError, match="no node `y`.*x"):
        res.table("y")
    rel = res.relation("raw")  # queried after the call returned: the relation keeps its connection
    assert rel.filter("_id <> 'raw:0'").aggregate("count(*)").fetchall() == [(11,)]
    _run(f'recipe t\nsource raw = read("{data}")\nx = raw | limit(n=3)\nwrite x to "x.jsonl"\n', tmp_path)  # cache free
    assert rel.count("*").fetchall() == [(12,)]
    pd = pytest.importorskip("pandas")
    assert isinstance(res.to_pandas("x"), pd.DataFrame) and len(res.to_pandas("x")) == 2


# ---- the model cache is per user, the step cache per project ---------------------------

@pytest.mark.slow
def test_model_results_are_shared_across_projects(tmp_path, data, monkeypatch):
    monkeypatch.setenv("RECIPE_CACHE_HOME", str(tmp_path / "user-cache"))
    text = (f'recipe t\nmodel emb = embedding("builtin:minilm")\nsource raw = read("{data}")\n'
            f'x = raw | dedupe(method="semantic", embedding=emb, threshold=0.99)\nwrite x to "x.jsonl"\n')
    first = load(text).run(out=tmp_path / "a" / "out", cache_dir=tmp_path / "a" / ".recipe")
    second = load(text).run(out=tmp_path / "b" / "out", cache_dir=tmp_path / "b" / ".recipe")
    (s1,), (s2,) = first.manifest["model_runtime"].values(), second.manifest["model_runtime"].values()
    assert s1["computed"] == 12 and s2["computed"] == 0 and s2["cache_hits"] == 12
    assert (tmp_path / "user-cache" / "models" / "results.sqlite").exists()
    assert not (tmp_path / "a" / ".recipe" / "models").exists()


# ---- explain: the row's own path, with its values -----------------------------------------

def test_explain_shows_the_rows_path_and_values(tmp_path, data, monkeypatch, capsys):
    from recipe.cli import main
    text = (f'recipe t\nsource raw = read("{data}")\nsource other = read("{data}")\n'
            f'a = raw | derive(n=length(instruction)) | select(method="topk", by=score, k=4)\n'
            f'b = other | limit(n=1)\nwrite a to "a.jsonl"\nwrite b to "b.jsonl"\n')
    _run(text, tmp_path)
    monkeypatch.chdir(tmp_path)  # --out and --cache-dir default like `run`'s
    (tmp_path / "cache").rename(tmp_path / ".recipe")
    assert main(["explain", "--row", "raw:4"]) == 0
    kept = capsys.readouterr().out.splitlines()
    assert kept[0].startswith("raw:4: raw (read): read")
    assert kept[1] == "  a/derive (derive): kept: n=41"  # len("Task number 4: describe item 2 in detail.")
    assert kept[2] == "  a/select (select): kept" and kept[3].endswith("a.jsonl")
    assert not any("other" in line or line.startswith("  b ") for line in kept)  # not on its path
    assert main(["explain", "--row", "raw:0"]) == 0
    dropped = capsys.readouterr().out.splitlines()
    assert dropped[-1].startswith("  a/select (select): set aside: topk: `score` = 0 ranks below the 4 kept rows")
    assert main(["explain", "--row", "nope:1"]) == 1
    assert "not in this run" in capsys.readouterr().err
    # a cache that does not hold this run: what set_aside.jsonl says, and why no values
    _run(f'recipe u\nsource raw = read("{data}")\nwrite raw to "u.jsonl"\n', tmp_path, out="other", cache="other-cache")
    assert main(["explain", "--row", "raw:0", "--cache-dir", str(tmp_path / "other-cache")]) == 0
    got = capsys.readouterr()
    assert "set aside at `a/select`" in got.out and "does not hold this run" in got.err


def test_explain_names_every_sink_of_a_row_set_aside_on_another_branch(tmp_path, data, monkeypatch, capsys):
    from recipe.cli import main
    # raw:0 is written by `all` and set aside by `some`: explain said only "set aside" (and,
    # without the cache, listed every step of the recipe as the row's path)
    text = (f'recipe t\nsource raw = read("{data}")\nsource other = read("{data}")\nall = raw\n'
            f'some = raw | filter(score > 0)\nwrite all to "all.jsonl"\nwrite some to "some.parquet"\n'
            f'write other to "other.jsonl"\n')
    _run(text, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "--row", "raw:0", "--cache-dir", "cache"]) == 0
    got = capsys.readouterr().out.splitlines()
    assert got[-2].startswith("  some (filter): set aside: filter: `score > 0` is false")
    assert got[-1].endswith("all.jsonl") and "some.parquet" not in "".join(got)
    assert main(["explain", "--row", "raw:0", "--cache-dir", "elsewhere"]) == 0  # set_aside.jsonl and the sinks
    assert capsys.readouterr().out.splitlines() == [
        "raw:0: set aside at `some`: filter: `score > 0` is false", f"  kept: written to {tmp_path / 'out' / 'all.jsonl'} "
        "(node `all`)"]
    assert main(["explain", "--row", "raw:1", "--cache-dir", "elsewhere"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("some.parquet (node `some`)")


def test_embedding_selection_reasons_name_the_nearest_kept_row(tmp_path):
    rows = [{"instruction": f"q{i}", "output": "a", "e": e}
            for i, e in enumerate([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])]
    data = write_jsonl(tmp_path / "e.jsonl", rows)
    text = (f'recipe t\nsource raw = read("{data}")\n'
            f'x = raw | select(method="kcenter", k=2, embedding_column=e)\nwrite x to "x.jsonl"\n')
    _run(text, tmp_path)
    kept = {r["_id"] for r in read_jsonl(tmp_path / "out" / "x.jsonl")}
    for a in read_jsonl(tmp_path / "out" / "set_aside.jsonl"):
        near = a["reason"].split("nearest kept row ")[1].split(",")[0]
        assert near in kept and a["reason"].startswith("not selected by kcenter (k=2; nearest kept row ")
        assert {a["_id"], near} in ({"raw:0", "raw:1"}, {"raw:2", "raw:3"})


# ---- fingerprints cannot go stale ---------------------------------------------------------

def _rerun_after(tmp_path, monkeypatch, text: str, change) -> dict:
    """Run `text`, make `change(codehash module)` (as an upgrade would), run it again: each
    step's reason for running (or "cached")."""
    import recipe.codehash as ch
    _run(text, tmp_path)
    change(ch)
    ch.code_hash.cache_clear()
    try:
        res = _run(text, tmp_path)
    finally:
        ch.code_hash.cache_clear()
    return {s["name"]: s["why"] for s in res.steps}


def _edit_module(tmp_path, monkeypatch, module: str):
    """A change that gives `module` one more line."""
    def change(ch):
        edited = tmp_path / "edited.py"
        edited.write_text(ch._module_file(module).read_text() + "\n# changed\n")
        real = ch._module_file
        monkeypatch.setattr(ch, "_module_file", lambda m: edited if m == module else real(m))
    return change


def test_an_algorithm_source_change_reruns_its_steps_saying_code_changed(tmp_path, data, monkeypatch):
    text = (f'recipe t\nsource raw = read("{data}")\nclean = raw | filter(score >= 0)\n'
            f'x = clean | select(method="topk", by=score, k=3)\nwrite x to "x.jsonl"\n')
    why = _rerun_after(tmp_path, monkeypatch, text, _edit_module(tmp_path, monkeypatch, "recipe.algorithms.diversity"))
    assert why == {"raw": "cached", "clean": "cached", "x": "code changed"}


@pytest.mark.parametrize("module", ["recipe.engine.sql", "recipe.engine.ray_blocks"])
def test_an_engine_source_change_reruns_the_steps_that_run_through_it(tmp_path, data, monkeypatch, module):
    """Operators never import the engines, yet their kernels run through them (a filter's
    condition is translated to SQL by the engine): an engine's code is in every step's
    fingerprint, Ray's too, since both engines share fingerprints."""
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | filter(score >= 0)\nwrite x to "x.jsonl"\n'
    why = _rerun_after(tmp_path, monkeypatch, text, _edit_module(tmp_path, monkeypatch, module))
    assert why == {"raw": "code changed", "x": "code changed"}


def test_import_lines_find_what_a_walk_of_the_whole_syntax_tree_finds():
    """Fingerprints follow each operator's imports; they are read from the lines that start
    an import statement (parsing whole modules cost a second at every run's start). In every
    module of the package, lazy and parenthesised imports included, that finds the same
    imports as walking the module's whole syntax tree."""
    import ast
    import recipe.codehash as ch

    def key(n):
        return (type(n).__name__, getattr(n, "module", None), getattr(n, "level", None),
                tuple((a.name, a.asname) for a in n.names))
    files = sorted(ch.PKG.rglob("*.py"))
    assert len(files) > 100
    for path in files:
        src = path.read_text(encoding="utf-8")
        walked = sorted((key(n) for n in ast.walk(ast.parse(src)) if isinstance(n, (ast.Import, ast.ImportFrom))),
                        key=repr)
        found = sorted((key(n) for n in ch.import_statements(src)), key=repr)
        assert found == walked, path
    # what the line finder must not miss, and prose it must not take for an import
    src = ('"""Docs.\nimport this is prose\n"""\nfrom .a import (b,\n    c)  # two\nimport recipe.x as y\n'
           'def f():\n    from ..d import e\n')
    assert [key(n) for n in ch.import_statements(src)] == [
        ("ImportFrom", "a", 1, (("b", None), ("c", None))), ("Import", None, None, (("recipe.x", "y"),)),
        ("ImportFrom", "d", 2, (("e", None),))]


def test_a_python_with_other_unicode_tables_reruns_the_steps(tmp_path, data, monkeypatch):
    """Normalisation lower-cases with the running Python's Unicode tables, so a cache made
    under another Unicode version is not served: every step says "code changed"."""
    import types
    text = (f'recipe t\nsource raw = read("{data}")\n'
            f'x = raw | dedupe(method="exact", on=instruction)\nwrite x to "x.jsonl"\n')
    why = _rerun_after(tmp_path, monkeypatch, text, lambda ch: monkeypatch.setattr(
        ch, "unicodedata", types.SimpleNamespace(unidata_version="99.0.0")))
    assert why == {"raw": "code changed", "x": "code changed"}


def test_null_literals_found_by_the_fuzzers_run_cleanly(tmp_path, data):
    text = (f'recipe t\nsource raw = read("{data}", format="alpaca")\n'
            f'x = raw | derive(instruction=null, flag=contains(null, null)) | filter(not contains(null, response) '
            f'or true)\nwrite x to "x.json" (format="alpaca")\n')
    assert _codes(text) == []
    _run(text, tmp_path)
    recs = json.loads((tmp_path / "out" / "x.json").read_text())
    assert len(recs) == 12 and all(r["instruction"] == "" for r in recs)


def test_the_same_file_spelled_another_way_is_the_same_step(tmp_path, monkeypatch):
    """The read's key holds the file names and contents, not the path as written: a recipe run
    from its folder and planned from another (or given the file by an absolute path) reuses
    the cached steps; a change of content still re-runs them."""
    from recipe.engine.store import Store
    work = tmp_path / "w"
    work.mkdir()
    (work / "d.jsonl").write_text('{"instruction": "a question here", "output": "an answer"}\n')
    text = 'recipe t\nsource raw = read("{p}")\nx = raw | limit(n=5)\nwrite x to "x.jsonl"\n'
    monkeypatch.chdir(work)
    load(text.format(p="d.jsonl")).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    monkeypatch.chdir(tmp_path)
    plan = load(text.format(p=str(work / "d.jsonl"))).plan()
    store = Store(tmp_path / "c")
    try:
        assert all(store.done(s.fingerprint) for s in plan.steps)
    finally:
        store.close()
    (work / "d.jsonl").write_text('{"instruction": "another question", "output": "an answer"}\n')
    plan2 = load(text.format(p=str(work / "d.jsonl"))).plan()
    assert plan2.steps[0].fingerprint != plan.steps[0].fingerprint


def test_steps_given_no_rows_run_and_say_what_they_could_not_do(tmp_path):
    """A filter that keeps nothing hands every later step an empty input: the embedding
    selections, both dedupes, sample and mix run (no crash mid-run), the sinks write empty
    files whose CSV header still names the columns, and a step that got fewer rows than it
    asked for says so in the manifest."""
    rows = [{"instruction": f"q{i}", "output": "a", "e": [1.0, float(i)]} for i in range(6)]
    data = write_jsonl(tmp_path / "e.jsonl", rows)
    text = f'''recipe t
source raw = read("{data}")
none = raw | filter(length(instruction) > 100)
fl = none | dedupe(method="exact", on=instruction) | dedupe(method="minhash", on=instruction)
  | select(method="facility_location", k=3, embedding_column=e)
kc = none | select(method="kcenter", k=3, embedding_column=e) | sample(n=2, seed=1)
m = mix(raw, none, weights=[0.5, 0.5], k=4, seed=0)
write fl to "fl.csv"
write kc to "kc.json" (format="alpaca")
write m to "m.jsonl"
'''
    res = _run(text, tmp_path)
    out = tmp_path / "out"
    assert (out / "fl.csv").read_text().splitlines() == ["_id,messages,instruction,response,e"]
    assert json.loads((out / "kc.json").read_text()) == []
    assert len(read_jsonl(out / "m.jsonl")) == 2
    warn = {n["name"]: n.get("stats", {}).get("warning") for n in res.manifest["nodes"]}
    assert warn["fl/select"] == "selected 0 of the 3 rows asked: the input has only 0 rows"
    assert warn["kc/sample"] == "sampled 0 of the 2 rows asked: the input has only 0 rows"
    assert warn["m"] == "drew 2 of the 4 rows asked: input 2 has only 0 of the 2 rows its weight asks"


def test_a_score_that_comes_out_null_says_why(tmp_path):
    """IFD of rows without a response is null, not low: the manifest warns how many and why,
    instead of a selection quietly running on no quality at all."""
    from test_runtime import _tiny_lm
    _tiny_lm(tmp_path / "lm")
    rows = [{"instruction": f"w{i} w{i + 1}", "output": "" if i % 2 else f"w{i} w{i + 2} w{i + 3}"} for i in range(6)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    text = (f'recipe t\nmodel lm = causal_lm("{tmp_path / "lm"}")\nsource raw = read("{data}")\n'
            f'x = raw | score(metric="ifd", model=lm, chat_template=false)\nwrite x to "x.jsonl"\n')
    res = _run(text, tmp_path, model_cache=tmp_path / "models")
    got = read_jsonl(tmp_path / "out" / "x.jsonl")
    assert [r["ifd"] is None for r in got] == [False, True] * 3
    node = next(n for n in res.manifest["nodes"] if n["name"] == "x")
    assert node["stats"]["warning"] == ("3 of 6 rows scored null "
                                        "(IFD and perplexity score the response, and these rows have none)")


def test_check_reads_the_head_of_every_file_of_a_folder(tmp_path):
    """A folder's files are detected one by one at run time: `check` reads the first rows of
    each, so a column only a later file has is known, and a later file whose format cannot be
    told is an error before anything runs, not mid-run."""
    d = tmp_path / "mixed"
    d.mkdir()
    write_jsonl(d / "a.jsonl", alpaca_rows(3))
    write_jsonl(d / "b.jsonl", [{"question_id": 1, "text": "Why?", "category": "x"}])
    text = (f'recipe t\nsource raw = read("{d}")\nx = raw | filter(category == "x")\nwrite x to "x.jsonl"\n')
    _run(text, tmp_path)
    assert [r["instruction"] for r in read_jsonl(tmp_path / "out" / "x.jsonl")] == ["Why?"]
    write_jsonl(d / "c.jsonl", [{"$schema": "http://json-schema.org/draft-07/schema#", "type": "array"}])
    codes = _codes(text)
    assert codes == ["E0903"]


def test_a_source_whose_every_row_is_set_aside_is_a_warning_at_check_and_in_the_run(tmp_path):
    """The commonest cause of an empty run, a format named that is not the file's: `check`
    warns (W0903) and the run's manifest says every row was set aside and why the first was."""
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"q{i}", "input": "", "response": "a"} for i in range(3)])
    text = f'recipe t\nsource raw = read("{data}", format="alpaca")\nwrite raw to "x.jsonl"\n'
    diags = load(text).diagnose().diagnostics
    assert [d.code for d in diags] == ["W0903"] and "is it the file's format" in diags[0].hints[0]
    res = _run(text, tmp_path)
    assert res.manifest["warnings"] == [
        'raw: every row (3) was set aside; the first: d.jsonl:1: missing field `output` (the record looks like '
        'dolly: keys `instruction`, `response`) (format="alpaca" is given: is it the file\'s format?)']


def test_an_earlier_runs_output_left_in_out_is_named_in_the_warnings(tmp_path, data):
    """A second recipe run into the same --out replaces the manifest: a file the first wrote
    and the second does not is left without one, so the run says so."""
    _run(f'recipe a\nsource raw = read("{data}")\nwrite raw to "a.jsonl"\n', tmp_path)
    res = _run(f'recipe b\nsource raw = read("{data}")\nwrite raw to "b.jsonl"\n', tmp_path)
    stale = str(tmp_path / "out" / "a.jsonl")
    assert res.manifest["warnings"] == [f"{stale}: an earlier run's output that this run does not write"]
    res = _run(f'recipe b\nsource raw = read("{data}")\nwrite raw to "b.jsonl"\n', tmp_path)
    # said again: the manifest it replaced names a.jsonl as stale (not among its sinks)
    assert res.manifest["warnings"] == [f"{stale}: an earlier run's output that this run does not write"]
    assert res.manifest["stale_outputs"] == [stale]
    Path(stale).unlink()
    res = _run(f'recipe b\nsource raw = read("{data}")\nwrite raw to "b.jsonl"\n', tmp_path)
    assert res.manifest["warnings"] == [] and res.manifest["stale_outputs"] == []


def test_a_join_adds_an_annotation_files_columns_by_the_datasets_own_id(tmp_path):
    """Labels in a file of their own (no conversation: format="raw"), joined by the data's
    `id` column: each row gets its label, a row without one is set aside and `explain` says
    why; the join's other input is not counted among its rows in."""
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": k, "instruction": f"q{k}", "input": "", "output": "r"}
                                              for k in ("a", "b", "c")])
    labels = write_jsonl(tmp_path / "l.jsonl", [{"id": "c", "label": "good"}, {"id": "a", "label": "bad"}])
    res = _run(f'recipe t\nsource raw = read("{data}")\nsource labels = read("{labels}", format="raw")\n'
               'labelled = raw | join(labels, on=id)\nwrite labelled to "o.jsonl"\n', tmp_path)
    assert [(r["id"], r["label"]) for r in read_jsonl(tmp_path / "out" / "o.jsonl")] == [("a", "bad"), ("c", "good")]
    node = next(n for n in res.manifest["nodes"] if n["name"] == "labelled")
    assert (node["rows_in"], node["rows_out"], node["rows_set_aside"]) == (3, 2, 1)
    assert [a["reason"] for a in read_jsonl(tmp_path / "out" / "set_aside.jsonl")] == \
        ["join: `labels` has no row with this `id`"]


@pytest.mark.parametrize("cmd", ["explain", "report"])
def test_explain_and_report_of_a_folder_without_a_run_say_so_in_one_line(tmp_path, capsys, cmd):
    from recipe.cli import main
    (tmp_path / "empty").mkdir()
    (tmp_path / "notjson").mkdir()
    (tmp_path / "notjson" / "manifest.json").write_text("half a manif")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"name": "another tool\'s manifest"}')
    for out, says in (("nothere", "no such folder"), ("empty", "manifest.json is missing"),
                      ("notjson", "not JSON"), ("other", "no `nodes` and `sinks`")):
        args = [cmd, "--out", str(tmp_path / out), "--cache-dir", str(tmp_path / "c")] + (["--row", "raw:0"] if cmd == "explain" else [])
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and says in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_canonical_sink_writes_the_kept_turns_with_the_edited_text(tmp_path):
    """A ShareGPT row with `weight`s keeps its `conversations` for the writers; a canonical sink
    writes that column as it is, and after `derive(response=...)` it held the old answer beside
    the new `messages` (until session 30)."""
    rows = [{"conversations": [{"from": "human", "value": "hi", "weight": 0}, {"from": "gpt", "value": "old", "weight": 1}]}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    out = tmp_path / "o"
    load(f'recipe t\nsource raw = read("{data}", format="sharegpt")\nx = raw | derive(response="new")\n'
         'write x to "x.jsonl"\nwrite x to "x.parquet"\nwrite x to "x.csv"\nwrite x to "s.jsonl" (format="sharegpt")\n'
         ).run(out=out, cache_dir=tmp_path / "c")
    want = [{"from": "human", "value": "hi", "weight": 0}, {"from": "gpt", "value": "new", "weight": 1}]
    assert read_jsonl(out / "x.jsonl")[0]["conversations"] == want
    assert json.loads(pq.read_table(out / "x.parquet").column("conversations")[0].as_py()) == want
    assert json.loads(next(csv.DictReader(open(out / "x.csv")))["conversations"]) == want
    assert read_jsonl(out / "s.jsonl")[0]["conversations"] == want


def test_kept_turns_that_no_longer_match_the_messages_are_not_written_as_current():
    from recipe.io.formats import refreshed_turns
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    kept = [{"from": "human", "value": "a", "weight": 0}, {"from": "gpt", "value": "b", "weight": 1}]
    assert refreshed_turns(kept, "from", "value", msgs) is kept  # nothing changed: the very same value
    text = json.dumps(kept)
    assert refreshed_turns(text, "from", "value", msgs) is text
    assert refreshed_turns(kept, "from", "value", msgs[:1]) is None  # a turn dropped since
    assert refreshed_turns(kept[::-1], "from", "value", msgs) is None  # roles no longer line up

"""What `check` passed runs to the end, or stops with one clear line that names the step or
the file: each case found on real data or by the recipe fuzzer (each failed before its fix).
Split from test_trust.py, whose helpers it shares."""
import json

import pytest

from recipe.api import load

from conftest import read_jsonl, write_jsonl
from test_trust import _codes, _run, data  # noqa: F401 (data is a fixture)


def test_runtime_failure_is_one_line_naming_the_step(tmp_path, data, monkeypatch):
    from recipe.diagnostics import UserError
    from recipe.engine import duck
    # a failure inside an operator that `check` cannot foresee (here DuckDB's own, whose
    # message carries the SQL and a caret): the run stops with one line naming the step
    def failing(self, *a, **k):
        self.con.execute("SELECT regexp_matches('a', '((')").fetchall()
    monkeypatch.setattr(duck.DuckOutput, "filter", failing)
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | filter(length(instruction) > 1)\nwrite x to "x.jsonl"\n'
    with pytest.raises(UserError) as e:
        _run(text, tmp_path)
    msg = str(e.value)
    assert msg.startswith("step `x` (filter) failed:") and "SELECT" not in msg and len(msg.splitlines()) == 2


def test_ctrl_c_inside_a_query_is_an_interrupt_not_a_failed_step(tmp_path, data, monkeypatch, capsys):
    import duckdb
    from recipe.cli import main
    from recipe.engine import duck
    # DuckDB turns Ctrl-C in a query into its own exception: the run said "step failed"
    def interrupted(self, *a, **k):
        raise duckdb.InterruptException("INTERRUPT Error: Query interrupted")
    monkeypatch.setattr(duck.DuckOutput, "filter", interrupted)
    (tmp_path / "t.recipe").write_text(f'recipe t\nsource raw = read("{data}")\nx = raw | filter(score > 1)\n'
                                       'write x to "x.jsonl"\n')
    assert main(["run", str(tmp_path / "t.recipe"), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]) == 130
    assert "interrupted; finished steps are cached" in capsys.readouterr().err


def test_regular_expressions_check_cannot_judge_are_refused_or_made_safe(tmp_path):
    # a pattern taken from each row failed mid-run on the first row whose text is not one
    rows = [{"instruction": "xax", "output": "(a"}, {"instruction": "xbx", "output": "\\q"}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    per_row = f'recipe t\nsource raw = read("{data}")\nx = raw | filter(regexp_matches(instruction, response))\n' \
              'write x to "x.jsonl"\n'
    assert _codes(per_row) == ["E0408"]
    # a replacement taken from each row is inserted as it is: RE2 read `\q` as an escape and
    # dropped the text from there on ("xx"), with no error
    rep = f'recipe t\nsource raw = read("{data}")\nx = raw | derive(z=regexp_replace(instruction, "[ab]", response))\n' \
          'write x to "x.jsonl"\n'
    _run(rep, tmp_path)
    assert [r["z"] for r in read_jsonl(tmp_path / "out" / "x.jsonl")] == ["x(ax", "x\\qx"]


def test_a_condition_of_unknown_type_sets_rows_aside_instead_of_stopping_the_run(tmp_path, data):
    # `check` cannot type abs(null); DuckDB refused coalesce(DOUBLE, false) in the middle of the run
    text = (f'recipe t\nsource raw = read("{data}")\nx = raw | filter(abs(null) or length(instruction) > 1000)\n'
            'write x to "x.jsonl"\n')
    assert load(text).check().ok
    _run(text, tmp_path)
    aside = read_jsonl(tmp_path / "out" / "set_aside.jsonl")
    assert len(aside) == 12 and {a["reason"].split(" (")[0] for a in aside} == {
        "filter: `abs(null) or length(instruction) > 1000` is null"}


def test_round_with_digits_past_a_double_does_not_stop_the_run(tmp_path, data):
    # the digits went through a cast to a 32-bit integer: 10^10 of them stopped the run
    text = (f'recipe t\nsource raw = read("{data}")\nx = raw | derive(a=round(length(instruction) / 3, 10000000000), '
            'b=round(length(instruction) * 1.0, 0 - 10000000000))\nwrite x to "x.jsonl"\n')
    _run(text, tmp_path)
    got = read_jsonl(tmp_path / "out" / "x.jsonl")
    assert [r["a"] for r in got] == [len(r["instruction"]) / 3 for r in got] and {r["b"] for r in got} == {0.0}


def test_a_compressed_file_cut_short_names_the_file(tmp_path):
    import gzip
    from recipe.diagnostics import UserError
    body = "".join(json.dumps({"instruction": f"do {i}", "output": "ok"}) + "\n" for i in range(3000)).encode()
    packed = gzip.compress(body)
    (tmp_path / "d.jsonl.gz").write_bytes(packed[:len(packed) - 100])  # a download cut short
    text = 'recipe t\nsource raw = read("d.jsonl.gz")\nwrite raw to "x.jsonl"\n'
    (tmp_path / "t.recipe").write_text(text)
    with pytest.raises(UserError) as e:
        load(str(tmp_path / "t.recipe")).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert msg.startswith("source `raw`: ") and "d.jsonl.gz cannot be read to its end (EOFError" in msg
    assert "is the file complete?" in msg and len(msg.splitlines()) == 1


@pytest.mark.parametrize("engine", ["duckdb", "ray"])
def test_a_column_check_saw_as_numbers_but_text_later_sets_rows_aside(tmp_path, engine):
    """`check` types a column from a source's first rows (numbers); a later row holds text, so
    the read widens the column to text. The numeric filter `check` passed runs: rows whose
    value is a number are compared as numbers, the others are set aside saying why; and
    integer arithmetic beyond 64 bits is null, not an error that stops the run."""
    rows = [{"instruction": f"q{i}", "output": "a", "n": i, "mixed": i if i < 3 else "n/a"} for i in range(6)]
    rows[4]["n"] = 2 ** 62
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    text = (f'recipe t\nsource raw = read("{data}")\n'
            f'x = raw | derive(big=n * 4) | filter(mixed >= 1 and is_null(big) == false)\nwrite x to "x.jsonl"\n')
    assert _codes(text) == []
    if engine == "ray":
        pytest.importorskip("ray")
    _run(text, tmp_path, engine=engine)
    assert [r["_id"] for r in read_jsonl(tmp_path / "out" / "x.jsonl")] == ["raw:1", "raw:2"]
    aside = {a["_id"]: a["reason"] for a in read_jsonl(tmp_path / "out" / "set_aside.jsonl")}
    assert aside["raw:0"] == "filter: `mixed >= 1` is false"
    assert aside["raw:3"] == aside["raw:5"] == ("filter: `mixed >= 1` is null (a value it reads is null or missing, "
                                                "or text where a number is needed)")
    assert set(aside) == {"raw:0", "raw:3", "raw:4", "raw:5"}


def test_an_empty_input_file_is_named_as_empty_without_a_format_hint(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    text = f'recipe t\nsource raw = read("{tmp_path / "empty.jsonl"}", format="alpaca")\nwrite raw to "x.jsonl"\n'
    d = next(d for d in load(text).diagnose().diagnostics if d.is_error)
    assert d.code == "E0903" and "input is empty" in d.message
    assert d.hints == ("the file has no rows: check the path, or that whatever wrote it finished",)


def test_an_embedding_column_with_bad_rows_names_them(tmp_path):
    from recipe.diagnostics import UserError
    rows = [{"instruction": f"q{i}", "output": "a", "e": [1.0, 0.0] if i % 3 else ([0.0, 1.0, 0.5] if i == 3 else None)}
            for i in range(8)]
    data = write_jsonl(tmp_path / "e.jsonl", rows)
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | select(method="kcenter", k=2, embedding_column=e)\nwrite x to "x.jsonl"\n'
    with pytest.raises(UserError) as e:
        _run(text, tmp_path)
    assert str(e.value) == ("embedding_column `e` must hold a list of 2 numbers in every row; 3 of 8 rows do not (row raw:0: "
                            "null; row raw:3: 3 numbers; row raw:6: null); set them aside first, e.g. "
                            "`filter(is_null(e) == false)`")
    # a column without a single embedding: every row is named ("0 of 8 rows do not ()" before)
    with pytest.raises(UserError) as e:
        _run(text.replace("embedding_column=e", "embedding_column=n").replace("x = raw |", "x = raw | derive(n=null) |"),
             tmp_path, out="o2", cache="c2")
    assert "8 of 8 rows do not (row raw:0: null; row raw:1: null; row raw:2: null; ...)" in str(e.value)


def test_set_aside_records_of_a_read_keep_their_order_across_chunks(tmp_path, monkeypatch):
    from recipe.engine import read
    monkeypatch.setattr(read, "ASIDE_CHUNK", 3)  # several inserts of set-aside records
    lines = []
    for i in range(20):
        lines.append(json.dumps({"instruction": f"do {i}", "output": "ok"}) if i % 3 else "{not json " + str(i))
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    _run(f'recipe t\nsource raw = read("{tmp_path / "d.jsonl"}", format="alpaca")\nwrite raw to "x.jsonl"\n', tmp_path)
    aside = read_jsonl(tmp_path / "out" / "set_aside.jsonl")
    assert [r["raw"] for r in aside] == [lines[i] for i in range(0, 20, 3)]
    assert len(read_jsonl(tmp_path / "out" / "x.jsonl")) == 20 - len(aside)


def test_union_of_sources_that_disagree_on_a_column_type_widens_it(tmp_path):
    # check passed this and the run stopped in the union (DuckDB cannot cast text to a list)
    a = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a1", "output": "x", "tags": ["t1"], "score": 0.5}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"instruction": "b1", "output": "y", "tags": "t3", "score": 3}])
    text = (f'recipe t\nsource a = read("{a}")\nsource b = read("{b}")\nu = union(a, b)\n'
            'write u to "u.jsonl"\n')
    _run(text, tmp_path)
    rows = read_jsonl(tmp_path / "out" / "u.jsonl")
    assert [(r["tags"], r["score"]) for r in rows] == [(["t1"], 0.5), ("t3", 3.0)]  # each value as it was
    # and check knows expressions read the column as text: a list function on it is refused before the run
    assert _codes(text.replace("union(a, b)", "union(a, b) | filter(num_tags(tags) > 0)")) == ["E0405"]


def test_score_statistics_keep_small_values():
    import numpy as np
    from recipe.ops.score import score_stats
    # rounded to six decimals, an IFD of 2e-07 was a min of 0 in the summary and the manifest
    assert score_stats(np.array([2.1350373e-07, 0.5, 0.96741712])) == {
        "mean": 0.489139, "min": 2.13504e-07, "max": 0.967417}


def test_a_dedupe_threshold_of_zero_is_a_value_not_the_default(tmp_path):
    import math
    # six rows on a half circle: neighbours at cosine 0.81, none at 0.9 or more
    rows = [{"instruction": f"q{i}", "output": "a", "e": [math.cos(i * 0.63), math.sin(i * 0.63)]} for i in range(6)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    text = (f'recipe t\nsource raw = read("{data}")\nx = raw | dedupe(method="semantic", embedding_column=e{{t}})\n'
            'write x to "x.jsonl"\n')
    kept = lambda t: _run(text.replace("{t}", t), tmp_path).manifest["nodes"][-1]["rows_out"]  # noqa: E731
    assert kept("") == 6 and kept(", threshold=0.9") == 6  # the default is 0.9
    assert kept(", threshold=0.0") == 1  # every pair within 90 degrees joins one chain (0.0 ran at 0.9)
    assert _codes(text.replace("semantic", "minhash").replace("{t}", ", threshold=0.0")
                  .replace(", embedding_column=e", ", on=instruction")) == ["E0207"]


def test_an_empty_text_param_is_an_error_not_its_default(tmp_path, data):
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | score(metric="length", column="{{c}}")\nwrite x to "x.jsonl"\n'
    assert _codes(text.replace("{c}", "")) == ["E0206"] and _codes(text.replace("{c}", "  ")) == ["E0206"]
    assert _codes(text.replace("{c}", "n")) == []  # was: "" named the column `length`


def test_a_whole_number_beyond_64_bits_is_a_check_error(tmp_path, data):
    text = f'recipe t\nsource raw = read("{data}")\nx = raw | filter(length(instruction) > {{n}})\nwrite x to "x.jsonl"\n'
    assert _codes(text.replace("{n}", str(10 ** 22))) == ["E0405"]  # the run stopped: INT128 to INT64
    assert _codes(text.replace("{n}", str(2 ** 63 - 1))) == [] and _codes(text.replace("{n}", "1e22")) == []


def test_nan_and_infinity_are_written_to_json_as_null_and_said(tmp_path, data):
    import pyarrow.json as pj
    import pyarrow.parquet as pq
    text = (f'recipe t\nsource raw = read("{data}")\nx = raw | derive(z=1e400, w=1.5)\n'
            'write x to "x.jsonl"\nwrite x to "x.json"\nwrite x to "x.parquet"\n')
    res = _run(text, tmp_path)
    rows = read_jsonl(tmp_path / "out" / "x.jsonl")
    assert all(r["z"] is None and r["w"] == 1.5 for r in rows)  # was `Infinity`, which is not JSON
    pj.read_json(tmp_path / "out" / "x.jsonl")  # Arrow's reader (Hugging Face's) takes the file
    assert json.loads((tmp_path / "out" / "x.json").read_text())[0]["z"] is None
    assert pq.read_table(tmp_path / "out" / "x.parquet").column("z")[0].as_py() == float("inf")  # Parquet holds it
    sinks = {s["path"].rsplit("/", 1)[-1]: s for s in res.manifest["sinks"]}
    assert sinks["x.jsonl"]["rows_with_nan_as_null"] == len(rows) and "rows_with_nan_as_null" not in sinks["x.parquet"]
    assert any("written as null" in w for w in res.manifest["warnings"])

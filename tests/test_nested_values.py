"""A nested input value (an object, a list that is not all text) reaches every output as the
value it was. Found on a probe: every object field came out of a JSON, JSONL or Parquet sink
as a string holding its JSON (`"meta": "{\"src\": \"x\"}"`), so a consumer reading
`row["meta"]["src"]` broke although the recipe never touched the field. Such a column is
now a JSON column (Arrow's JSON type in the engines, DuckDB's JSON in SQL)."""
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings, strategies as st

from recipe.api import load
from recipe.engine.sql import to_sql
from recipe.ir import Column
from recipe.engine.tables import RowWriter

from conftest import read_jsonl, write_jsonl

ROWS = [
    {"instruction": "Say hi", "output": "Hi!", "meta": {"src": "x", "n": [1, 2]}, "tags": ["a"], "vec": [0.5, 1]},
    {"instruction": "Say bye", "output": "Bye!", "meta": {"src": "y", "n": []}, "tags": [], "vec": None},
    {"instruction": "Count", "output": "1 2 3", "meta": None, "tags": ["c"], "vec": [2, 3.5]},
]


def test_nested_values_reach_every_container_as_they_were(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", ROWS)
    load(f'recipe n\nsource raw = read("{data}")\nkept = raw | filter(length(instruction) > 0)\n'
         'write kept to "o.jsonl"\nwrite kept to "o.json"\nwrite kept to "o.parquet"\nwrite kept to "o.csv"\n'
         'write kept to "a.jsonl" (format="alpaca", columns=["meta"])\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    want = [{k: r[k] for k in ("meta", "tags", "vec")} for r in ROWS]
    for got in (read_jsonl(tmp_path / "o" / "o.jsonl"), json.loads((tmp_path / "o" / "o.json").read_text())):
        assert [{k: r[k] for k in ("meta", "tags", "vec")} for r in got] == want
        assert list(got[0]["meta"]) == ["src", "n"]  # the input's key order
    assert [r["meta"] for r in read_jsonl(tmp_path / "o" / "a.jsonl")] == [r["meta"] for r in ROWS]
    t = pq.read_table(tmp_path / "o" / "o.parquet")
    assert isinstance(t.schema.field("meta").type, pa.JsonType)  # Parquet's JSON logical type
    assert [None if v is None else json.loads(v) for v in t.column("meta").to_pylist()] == [r["meta"] for r in ROWS]
    csv_text = (tmp_path / "o" / "o.csv").read_text()
    assert '"{""src"": ""x"", ""n"": [1, 2]}"' in csv_text  # CSV holds no objects: JSON text, as before


def test_a_column_that_meets_an_object_after_the_first_chunk_becomes_json_keeping_every_value():
    con = duckdb.connect()
    w = RowWriter(con, "t", chunk=2)
    vals = ["text", "3", {"a": 1}, 7, [1, "b"], None, True]
    for i, v in enumerate(vals):
        w.add(f"r{i}", {"messages": [], "instruction": "i", "response": "r", "m": v})
    w.close()
    assert con.execute("SELECT typeof(m) FROM t LIMIT 1").fetchone()[0] == "JSON"
    got = [None if v is None else json.loads(v) for (v,) in con.execute("SELECT m FROM t ORDER BY _row").fetchall()]
    assert got == vals and w.rejected == []


def test_text_and_numbers_without_nested_values_widen_to_json_too():
    """Until session 27 a conflict among scalars (a number, then text) made a text column, and a
    JSON sink wrote "1" for a 1: each value now stays itself."""
    con = duckdb.connect()
    w = RowWriter(con, "t", chunk=2)
    for i, v in enumerate([1, 2, "x", ["l"]]):
        w.add(f"r{i}", {"messages": [], "instruction": "i", "response": "r", "m": v})
    w.close()
    assert con.execute("SELECT m FROM t ORDER BY _row").fetchall() == [("1",), ("2",), ('"x"',), ('["l"]',)]


def test_a_json_column_reads_as_its_text_in_expressions_joins_and_scores(tmp_path):
    """What `check` passes on a column of nested values runs: compared with a text (DuckDB
    parsed the text as JSON and stopped the run), joined on (Arrow's set lookup refused the
    JSON type), scored by an expression (the cast to a number stopped the run; now null)."""
    data = write_jsonl(tmp_path / "a.jsonl", ROWS + [{"instruction": "Plain", "output": "x", "meta": "x"}])
    lab = write_jsonl(tmp_path / "lab.jsonl", [{"meta": {"src": "x", "n": [1, 2]}, "label": "L1"}])
    res = load(f'recipe j\nsource raw = read("{data}")\nsource lab = read("{lab}", format="raw")\n'
               'a = raw | filter(meta == "x" or contains(meta, "\\"y\\""))\n'
               'b = raw | join(lab, on=meta, how="left") | derive(copy = meta)\n'
               'c = raw | score(metric="expr", expr=meta) | filter(meta > 3)\n'
               'write a to "a.jsonl"\nwrite b to "b.jsonl"\nwrite c to "c.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    # a text among the objects is itself in an expression, not its quoted JSON
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "a.jsonl")] == ["Say bye", "Plain"]
    b = read_jsonl(tmp_path / "o" / "b.jsonl")
    assert [r["label"] for r in b] == ["L1", None, None, None]
    assert [r["copy"] for r in b] == [r["meta"] for r in ROWS] + ["x"]  # a copy of a JSON column stays JSON
    assert read_jsonl(tmp_path / "o" / "c.jsonl") == []
    c = next(n for n in res.manifest["nodes"] if n["name"] == "c/filter")
    assert c["rows_set_aside"] == 4


def test_not_and_or_read_a_column_of_another_type_as_booleans(tmp_path):
    """Found by the recipe fuzzer once it drew JSON columns: `not (meta)` passed `check` (its
    type is not known there) and DuckDB's cast of an object to a boolean stopped the run. Now
    a value that is no boolean is null: the row is set aside with the filter's null reason."""
    data = write_jsonl(tmp_path / "a.jsonl", ROWS + [{"instruction": "T", "output": "x", "meta": "true"}])
    load(f'recipe b\nsource raw = read("{data}")\na = raw | filter(not (coalesce(meta, meta)))\n'
         'b = raw | filter(meta or false)\nwrite a to "a.jsonl"\nwrite b to "b.jsonl"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert read_jsonl(tmp_path / "o" / "a.jsonl") == []
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "b.jsonl")] == ["T"]  # the text "true"
    aside = read_jsonl(tmp_path / "o" / "set_aside.jsonl")
    assert len(aside) == 7 and all("is null" in a["reason"] or "is false" in a["reason"] for a in aside)


def test_parquet_sinks_of_chosen_columns_hold_values_of_several_shapes(tmp_path):
    """`columns=[...]` and other formats build Parquet rows record by record: a JSON column's
    values there stay JSON (decoded, an object, a list and a text made no Arrow column and
    stopped the run; found by a random-recipe probe)."""
    rows = ROWS + [{"instruction": "P", "output": "x", "meta": "plain"}]
    data = write_jsonl(tmp_path / "a.jsonl", rows)
    load(f'recipe p\nsource raw = read("{data}")\nwrite raw to "c.parquet" (columns=["meta"])\n'
         'write raw to "o.parquet" (format="openai", columns=["meta"])\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    for name in ("c", "o"):
        t = pq.read_table(tmp_path / "o" / f"{name}.parquet")
        assert isinstance(t.schema.field("meta").type, pa.JsonType), name
        assert [None if v is None else json.loads(v) for v in t.column("meta").to_pylist()] == [r["meta"] for r in rows]


def test_a_column_of_numbers_and_text_keeps_each_value_and_reads_as_text(tmp_path):
    """Numbers, text and a boolean in one column: every sink writes each value as it was, and everything that reads the column as text (row
    expressions, exact dedupe's key, a kernel's `texts`) reads a text as itself and a number as
    it is written, as a text column did."""
    rows = [{"instruction": f"q{i}", "output": "a", "n": v} for i, v in enumerate([1, 2.5, "1", "x", True, None])]
    data = write_jsonl(tmp_path / "m.jsonl", rows)
    res = load(f'recipe m\nsource raw = read("{data}")\n'
               'd = raw | dedupe(method="exact", on=n)\nf = raw | filter(n == "x" or n == "1" or length(n) == 3)\n'
               'write raw to "raw.jsonl"\nwrite d to "d.jsonl"\nwrite f to "f.jsonl"\nwrite raw to "raw.csv"\n').run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert [r["n"] for r in read_jsonl(tmp_path / "o" / "raw.jsonl")] == [1, 2.5, "1", "x", True, None]
    assert [r["n"] for r in read_jsonl(tmp_path / "o" / "d.jsonl")] == [1, 2.5, "x", True, None]  # "1" is 1's copy
    assert [r["n"] for r in read_jsonl(tmp_path / "o" / "f.jsonl")] == [1, 2.5, "1", "x"]  # 2.5 has 3 characters
    assert [line.split(",")[-1] for line in (tmp_path / "o" / "raw.csv").read_text().splitlines()[1:]] == \
        ["1", "2.5", "1", "x", "true", ""]  # CSV: text as itself (not quoted JSON), true as DuckDB and Arrow write it
    assert res.manifest["nodes"][0]["rows_set_aside"] == 0


def test_a_dotted_name_reads_a_field_of_a_nested_value(tmp_path):
    """`meta.src` in an expression is the field `src` of the column `meta` (any depth), read as
    a JSON column's value is: text as itself, anything else as its JSON, null where the row has
    no such field; a column really named with a dot is that column. Until session 28 a recipe
    could not reach into an object at all (`meta.src` was an unknown column)."""
    rows = [dict(r, deep={"a": {"b": i}}, **{"x.y": f"dotted {i}"}) for i, r in enumerate(ROWS)]
    data = write_jsonl(tmp_path / "a.jsonl", rows)
    text = (f'recipe n\nsource raw = read("{data}")\n'
            'kept = raw | filter(meta.src == "x" or number(deep.a.b) >= 2)\n'
            '  | derive(src = meta.src, n = meta.n, b = number(deep.a.b) * 10, none = meta.nothing, xy = x.y)\n'
            'write kept to "o.jsonl"\n')
    assert load(text).check().ok
    res = load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    got = [{k: r[k] for k in ("src", "n", "b", "none", "xy")} for r in read_jsonl(tmp_path / "o" / "o.jsonl")]
    assert got == [{"src": "x", "n": "[1,2]", "b": 0.0, "none": None, "xy": "dotted 0"},
                   {"src": None, "n": None, "b": 20.0, "none": None, "xy": "dotted 2"}]
    assert "column `none` is null in all 2 rows" in res.manifest["warnings"][0]
    # a field of a column that holds no objects, and a comparison of a field's text with a number
    for expr, code, says in (('length(instruction.x) > 0', "E0401", "`instruction.x` reads a field of `instruction`, "
                              "which holds text, not objects"),
                             ("meta.src > 1", "E0405", "cannot compare str with int")):
        diags = load(f'recipe n\nsource raw = read("{data}")\nk = raw | filter({expr})\nwrite k to "o.jsonl"\n'
                     ).diagnose().diagnostics
        assert [(d.code, says in d.message) for d in diags] == [(code, True)], diags
    # an operator's column parameter is a column: the hint says how to make one of the field
    diags = load(f'recipe n\nsource raw = read("{data}")\nk = raw | dedupe(method="exact", on=meta.src)\n'
                 'write k to "o.jsonl"\n').diagnose().diagnostics
    assert [d.code for d in diags] == ["E0401"] and "`derive(src = meta.src)`" in diags[0].hints[0]


def test_a_score_expression_says_its_statistics_and_its_nulls(tmp_path):
    """`score(metric="expr")` said nothing of what it computed: a misspelt field scored every
    row null and `select` then ranked nulls, without a word. Its summary now has the mean, min
    and max, and a warning counts the null scores."""
    data = write_jsonl(tmp_path / "a.jsonl", ROWS)
    res = load(f'recipe n\nsource raw = read("{data}")\n'
               's = raw | score(metric="expr", expr=length(response) + number(meta.src), column="q")\n'
               't = raw | score(metric="expr", expr=length(response) * 2, column="q")\n'
               'write s to "s.jsonl"\nwrite t to "t.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    stats = {n["name"]: n.get("stats") for n in res.manifest["nodes"]}
    assert stats["t"]["q"] == {"mean": 8.0, "min": 6.0, "max": 10.0}  # "Hi!", "Bye!", "1 2 3"
    assert res.manifest["warnings"] == ["s: 3 of 3 rows scored null (the expression is null for them: a field "
                                        "they lack, or text that is no number)"]


# ---- a field of a nested value (`meta.a.b`), against a reference -------------------------
KEY = st.sampled_from(["a", "b", "Ab", "select"])
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False),
                 st.text(alphabet='ab "\\\u00e9\U0001f600', max_size=4))
VALUE = st.recursive(LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(KEY, inner, max_size=3)), max_leaves=6)


def _field_ref(value, keys):
    """A field as the docs say it reads: text as itself, any other value as its JSON, null where
    there is no such field (or it holds JSON's null)."""
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return None
        value = value[k]
    return value


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.one_of(st.none(), st.dictionaries(KEY, VALUE, max_size=3)), min_size=1, max_size=6),
       keys=st.lists(KEY, min_size=1, max_size=3))
def test_a_dotted_name_reads_the_field_the_reference_reads(rows, keys):
    from recipe.engine.tables import JSON, json_text
    col = pa.array([None if r is None else json_text(r) for r in rows], pa.string())
    con = duckdb.connect()
    con.register("t", pa.table({"m": pa.ExtensionArray.from_storage(JSON, col)}))
    name = "m." + ".".join(keys)
    sql, binds = to_sql(Column(name), {}, {"m": "json"})
    got = [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
    for r, g in zip(rows, got):
        want = _field_ref(r, keys)
        if want is None:
            assert g is None, (r, keys, g)
        elif isinstance(want, str):
            assert g == want, (r, keys, g)
        else:
            assert json.loads(g) == want, (r, keys, g)


def test_a_derive_that_empties_instructions_says_how_many(tmp_path):
    # a pattern that misses most rows gives them an empty instruction (regexp_extract's empty
    # text), which every sink would write: said with the count and the filter that sets them aside
    data = write_jsonl(tmp_path / "a.jsonl", [{"instruction": f"Q: task {i}" if i % 3 else f"task {i}", "output": "o"}
                                              for i in range(6)])
    res = load(f'recipe n\nsource raw = read("{data}")\nx = raw | derive(instruction = regexp_extract(instruction, '
               f'"^Q: (.*)", 1))\nwrite x to "o.jsonl"\n').run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert res.manifest["warnings"] == ["x: `instruction` is empty in 2 of 6 rows: "
                                        "`filter(length(trim(instruction)) > 0)` sets them aside"]
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "o.jsonl")] == ["", "task 1", "task 2", "", "task 4",
                                                                                   "task 5"]

"""The kernel test suite: the table interface (recipe/table.py) and the operators' kernels
on it, run against every engine in tests/kernel_harness.py. An engine passes when every
test here passes for it: same rows, same order, same reasons, every input row accounted for."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)
import pytest
from hypothesis import given, settings, strategies as st

from recipe import ops as registry
from recipe.ir import Binary, Call, Column, Lit
from kernel_harness import HARNESSES, rows_of


def row(i, instruction, response="r", **extra):
    return {"_id": f"s:{i}", "instruction": instruction, "response": response,
            "messages": [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}],
            **extra}


@pytest.fixture(scope="module", autouse=True)
def _stop_ray_after_this_module():
    yield
    from conftest import stop_ray
    stop_ray()


@pytest.fixture(params=HARNESSES, ids=lambda h: h.name)
def eng(request):
    h = request.param()
    yield h
    h.close()


def run_op(eng, op, args, inputs, params=None):
    ctx = eng.context(params)
    registry.get(op).run(ctx, args, inputs)
    out, aside = eng.result(ctx)
    return out, aside, ctx


def accounted(inputs, out, aside):
    """Every input row is in the output or set aside, exactly once (no rows created)."""
    ids_in = sorted(i for t in inputs for i in t.ids())
    assert sorted(out.ids() + [a for a, _ in aside]) == ids_in


# ---- the table interface ------------------------------------------------------------
def test_table_reads_columns_in_order(eng):
    t = eng.table([row(i, f"q{i}", n=i, x=None if i % 2 else f"{i}.5") for i in range(5)])
    assert t.columns()[:4] == ["_id", "messages", "instruction", "response"]
    assert set(t.columns()) == {"_id", "messages", "instruction", "response", "n", "x"}
    assert t.count() == 5
    assert t.ids() == [f"s:{i}" for i in range(5)]
    assert t.column("n") == [0, 1, 2, 3, 4]
    assert t.floats("x").tolist()[0] == 0.5 and t.strings("x")[1] is None
    assert t.floats("n").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert t.texts("conversation")[2] == "user: q2\nassistant: r"
    got = pa.concat_tables(list(t.batches(["_id", "n"], size=2)))
    assert got.column("_id").to_pylist() == t.ids() and got.num_rows == 5


def test_map_blocks_covers_every_row_in_order(eng):
    from recipe.table import block_texts, source_column
    t = eng.table([row(i, f"q{i}") for i in range(23)])
    for col in ("instruction", "conversation"):
        parts = list(t.map_blocks(block_texts, [source_column(col)], col, False, size=4))
        assert len(parts) > 1  # blocks of a few rows (the Ray harness cuts 3-row blocks)
        assert [x for p in parts for x in p] == t.texts(col)


@pytest.mark.parametrize("start, stop", [(0, 23), (3, 12), (7, 14), (20, 40), (5, 5)])
def test_rows_between_reads_only_that_range_in_batches_of_the_size_asked(eng, start, stop):
    """A sharded sink's rows (`Table.rows_between`): the range in order, in full batches but the
    last, whatever the engine's blocks (the harness's Ray blocks are 7 rows)."""
    t = eng.table([row(i, f"q{i}") for i in range(23)])
    part = t.rows_between(start, stop)
    got = list(part.batches(["_id", "instruction"], 4))
    assert [i for b in got for i in b.column("_id").to_pylist()] == [f"s:{i}" for i in range(start, min(stop, 23))]
    assert all(b.num_rows == 4 for b in got[:-1]) and part.count() == max(0, min(stop, 23) - start)


def test_filter_keeps_true_rows_in_order(eng):
    t = eng.table([row(i, "x" * i, n=i if i != 3 else None) for i in range(6)])
    ctx = eng.context()
    ctx.out.filter(t, Binary(">", Column("n"), Lit(1)), "too small")
    out, aside = eng.result(ctx)
    assert out.ids() == ["s:2", "s:4", "s:5"]  # null counts as false
    assert aside == [("s:0", "too small"), ("s:1", "too small"), ("s:3", "too small")]


def test_derive_adds_replaces_and_keeps_messages_in_step(eng):
    t = eng.table([row(i, f"q{i}", n=i) for i in range(3)])
    ctx = eng.context()
    ctx.out.derive(t, {"n": Binary("*", Column("n"), Lit(10)), "instruction": Call("upper", (Column("instruction"),)),
                       "f": Column("n")}, cast={"f": "float"})
    out, aside = eng.result(ctx)
    rows = rows_of(out)
    assert [r["n"] for r in rows] == [0, 10, 20] and [r["f"] for r in rows] == [0.0, 1.0, 2.0]
    assert rows[1]["instruction"] == "Q1" and rows[1]["messages"][0] == {"role": "user", "content": "Q1"}
    assert aside == []


def test_add_columns_row_for_row_with_drops(eng):
    t = eng.table([row(i, f"q{i}", n=i) for i in range(4)])
    ctx = eng.context()
    ctx.out.add_columns(t, pa.table({"n": pa.array([9, 8, 7, 6]), "s": pa.array(["a", "b", "c", "d"])}),
                        drop={1: "no good"})
    out, aside = eng.result(ctx)
    assert [(r["_id"], r["n"], r["s"]) for r in rows_of(out)] == [("s:0", 9, "a"), ("s:2", 7, "c"), ("s:3", 6, "d")]
    assert aside == [("s:1", "no good")]
    with pytest.raises(RuntimeError):
        eng.context().out.add_columns(t, pa.table({"v": pa.array([1])}))


def test_add_columns_streamed_from_a_reader_of_batches(eng):
    """`new` as a reader of batches, read once as they come; a kernel that builds them from
    its input's own batches (normalize, redact) reads and writes at once; too few rows is an
    error, as for a table."""
    t = eng.table([row(i, f"q{i}", n=i) for i in range(5)])

    def batches():
        for b in t.batches(["n", "instruction"], 2):
            yield pa.table({"n": pa.compute.multiply(b.column("n"), 10), "s": pa.compute.utf8_upper(b.column("instruction"))})
    schema = pa.schema([("n", pa.int64()), ("s", pa.string())])
    ctx = eng.context()
    ctx.out.add_columns(t, pa.RecordBatchReader.from_batches(schema, (x for b in batches() for x in b.to_batches())))
    out, aside = eng.result(ctx)
    assert [(r["_id"], r["n"], r["s"]) for r in rows_of(out)] == [(f"s:{i}", 10 * i, f"Q{i}") for i in range(5)]
    assert aside == []
    short = pa.RecordBatchReader.from_batches(schema, iter([pa.record_batch([pa.array([1]), pa.array(["x"])], schema=schema)]))
    with pytest.raises(Exception, match="1 values for 5 rows"):
        eng.context().out.add_columns(t, short)


def test_keep_reorders_and_gives_reasons(eng):
    t = eng.table([row(i, f"q{i}") for i in range(5)])
    ctx = eng.context()
    ctx.out.keep(t, [3, 0, 4], {1: "one"})
    out, aside = eng.result(ctx)
    assert out.ids() == ["s:3", "s:0", "s:4"]
    assert aside == [("s:1", "one"), ("s:2", "not kept")]
    # the new order is the table's order for the next step
    ctx2 = eng.context()
    ctx2.out.keep(out, [1, 2], "dropped")
    out2, aside2 = eng.result(ctx2)
    assert out2.ids() == ["s:0", "s:4"] and aside2 == [("s:3", "dropped")]
    for bad in ([0, 0], [5], [-1]):
        with pytest.raises(RuntimeError):
            eng.context().out.keep(t, bad, "x")


def test_concat_by_name_first_id_wins(eng):
    a = eng.table([row(0, "a0", x=1), row(1, "a1", x=2)])
    b = eng.table([row(1, "b1", y="p"), row(2, "b2", y="q"), row(3, "b3", y="r")])
    ctx = eng.context()
    ctx.out.concat([a, b])
    out, aside = eng.result(ctx)
    rows = rows_of(out)
    assert [r["instruction"] for r in rows] == ["a0", "a1", "b2", "b3"]
    assert rows[0]["y"] is None and rows[2]["x"] is None
    assert aside == [("s:1", "duplicate `_id`: already taken from an earlier input")]
    ctx = eng.context()
    ctx.out.concat([a, b], keep=[[1], [2, 0]], reasons=["not a", "not b"])
    out, aside = eng.result(ctx)
    assert [r["instruction"] for r in rows_of(out)] == ["a1", "b3"]  # b's kept rows in their order
    assert aside == [("s:0", "not a"), ("s:1", "duplicate `_id`: already taken from an earlier input"),
                     ("s:2", "not b")]  # each input's rows in its order


def test_concat_widens_columns_whose_types_differ_as_the_read_does(eng):
    # until session 23 a list unioned with text stopped the run mid-step (DuckDB's cast), and
    # a number unioned with text was DuckDB's rendering of it
    a = eng.table([row(0, "a0", tags=["t1", "é"], n=1, score=0.5, flag=True, k=3),
                   row(1, "a1", tags=None, n=2, score=1.5, flag=False, k=4)])
    b = eng.table([row(2, "b2", tags="t3", n=2.5, score="high", flag="yes", k=5)])
    ctx = eng.context()
    ctx.out.concat([a, b])
    out, aside = eng.result(ctx)
    rows = rows_of(out)
    assert isinstance(out.arrow(["tags"]).schema.field("tags").type, pa.JsonType)  # each value as itself
    assert [r["tags"] for r in rows] == ['["t1", "é"]', None, '"t3"']  # its JSON, as the read writes it
    assert [r["n"] for r in rows] == [1.0, 2.0, 2.5]  # numbers of mixed kinds: floats
    assert [r["score"] for r in rows] == ["0.5", "1.5", '"high"']
    assert [r["flag"] for r in rows] == ["true", "false", '"yes"']
    # read as text, a text is itself (not its quoted JSON), as row expressions read it
    assert out.texts("score") == ["0.5", "1.5", "high"] and out.strings("tags") == ['["t1", "é"]', None, "t3"]
    assert [r["k"] for r in rows] == [3, 4, 5] and aside == []


def test_concat_makes_one_column_of_names_alike_in_any_case(eng):
    """SQL names ignore case: DuckDB's UNION BY NAME made one column of `Label` and `label`,
    Ray's blocks two (until session 27); now both engines one, named as first seen."""
    a = eng.table([row(0, "a0", Label="x", n=1)])
    b = eng.table([row(1, "b1", label="y", N="text")])
    ctx = eng.context()
    ctx.out.concat([a, b])
    out, aside = eng.result(ctx)
    rows = rows_of(out)
    assert [r["Label"] for r in rows] == ["x", "y"] and "label" not in rows[0]
    assert [r["n"] for r in rows] == ["1", '"text"'] and "N" not in rows[0]  # widened as one column: JSON
    assert aside == []


def test_concat_keeps_nested_values_as_json_beside_any_other_type(eng):
    """A column of objects (a JSON column) unioned with text or numbers stays JSON: each value
    is written back as the value it was (until session 26 an object came out as a string)."""
    a = eng.table([row(0, "a0", meta={"src": "x", "n": [1, 2]}), row(1, "a1", meta=None)])
    b = eng.table([row(2, "b2", meta="plain")])
    n = eng.table([row(3, "b3", meta=7)])
    c = eng.table([row(4, "c4", meta={"z": 1, "a": 2})])
    ctx = eng.context()
    ctx.out.concat([a, b, n, c])
    out, aside = eng.result(ctx)
    assert isinstance(out.arrow(["meta"]).schema.field("meta").type, pa.JsonType)
    assert [None if v is None else json.loads(v) for v in (r["meta"] for r in rows_of(out))] == [
        {"src": "x", "n": [1, 2]}, None, "plain", 7, {"z": 1, "a": 2}]  # keys in the input's order
    assert aside == []


def test_distinct_normalises_and_ranks(eng):
    texts = ["Hello  World", "hello world", " HELLO\tworld ", "other", "Other"]
    t = eng.table([row(i, s, score=float(i)) for i, s in enumerate(texts)])
    for keep, winners in (("first", ["s:0", "s:3"]), ("longest", ["s:2", "s:3"]), ("max:score", ["s:2", "s:4"]),
                          ("min:score", ["s:0", "s:3"])):
        ctx = eng.context()
        groups = ctx.out.distinct(t, "instruction", keep)
        out, aside = eng.result(ctx)
        assert groups == 2 and sorted(out.ids()) == winners, keep
        assert all(r.startswith("duplicate of s:") and r.endswith("(exact on instruction)") for _, r in aside)
        accounted([t], out, aside)


def test_rows_and_set_aside(eng):
    t = eng.table([row(0, "a")])
    ctx = eng.context()
    rows, schema = t.rows()
    ctx.out.rows(pa.Table.from_pylist(rows + [{**rows[0], "_id": "new"}], schema=schema))
    ctx.out.set_aside([("new2", "made and rejected")])
    out, aside = eng.result(ctx)
    assert out.ids() == ["s:0", "new"] and aside == [("new2", "made and rejected")]


def test_an_output_is_built_once(eng):
    t = eng.table([row(0, "a")])
    ctx = eng.context()
    ctx.out.keep(t, [0], "x")
    with pytest.raises(RuntimeError):
        ctx.out.keep(t, [0], "x")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=0, max_size=30), st.data())
def test_keep_accounts_for_every_row(values, data):
    for h in HARNESSES:
        eng = h()
        try:
            t = eng.table([row(i, str(v), n=v) for i, v in enumerate(values)])
            pos = data.draw(st.permutations(range(len(values))))[: data.draw(st.integers(0, len(values)))]
            ctx = eng.context()
            ctx.out.keep(t, pos, "x")
            out, aside = eng.result(ctx)
            assert out.ids() == [f"s:{p}" for p in pos]
            accounted([t], out, aside)
        finally:
            eng.close()


# ---- operator kernels on the interface ----------------------------------------------
def test_filter_and_derive_ops(eng):
    t = eng.table([row(i, "w " * i) for i in range(5)])
    out, aside, _ = run_op(eng, "filter", {"where": Binary(">=", Call("words", (Column("instruction"),)), Lit(2))}, [t])
    assert out.ids() == ["s:2", "s:3", "s:4"] and len(aside) == 2
    assert aside[0][1] == "filter: `words(instruction) >= 2` is false"
    out, aside, _ = run_op(eng, "derive", {"len": Call("length", (Column("instruction"),))}, [out])
    assert out.column("len") == [4, 6, 8]
    # a replaced column keeps its place (the written rows keep their key order); a new one goes last
    before = out.columns()
    out, _, _ = run_op(eng, "derive", {"instruction": Call("upper", (Column("instruction"),)), "len2": Lit(1)}, [out])
    assert out.columns() == before + ["len2"] and out.column("instruction")[0] == "W W "
    # a condition that reads a null is set aside as null, not as false (SQL null logic)
    t = eng.table([row(i, f"q{i}", cat=[None, "a", "b"][i]) for i in range(3)])
    out, aside, _ = run_op(eng, "filter", {"where": Binary("!=", Column("cat"), Lit("a"))}, [t])
    assert out.ids() == ["s:2"] and dict(aside) == {
        "s:0": "filter: `cat != \"a\"` is null (a value it reads is null or missing)",
        "s:1": "filter: `cat != \"a\"` is false"}


def test_a_bucket_split_is_the_same_on_any_engine(eng):
    """bucket(): the same rows on either side of a split whichever engine runs it, the two
    sides together every row (the values pinned in tests/test_expr_differential.py)."""
    import hashlib
    t = eng.table([row(i, f"question {i % 7}") for i in range(40)])
    held = Binary("<", Call("bucket", (Column("instruction"), Lit(10))), Lit(3))
    out, aside, _ = run_op(eng, "filter", {"where": held}, [t])
    want = [f"s:{i}" for i in range(40) if int(hashlib.md5(f"question {i % 7}".encode()).hexdigest()[:15], 16) % 10 < 3]
    assert out.ids() == want and 0 < len(want) < 40 and len(aside) == 40 - len(want)
    out, _, _ = run_op(eng, "derive", {"b": Call("bucket", (Column("_id"), Lit(1000)))}, [t])
    assert out.column("b") == [int(hashlib.md5(f"s:{i}".encode()).hexdigest()[:15], 16) % 1000 for i in range(40)]


def test_filter_names_the_part_of_a_conjunction_that_failed(eng):
    """`a and b and c`: a row set aside is told the first part that is false, else the first
    that is null (a part that is null beside a false one did not decide)."""
    rows = [row(0, "q0", n=5, m=5), row(1, "q1", n=0, m=5), row(2, "q2", n=5, m=0),
            row(3, "q3", n=None, m=0), row(4, "q4", n=None, m=5), row(5, "q5", n=0, m=0)]
    t = eng.table(rows)
    where = Binary("and", Binary("and", Binary(">", Column("n"), Lit(1)), Binary(">", Column("m"), Lit(1))),
                   Binary("<", Call("length", (Column("instruction"),)), Lit(9)))
    out, aside, _ = run_op(eng, "filter", {"where": where}, [t])
    assert out.ids() == ["s:0"]
    assert dict(aside) == {"s:1": "filter: `n > 1` is false", "s:2": "filter: `m > 1` is false",
                           "s:3": "filter: `m > 1` is false",
                           "s:4": "filter: `n > 1` is null (a value it reads is null or missing, "
                                  "or text where a number is needed)",
                           "s:5": "filter: `n > 1` is false"}

def test_dedupe_ops(eng):
    base = "the quick brown fox jumps over the lazy dog near the river bank today"
    texts = [base, base.upper(), base + " and again", "something else entirely, not alike at all", base]
    t = eng.table([row(i, s) for i, s in enumerate(texts)])
    out, aside, ctx = run_op(eng, "dedupe", {"method": "exact"}, [t])
    assert out.ids() == ["s:0", "s:2", "s:3"] and ctx.info["clusters"] == 3
    assert aside == [("s:1", "duplicate of s:0 (exact on instruction)"), ("s:4", "duplicate of s:0 (exact on instruction)")]
    out, aside, ctx = run_op(eng, "dedupe", {"method": "minhash", "threshold": 0.7, "keep": "longest"}, [t])
    assert out.ids() == ["s:2", "s:3"]
    accounted([t], out, aside)
    ref = eng.table([row(9, base.title())])
    out, aside, _ = run_op(eng, "dedupe", {"method": "exact", "against": "ref"}, [t, ref])
    assert out.ids() == ["s:2", "s:3"] and aside[0] == ("s:0", "duplicate of reference row s:9 (exact)")
    out, aside, ctx = run_op(eng, "dedupe", {"method": "ngram", "against": "ref", "ngram": 13}, [t, ref])
    assert out.ids() == ["s:3"] and ctx.info["removed_against"] == 4 and aside[0] == (
        "s:0", 'shares 13 words in a row with reference row s:9 (ngram): "the quick brown fox jumps over the lazy '
               'dog near the river bank"')
    accounted([t], out, aside)
    # a multi-turn evaluation's later questions (MT-Bench's `turns`, the conversation holding
    # the first) are reference texts too: a pool row asking the second one was kept before
    second = "rewrite your previous answer so that every sentence starts with the letter a please"
    ref = eng.table([row(9, "something else entirely, not alike at all, really", turns=[
        "something else entirely, not alike at all, really", second])])
    pool = eng.table([row(0, second), row(1, second.upper() + "!"), row(2, "an unrelated question about the weather")])
    for method, extra, kept in (("exact", {}, ["s:1", "s:2"]), ("minhash", {"threshold": 0.7}, ["s:2"]),
                                ("ngram", {"ngram": 8}, ["s:2"])):
        out, aside, ctx = run_op(eng, "dedupe", {"method": method, "against": "ref", **extra}, [pool, ref])
        assert out.ids() == kept and aside[0][0] == "s:0" and "reference row s:9" in aside[0][1], (method, aside)
        assert ctx.info["reference_texts"] == 2
    # rows with an empty `on`: one text to exact dedupe, none to compare for MinHash; the
    # warning says which, and what happened to them
    t = eng.table([row(i, f"q{i}", response=["", "a b c d e f", " ", "", "x y z w v u"][i]) for i in range(5)])
    out, aside, ctx = run_op(eng, "dedupe", {"method": "exact", "on": "response"}, [t])
    assert out.ids() == ["s:0", "s:1", "s:4"]  # exact normalises whitespace away: s:2 is empty too
    assert ctx.info["warning"].startswith("3 rows have an empty `response`: they count as one text, and all but")
    out, aside, ctx = run_op(eng, "dedupe", {"method": "minhash", "on": "response"}, [t])
    assert out.ids() == ["s:0", "s:1", "s:2", "s:3", "s:4"]  # MinHash counts texts of length 0
    assert ctx.info["warning"].startswith("2 rows have an empty `response`: MinHash has nothing to compare in them")
    out, aside, ctx = run_op(eng, "dedupe", {"method": "exact"}, [t])
    assert "warning" not in ctx.info


def test_distinct_on_a_conversation_and_on_a_number(eng):
    """Exact dedupe of the whole conversation (every turn, normalised) and of a column that
    is not text (its value as text)."""
    t = eng.table([row(0, "Hi", "there"), row(1, "hi ", "There"), row(2, "hi", "there, friend"),
                   row(3, "HI", "THERE")])
    ctx = eng.context()
    assert ctx.out.distinct(t, "conversation", "first") == 2
    out, aside = eng.result(ctx)
    assert out.ids() == ["s:0", "s:2"]
    assert sorted(aside) == [("s:1", "duplicate of s:0 (exact on conversation)"),
                             ("s:3", "duplicate of s:0 (exact on conversation)")]
    t = eng.table([row(i, f"q{i}", n=v) for i, v in enumerate([3, 4, 3, None, None])])
    ctx = eng.context()
    assert ctx.out.distinct(t, "n", "first") == 3
    out, aside = eng.result(ctx)
    assert out.ids() == ["s:0", "s:1", "s:3"] and len(aside) == 2
    accounted([t], out, aside)


def test_near_duplicate_winners_by_keep(eng):
    """MinHash clusters keep one row each by `keep`: ties to the earlier row, a missing
    score never wins over a present one (min: and max: alike)."""
    base = "the quick brown fox jumps over the lazy dog near the river bank today"
    texts = [base, base + " again", "something else entirely, not alike at all", base + " once more", base]
    scores = [1.0, 3.0, 5.0, 3.0, None]
    t = eng.table([row(i, s, score=v) for i, (s, v) in enumerate(zip(texts, scores))])
    for keep, kept in (("first", ["s:0", "s:2"]), ("longest", ["s:2", "s:3"]), ("max:score", ["s:1", "s:2"]),
                       ("min:score", ["s:0", "s:2"])):
        out, aside, ctx = run_op(eng, "dedupe", {"method": "minhash", "threshold": 0.6, "keep": keep}, [t])
        assert sorted(out.ids()) == kept and ctx.info["clusters"] == 2, keep
        winner = next(i for i in kept if i != "s:2")
        assert sorted(aside) == sorted((i, f"duplicate of {winner} (minhash on instruction)")
                                       for i in ("s:0", "s:1", "s:3", "s:4") if i != winner), keep
        accounted([t], out, aside)


def test_select_sample_limit_ops(eng):
    t = eng.table([row(i, f"q{i}", q=float((i * 7) % 5), g="ab"[i % 2]) for i in range(10)])
    out, aside, ctx = run_op(eng, "select", {"method": "topk", "by": "q", "k": 3}, [t])
    assert out.ids() == ["s:2", "s:7", "s:4"]
    assert aside[0][1].startswith("topk: `q` = 0 ranks below the 3 kept rows")
    out, aside, _ = run_op(eng, "select", {"method": "quota", "by": "g", "per": 2, "order": "q"}, [t])
    assert out.ids() == ["s:2", "s:4", "s:7", "s:9"]
    accounted([t], out, aside)
    # numeric groups come out in their numbers' order (as text 10 came before 9), and k takes them so
    nt = eng.table([row(i, f"q{i}", d=[10, 9, 10.5, 9][i], q=float(i)) for i in range(4)])
    out, aside, _ = run_op(eng, "select", {"method": "quota", "by": "d", "per": 1, "order": "q", "k": 2}, [nt])
    assert out.ids() == ["s:3", "s:0"]
    assert dict(aside)["s:1"] == "quota: `d` = 9.0 already has its 1 rows with higher `q` (this row: 1)"
    # a list column (tags): the best `per` rows of each item; a row is kept while one of its
    # items has room and counts toward all of them; kept rows best first
    tags = [["a"], ["a", "b"], ["b"], ["a"], [], ["b", "c"], None, ["c"]]
    lt = eng.table([row(i, f"q{i}", q=float(10 - i), tags=tg) for i, tg in enumerate(tags)])
    out, aside, _ = run_op(eng, "select", {"method": "quota", "by": "tags", "per": 1, "order": "q"}, [lt])
    assert out.ids() == ["s:0", "s:1", "s:4", "s:5"]  # a; a+b (b has room); [] (null); b+c (c has room)
    assert dict(aside)["s:2"] == ('quota: every item of `tags` in this row (["b"]) already has its 1 rows '
                                  'with higher `q` (this row: 8)')
    assert dict(aside)["s:6"] == ('quota: the rows without any item of `tags` already have their 1 rows '
                                  'with higher `q` (this row: 4)')  # None: no items, as [] (kept)
    accounted([lt], out, aside)
    out, aside, _ = run_op(eng, "sample", {"n": 4, "seed": 1}, [t])
    assert out.count() == 4 and out.ids() == sorted(out.ids(), key=lambda s: int(s[2:]))
    out, aside, _ = run_op(eng, "limit", {"n": 2}, [t])
    assert out.ids() == ["s:0", "s:1"] and aside[0] == ("s:2", "limit: after the first 2 rows")


def test_a_token_budget_says_which_rows_it_passed_over(eng):
    """topk under budget_tokens takes rows in rank order while they fit: a row ranked above
    the last kept one that did not fit says so, not that it ranks below the kept rows."""
    words = [2, 30, 3, 3, 40]  # ranked s:4 (~41 tokens), s:0 (~3), s:1 (~31), s:2, s:3 (~4 each)
    t = eng.table([row(i, "q", response=" ".join(["w"] * w), q=float(10 - i if i != 4 else 20)) for i, w in enumerate(words)])
    out, aside, _ = run_op(eng, "select", {"method": "topk", "by": "q", "budget_tokens": 36}, [t])
    assert out.ids() == ["s:0", "s:1"]  # s:4 passed over, s:0 and s:1 fit (34), s:2 and s:3 no longer
    assert dict(aside)["s:4"] == "topk: its ~41 tokens did not fit what was left of budget_tokens=36 when its turn came"
    assert dict(aside)["s:2"].startswith("topk: its ~4 tokens did not fit")
    accounted([t], out, aside)
    out, aside, _ = run_op(eng, "select", {"method": "topk", "by": "q", "budget_tokens": 100, "k": 1}, [t])
    assert out.ids() == ["s:4"] and dict(aside)["s:1"].startswith("topk: `q` = 9 ranks below the 1 kept rows")


def test_join_adds_the_other_nodes_columns_by_key(eng):
    """Rows keep their order; the other node's columns come from its row with the same key
    (a repeated key: its first row, and a warning); inner sets a row without a match aside,
    left keeps it with nulls; a key of another type on one side still matches (as text)."""
    t = eng.table([row(i, f"q{i}", key=k) for i, k in enumerate(["a", "b", None, "c", "a"])])
    ann = eng.table([{**row(20 + i, "x"), "key": k, "label": lab, "n": n}
                     for i, (k, lab, n) in enumerate([("c", "good", 3), ("a", "bad", 1), ("a", "later", 9)])])
    out, aside, ctx = run_op(eng, "join", {"right": "ann", "on": "key"}, [t, ann])
    assert out.ids() == ["s:0", "s:3", "s:4"]
    assert [(r["label"], r["n"]) for r in rows_of(out)] == [("bad", 1), ("good", 3), ("bad", 1)]
    assert aside == [("s:1", "join: `ann` has no row with this `key`"), ("s:2", "join: `ann` has no row with this `key`")]
    assert ctx.info["matched"] == 3 and ctx.info["warning"].startswith("1 rows of `ann` repeat a key (`key`)")
    accounted([t], out, aside)
    out, aside, _ = run_op(eng, "join", {"right": "ann", "on": "key", "how": "left", "columns": ["n"]}, [t, ann])
    assert [r.get("n") for r in rows_of(out)] == [1, None, None, 3, 1] and "label" not in out.columns()
    assert aside == []
    by_id = eng.table([{**row(0, "x"), "score": 0.5}, {**row(3, "y"), "score": 0.25}])  # on `_id` (default)
    out, aside, _ = run_op(eng, "join", {"right": "scored"}, [t, by_id])
    assert out.ids() == ["s:0", "s:3"] and [r["score"] for r in rows_of(out)] == [0.5, 0.25]
    assert "key" in out.columns() and out.columns().count("instruction") == 1  # the row's own text kept
    nums = eng.table([{**row(30 + i, "z"), "key": k, "w": w} for i, (k, w) in enumerate([(2, "two"), (7, "seven")])])
    t2 = eng.table([row(i, f"q{i}", key=k) for i, k in enumerate(["7", "1", "2"])])
    out, aside, _ = run_op(eng, "join", {"right": "nums", "on": "key"}, [t2, nums])
    assert [r["w"] for r in rows_of(out)] == ["seven", "two"] and [a for a, _ in aside] == ["s:1"]
    only = eng.table([row(0, "x")])  # nothing to add: the rows with a match, unchanged
    out, aside, _ = run_op(eng, "join", {"right": "only"}, [t, only])
    assert out.ids() == ["s:0"] and len(aside) == 4
    other = eng.table([{**row(40, "x"), "key": "zz", "label": "l"}])  # no key matches: said, not just nulls
    out, aside, ctx = run_op(eng, "join", {"right": "other", "on": "key", "how": "left"}, [t, other])
    assert ctx.info["warning"] == "no row matched a row of `other` on `key` (e.g. 'a' here, 'zz' there)"
    assert ctx.info["matched"] == 0 and len(out.ids()) == 5


def test_an_anti_join_keeps_the_rows_the_other_node_lacks(eng):
    """how="anti" is the complement of inner: the rows whose key the other node lacks (a null
    key matches nothing, so it stays), in order, nothing added; the others are set aside."""
    t = eng.table([row(i, f"q{i}", key=k) for i, k in enumerate(["a", "b", None, "c", "a"])])
    ann = eng.table([{**row(20 + i, "x"), "key": k, "label": "l"} for i, k in enumerate(["c", "a", "a"])])
    inner, _, _ = run_op(eng, "join", {"right": "ann", "on": "key"}, [t, ann])
    out, aside, ctx = run_op(eng, "join", {"right": "ann", "on": "key", "how": "anti"}, [t, ann])
    assert out.ids() == ["s:1", "s:2"] and sorted(out.ids() + inner.ids()) == t.ids()
    assert out.columns() == t.columns() and "label" not in out.columns()
    assert aside == [(i, "join(anti): `ann` has a row with this `key`") for i in ("s:0", "s:3", "s:4")]
    assert ctx.info["matched"] == 3 and "warning" not in ctx.info
    accounted([t], out, aside)
    held = eng.table([row(1, "x"), row(3, "y")])  # on `_id` (default): a held-out split
    out, aside, _ = run_op(eng, "join", {"right": "train", "how": "anti"}, [t, held])
    assert out.ids() == ["s:0", "s:2", "s:4"] and [a for a, _ in aside] == ["s:1", "s:3"]
    other = eng.table([{**row(40, "x"), "key": "zz"}])  # nothing matches: said, since nothing is held out
    out, aside, ctx = run_op(eng, "join", {"right": "other", "on": "key", "how": "anti"}, [t, other])
    assert out.ids() == t.ids() and ctx.info["warning"].startswith("no row matched a row of `other` on `key`")


def test_union_mix_score_ops(eng):
    a = eng.table([row(i, f"a{i}") for i in range(4)])
    b = eng.table([row(10 + i, f"b{i}", response="x" * i) for i in range(4)])
    out, aside, _ = run_op(eng, "union", {}, [a, b])
    assert out.count() == 8 and aside == []
    out, aside, ctx = run_op(eng, "mix", {"weights": [1.0, 1.0], "k": 4, "seed": 0}, [a, b])
    assert out.count() == 4 and ctx.info["drawn"] == [2, 2]
    accounted([a, b], out, aside)
    out, _, ctx = run_op(eng, "score", {"metric": "length", "on": "response"}, [b])
    assert out.column("length") == [0.0, 1.0, 2.0, 3.0] and ctx.info["length"]["max"] == 3.0
    out, _, _ = run_op(eng, "score", {"metric": "expr", "expr": Binary("/", Call("length", (Column("instruction"),)), Lit(2)),
                                      "column": "half"}, [b])
    assert out.column("half") == [1.0, 1.0, 1.0, 1.0]


def test_select_partitioned_is_greedi_on_any_engine(eng):
    import json
    import numpy as np
    from recipe.algorithms.greedi import greedi
    rng = np.random.default_rng(3)
    vecs = (rng.normal(size=(6, 8))[rng.integers(0, 6, 40)] + 0.3 * rng.normal(size=(40, 8))).round(4)
    t = eng.table([row(i, f"q{i}", vec=vecs[i].tolist()) for i in range(40)])
    out, aside, ctx = run_op(eng, "select", {"method": "facility_location", "k": 6, "mode": "partitioned",
                                             "parts": 3, "embedding_column": "vec"}, [t])
    want, facts = greedi(np.asarray([json.loads(v) if isinstance(v, str) else v for v in t.column("vec")]), 6, 3)
    assert out.ids() == [f"s:{i}" for i in want]
    assert ctx.info["greedi"]["parts"] == 3 and ctx.info["greedi"]["won"] == facts["won"]
    accounted([t], out, aside)


def test_a_second_warning_joins_the_first(eng):
    # a step had one warning slot: a second warning replaced the first without a word
    ctx = eng.context()
    ctx.warn("first")
    ctx.warn("second")
    assert ctx.info["warning"] == "first; second"

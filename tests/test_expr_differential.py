"""Row expressions: DuckDB's results equal a small pure-Python reference evaluator's, on
generated well-typed expressions and generated rows (nulls included).

The reference states the semantics the docs promise: SQL null logic, a zero divisor or a
logarithm/square root outside its domain gives null, `/` is true division, `%` takes the
dividend's sign, round() rounds half away from zero, least/greatest skip nulls, concat
reads null as empty text, words() counts runs of non-space characters and trim() strips
whitespace (Python's: no-break and ideographic spaces too), regexp_replace replaces every
match, and the text statistics (lines, max_line_length, alpha_ratio, digit_ratio,
char_repetition, word_repetition) are what their Python definitions here say."""
import functools
import hashlib
import math
import re
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from recipe.engine.sql import register_functions, to_sql
from recipe.ir import Binary, Call, Column, Lit, Unary
from recipe.types import expr_type

COLS = {"i": "int", "f": "float", "s": "str", "b": "bool"}
SCHEMA = pa.schema([("i", pa.int64()), ("f", pa.float64()), ("s", pa.string()), ("b", pa.bool_())])
TEXT = st.text(alphabet="abcXYZ é\t\n\v\xa0\u30001\u0663\U0001f600", max_size=6)
PATTERNS = ["a", "[bc]+", " +", "X|é", "^a", "c$", "1", "(b)(c)?"]  # the same in RE2 and Python's re


def ref(e, row):
    """The reference evaluator."""
    if isinstance(e, Lit):
        return e.value
    if isinstance(e, Column):
        return row[e.name]
    if isinstance(e, Unary):
        v = ref(e.operand, row)
        if v is None:
            return None
        return (not v) if e.op == "not" else -v
    if isinstance(e, Binary):
        if e.op in ("and", "or"):
            a, b = ref(e.left, row), ref(e.right, row)
            if e.op == "and":
                return False if a is False or b is False else (None if a is None or b is None else True)
            return True if a is True or b is True else (None if a is None or b is None else False)
        a, b = ref(e.left, row), ref(e.right, row)
        if a is None or b is None:
            return None
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        if e.op == "/":
            return None if b == 0 else a / b
        if e.op == "%":
            if b == 0:
                return None
            if isinstance(a, int) and isinstance(b, int):
                return int(math.copysign(abs(a) % abs(b), a)) if a else 0
            return math.fmod(a, b)
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[e.op]
    args = [ref(a, row) for a in e.args]
    fn = e.fn
    if fn == "coalesce":
        return next((a for a in args if a is not None), None)
    if fn in ("least", "greatest"):
        vals = [a for a in args if a is not None]
        return (min if fn == "least" else max)(vals) if vals else None
    if fn == "concat":
        return "".join(a for a in args if a is not None)
    if fn == "is_null":
        return args[0] is None
    if fn == "number":
        return number(args[0])
    if fn == "text":
        a = args[0]
        return None if a is None else ("true" if a else "false") if isinstance(a, bool) else a if isinstance(a, str) else repr(a)
    if fn == "bucket":  # the first 60 bits of the MD5 of the value's text, mod n (n < 1: null)
        t, n = ref(Call("text", e.args[:1]), row), args[1]
        if t is None or n is None or n < 1:
            return None
        return int(hashlib.md5(t.encode("utf-8")).hexdigest()[:15], 16) % n
    if any(a is None for a in args):
        return None
    a = args[0]
    if fn == "length":
        return len(a)
    if fn == "words":
        return len(a.split())
    if fn == "lower":
        return a.lower()
    if fn == "upper":
        return a.upper()
    if fn == "trim":
        return a.strip()
    if fn == "regexp_replace":
        return re.sub(args[1], args[2], a)
    if fn == "regexp_matches":
        return re.search(args[1], a) is not None
    if fn == "regexp_extract":  # the first match's group; empty text for no match or a group that did not take part
        m = re.search(args[1], a)
        return "" if m is None else (m.group(args[2] if len(args) > 2 else 0) or "")
    if fn == "lines":
        return 0 if a == "" else a.count("\n") + 1 - a.endswith("\n")
    if fn == "max_line_length":
        return max(len(line) for line in a.split("\n"))
    if fn in ("alpha_ratio", "digit_ratio"):
        test = str.isalpha if fn == "alpha_ratio" else str.isdecimal
        return sum(map(test, a)) / len(a) if a else None
    if fn in ("char_repetition", "word_repetition"):
        n = args[1]
        units = a if fn == "char_repetition" else a.split()
        if n < 1:
            return None
        windows = [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]
        return 1 - len(set(windows)) / len(windows) if windows else 0.0
    if fn == "contains":
        return args[1] in a
    if fn == "starts_with":
        return a.startswith(args[1])
    if fn == "ends_with":
        return a.endswith(args[1])
    if fn == "abs":
        return abs(a)
    if fn == "round":
        digits = args[1] if len(args) > 1 else 0
        return float(Decimal(repr(float(a))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    if fn == "log":
        return math.log(a) if a > 0 else None
    if fn == "sqrt":
        return math.sqrt(a) if a >= 0 else None
    raise AssertionError(fn)


def number(v):
    """number(): a number as it is; a text's number where the whole text (ASCII whitespace
    around it allowed) is one, as Python's float() reads it; else null."""
    if v is None or isinstance(v, (int, float)):
        return None if v is None else float(v)
    s = v.strip(" \t\n\v\f\r")
    try:
        return float(s) if s.isascii() else None
    except ValueError:
        return None


# ---- typed expression generator -----------------------------------------------------------

def lit(t):
    return {"int": st.integers(-40, 40), "float": st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 3)),
            "str": TEXT, "bool": st.booleans()}[t].map(Lit)


def leaf(t):
    return st.one_of(lit(t), st.just(Column(next(c for c, ct in COLS.items() if ct == t))), st.just(Lit(None)))


@functools.lru_cache(maxsize=None)  # each (type, depth) strategy is built once
def typed(t, depth):
    if depth == 0:
        return leaf(t)
    sub = lambda u: typed(u, depth - 1)  # noqa: E731
    num = st.sampled_from(["int", "float"])
    options = [leaf(t)]
    if t == "int":
        options += [
            st.tuples(st.sampled_from(["+", "-", "*", "%"]), sub("int"), sub("int")).map(lambda x: Binary(*x)),
            sub("int").map(lambda a: Unary("-", a)),
            st.tuples(st.sampled_from(["length", "words", "lines", "max_line_length"]), sub("str")).map(
                lambda x: Call(x[0], (x[1],))),
            sub("int").map(lambda a: Call("abs", (a,))),
            st.tuples(st.sampled_from(["str", "int", "float", "bool"]).flatmap(sub),
                      st.one_of(st.integers(-1, 7).map(Lit), sub("int"))).map(lambda x: Call("bucket", x)),
            st.tuples(st.sampled_from(["least", "greatest", "coalesce"]), sub("int"), sub("int")).map(
                lambda x: Call(x[0], (x[1], x[2])))]
    elif t == "float":
        options += [
            st.tuples(st.sampled_from(["+", "-", "*", "/", "%"]), sub("float"), num.flatmap(sub)).map(lambda x: Binary(*x)),
            st.tuples(num.flatmap(sub), num.flatmap(sub)).map(lambda x: Binary("/", *x)),
            st.tuples(st.sampled_from(["log", "sqrt"]), num.flatmap(sub)).map(lambda x: Call(x[0], (x[1],))),
            st.tuples(num.flatmap(sub), st.integers(0, 2)).map(lambda x: Call("round", (x[0], Lit(x[1])))),
            sub("float").map(lambda a: Call("abs", (a,))),
            st.tuples(st.sampled_from(["alpha_ratio", "digit_ratio"]), sub("str")).map(lambda x: Call(x[0], (x[1],))),
            st.sampled_from(["str", "int", "float"]).flatmap(sub).map(lambda a: Call("number", (a,))),
            st.tuples(st.sampled_from(["char_repetition", "word_repetition"]), sub("str"),
                      st.one_of(st.integers(-1, 4).map(Lit), sub("int"))).map(lambda x: Call(x[0], (x[1], x[2])))]
    elif t == "str":
        options += [
            st.tuples(st.sampled_from(["lower", "upper", "trim"]), sub("str")).map(lambda x: Call(x[0], (x[1],))),
            st.lists(sub("str"), min_size=2, max_size=3).map(lambda xs: Call("concat", tuple(xs))),
            st.tuples(sub("str"), sub("str")).map(lambda x: Call("coalesce", x)),
            st.tuples(sub("str"), st.sampled_from(PATTERNS).map(Lit), sub("str")).map(lambda x: Call("regexp_replace", x)),
            st.tuples(sub("str"), st.sampled_from(PATTERNS).map(Lit)).map(lambda x: Call("regexp_extract", x)),
            st.sampled_from(["int", "float", "bool"]).flatmap(sub).map(lambda a: Call("text", (a,)))]
    else:
        cmp = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
        options += [
            st.tuples(cmp, num.flatmap(sub), num.flatmap(sub)).map(lambda x: Binary(*x)),
            st.tuples(cmp, sub("str"), sub("str")).map(lambda x: Binary(*x)),
            st.tuples(st.sampled_from(["and", "or"]), sub("bool"), sub("bool")).map(lambda x: Binary(*x)),
            sub("bool").map(lambda a: Unary("not", a)),
            st.tuples(st.sampled_from(["contains", "starts_with", "ends_with"]), sub("str"), sub("str")).map(
                lambda x: Call(x[0], (x[1], x[2]))),
            st.sampled_from(sorted(COLS.values())).flatmap(sub).map(lambda a: Call("is_null", (a,))),
            st.tuples(sub("str"), st.sampled_from(PATTERNS).map(Lit)).map(lambda x: Call("regexp_matches", x))]
    return st.one_of(options)


ROWS = st.lists(st.fixed_dictionaries({
    "i": st.one_of(st.none(), st.integers(-30, 30)),
    "f": st.one_of(st.none(), st.floats(-40, 40, allow_nan=False).map(lambda x: round(x, 2))),
    "s": st.one_of(st.none(), TEXT),
    "b": st.one_of(st.none(), st.booleans())}), min_size=1, max_size=6)


def _connect():
    """A connection as the engines make them: with the compiled functions registered."""
    con = duckdb.connect()
    register_functions(con)
    return con


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=st.sampled_from(["int", "float", "str", "bool"]), data=st.data(), rows=ROWS)
def test_duckdb_agrees_with_the_reference(t, data, rows):
    e = data.draw(typed(t, 3))
    got_type, issues = expr_type(e, COLS, {})
    assert not issues, issues  # the generator makes only well-typed expressions
    sql, binds = to_sql(e, {})
    con = _connect()
    con.register("t", pa.Table.from_pylist(rows, schema=SCHEMA))
    got = [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
    want = [ref(e, r) for r in rows]
    for g, w, r in zip(got, want, rows):
        assert _same(g, w), f"{e}\n{sql}\nrow {r}: duckdb {g!r}, reference {w!r}"


def test_checker_types_match_what_duckdb_returns():
    """The checker's type for an expression is the type DuckDB gives it."""
    con = _connect()
    cases = {"length(s)": "BIGINT", "i / i": "DOUBLE", "i + 1": "BIGINT", "f * 2": "DOUBLE",
             "concat(s, 'x')": "VARCHAR", "i > 1 and b": "BOOLEAN", "round(f, 1)": "DOUBLE",
             "lines(s)": "BIGINT", "max_line_length(s)": "BIGINT", "alpha_ratio(s)": "DOUBLE",
             "digit_ratio(s)": "DOUBLE", "char_repetition(s, 3)": "DOUBLE", "word_repetition(s, i)": "DOUBLE",
             "number(s)": "DOUBLE", "text(f)": "VARCHAR", "bucket(s, 10)": "BIGINT", "bucket(f, i)": "BIGINT", "i * 2": "BIGINT", "-i": "BIGINT", "abs(i)": "BIGINT"}
    from recipe.frontend import parse_text
    names = {"BIGINT": "int", "DOUBLE": "float", "VARCHAR": "str", "BOOLEAN": "bool"}
    for text, sqltype in cases.items():
        r = parse_text(f'recipe t\nsource raw = read("x.jsonl")\nx = raw | derive(v={text})\nwrite x to "x.jsonl"\n', "t")
        e = r.nodes[0].ops[0].args[0].value
        sql, binds = to_sql(e, {})
        con.register("t", pa.Table.from_pylist([{"i": 1, "f": 1.0, "s": "a", "b": True}], schema=SCHEMA))
        assert con.execute(f"SELECT typeof({sql}) FROM t", binds).fetchall()[0][0] == sqltype, text
        assert expr_type(e, COLS, {})[0] == names[sqltype], text


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet="abcXYZ é\t\n\v\xa0\u3000\U0001f600", max_size=12), min_size=1, max_size=8),
       pattern=st.sampled_from(PATTERNS), size=st.integers(0, 4),
       fn=st.sampled_from(["regexp_replace", "regexp_matches", "regexp_extract", "words", "trim", "char_repetition",
                           "word_repetition"]))
def test_text_functions_agree_with_the_reference_on_longer_texts(texts, pattern, size, fn):
    """Texts long enough to hold several matches, whitespace runs and repeated windows (the
    typed generator's short texts rarely do): regexp_replace replaces every match, words and
    trim know Python's whitespace, the repetition functions (compiled, registered on the
    connection) count windows as the reference does."""
    args = {"regexp_replace": (Column("s"), Lit(pattern), Lit("-")), "regexp_matches": (Column("s"), Lit(pattern)),
            "char_repetition": (Column("s"), Lit(size)), "word_repetition": (Column("s"), Lit(size)),
            # group 2 of (b)(c)? is empty text where the c is not there
            "regexp_extract": (Column("s"), Lit(pattern)) + ((Lit(min(size, 2)),) if pattern == "(b)(c)?" else ())}
    e = Call(fn, args.get(fn, (Column("s"),)))
    sql, binds = to_sql(e, {})
    rows = [{"i": None, "f": None, "s": t, "b": None} for t in texts]
    con = _connect()
    con.register("t", pa.Table.from_pylist(rows, schema=SCHEMA))
    got = [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
    assert got == [ref(e, r) for r in rows], sql


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(alphabet="0123456789.-+eE _x\t\xa0", max_size=8), min_size=1, max_size=8))
def test_number_reads_what_python_float_reads(texts):
    sql, binds = to_sql(Call("number", (Column("s"),)), {})
    rows = [{"i": None, "f": None, "s": t, "b": None} for t in texts]
    con = _connect()
    con.register("t", pa.Table.from_pylist(rows, schema=SCHEMA))
    got = [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
    assert got == [number(t) for t in texts]


def test_integer_arithmetic_beyond_64_bits_is_null_not_an_error():
    big = 2 ** 62
    con = _connect()
    con.register("t", pa.Table.from_pylist([{"i": big, "f": None, "s": None, "b": None},
                                            {"i": -2 ** 63, "f": None, "s": None, "b": None}], schema=SCHEMA))
    for e, want in [(Binary("*", Column("i"), Lit(4)), [None, None]), (Binary("+", Column("i"), Column("i")), [None, None]),
                    (Binary("-", Column("i"), Lit(1)), [big - 1, None]), (Unary("-", Column("i")), [-big, None]),
                    (Call("abs", (Column("i"),)), [big, None])]:
        sql, binds = to_sql(e, {})
        assert [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()] == want, e


def test_a_text_column_where_a_number_is_needed_is_read_as_numbers():
    """A column the read widened to text (its first rows held numbers, a later one text):
    arithmetic and comparisons with numbers read its numbers, null where a value is not one."""
    con = _connect()
    con.register("t", pa.Table.from_pylist([{"i": 1, "f": None, "s": "3", "b": None},
                                            {"i": 1, "f": None, "s": "x", "b": None}], schema=SCHEMA))
    types = {"i": "int", "f": "float", "s": "str", "b": "bool"}
    for e, want in [(Binary(">", Column("s"), Lit(2)), [True, None]), (Binary("<", Column("i"), Column("s")), [True, None]),
                    (Binary("+", Column("s"), Lit(1)), [4.0, None]), (Call("sqrt", (Column("s"),)), [3 ** 0.5, None]),
                    (Binary("==", Column("s"), Lit("x")), [False, True])]:
        sql, binds = to_sql(e, {}, types)
        assert [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()] == want, e


def test_bucket_is_pinned_to_md5_of_the_text():
    """bucket() is a promise across versions and engines (a held-out split must stay put):
    the first 60 bits of the MD5 of the value's text, mod n, pinned here by value."""
    con = _connect()
    rows = [{"i": 7, "f": 1.5, "s": "hello", "b": True}, {"i": -3, "f": None, "s": "héllo wörld", "b": False}]
    con.register("t", pa.Table.from_pylist(rows, schema=SCHEMA))
    from recipe.frontend import parse_text
    got = {}
    for text in ("bucket(s, 1000)", "bucket(i, 1000)", "bucket(f, 97)", "bucket(b, 1000)", "bucket(s, 0)", "bucket(s, i)"):
        r = parse_text(f'recipe t\nsource raw = read("x.jsonl")\nx = raw | derive(v={text})\nwrite x to "x.jsonl"\n', "t")
        e = r.nodes[0].ops[0].args[0].value
        sql, binds = to_sql(e, {})
        got[text] = [v for (v,) in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
        assert got[text] == [ref(e, row) for row in rows], text
    # md5("hello") = 5d41402abc4b2a76b9719d911017c592: 0x5d41402abc4b2a7 = 419982666956583591
    assert got["bucket(s, 1000)"][0] == 591 and got["bucket(s, 0)"] == [None, None]
    assert got["bucket(i, 1000)"] == [int(hashlib.md5(b"7").hexdigest()[:15], 16) % 1000,
                                      int(hashlib.md5(b"-3").hexdigest()[:15], 16) % 1000]
    assert got["bucket(b, 1000)"][0] == int(hashlib.md5(b"true").hexdigest()[:15], 16) % 1000
    assert got["bucket(s, i)"][1] is None  # n < 1


@pytest.mark.parametrize("pattern,group", [("a", None), ("[bc]+", None), (" +", 0), ("(b)(c)?", 1), ("(b)(c)?", 2),
                                           ("^([a-z]+)", 1), ("X|é", None)])
def test_regexp_extract_gives_the_first_match_or_its_group(pattern, group):
    texts = ["abcbc", "xab", "Write a poem", "é  X", "", "bbc b", "no match here?"]
    e = Call("regexp_extract", (Column("s"), Lit(pattern)) + (() if group is None else (Lit(group),)))
    sql, binds = to_sql(e, {})
    rows = [{"i": None, "f": None, "s": t, "b": None} for t in texts] + [{"i": None, "f": None, "s": None, "b": None}]
    con = _connect()
    con.register("t", pa.Table.from_pylist(rows, schema=SCHEMA))
    got = [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
    assert got == [ref(e, r) for r in rows]
    assert got[-1] is None and any(got[:-1])  # null stays null; something matched


ITEMS = st.one_of(st.none(), st.sampled_from(["a", "b", "é", "", "a b"]))


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({
    "l": st.one_of(st.none(), st.lists(ITEMS, max_size=4), st.just("not a list")), "s": ITEMS,
    "i": st.one_of(st.none(), st.integers(-6, 6))}), min_size=1, max_size=6), stored=st.sampled_from(["list", "json"]))
def test_list_items_and_membership_agree_with_the_reference(rows, stored):
    """has(l, s) and item(l, n) on a list column, and on a JSON column (a union of a list and
    other values), whose arrays are lists and whose other values are no list (null)."""
    import json
    if stored == "list":
        rows = [{**r, "l": None if isinstance(r["l"], str) else r["l"]} for r in rows]
    con = _connect()
    schema = pa.schema([("l", pa.list_(pa.string()) if stored == "list" else pa.string()), ("s", pa.string()),
                        ("i", pa.int64())])
    data = rows if stored == "list" else [{**r, "l": json.dumps(r["l"])} for r in rows]
    con.register("raw", pa.Table.from_pylist(data, schema=schema))
    con.execute("CREATE TABLE t AS SELECT " + ("l" if stored == "list" else "CAST(l AS JSON) AS l") + ", s, i FROM raw")
    types = {"l": "any" if stored == "list" else "json", "s": "str", "i": "int"}

    def item(lst, n):
        if not isinstance(lst, list) or n is None or n == 0 or not -len(lst) <= n <= len(lst):
            return None
        return lst[n - 1] if n > 0 else lst[n]
    for e, want in ((Call("has", (Column("l"), Column("s"))),
                     lambda r: None if not isinstance(r["l"], list) or r["s"] is None else r["s"] in r["l"]),
                    (Call("item", (Column("l"), Column("i"))), lambda r: item(r["l"], r["i"]))):
        sql, binds = to_sql(e, {}, types)
        got = [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
        assert got == [want(r) for r in rows], (e, sql)


def test_a_list_function_reads_no_list_from_a_text_column():
    # `check` lets an open column (type unknown before the run) be a list; one that holds text
    # at run time is no list: null, not the text's characters (DuckDB indexes text too)
    con = _connect()
    con.register("t", pa.table({"l": ["abc"]}))
    for fn, arg in (("item", Lit(1)), ("has", Lit("a"))):
        sql, binds = to_sql(Call(fn, (Column("l"), arg)), {}, {"l": "str"})
        assert con.execute(f"SELECT {sql} FROM t", binds).fetchall() == [(None,)]


def test_list_functions_types_are_what_duckdb_returns():
    con = _connect()
    con.register("t", pa.table({"l": pa.array([["a"]], pa.list_(pa.string())), "s": ["a"], "i": [1]}))
    for e, sqltype, lang in ((Call("has", (Column("l"), Column("s"))), "BOOLEAN", "bool"),
                             (Call("item", (Column("l"), Column("i"))), "VARCHAR", "str")):
        sql, binds = to_sql(e, {}, {"l": "any", "s": "str", "i": "int"})
        assert con.execute(f"SELECT typeof({sql}) FROM t", binds).fetchall()[0][0] == sqltype
        assert expr_type(e, {"l": "list", "s": "str", "i": "int"}, {})[0] == lang


def _interleave(a, b):
    a, b = (x if isinstance(x, list) else [] for x in (a, b))
    return [x for i in range(max(len(a), len(b))) for x in (a[i] if i < len(a) else None, b[i] if i < len(b) else None)]


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({
    "l": st.one_of(st.none(), st.lists(ITEMS, max_size=4)), "m": st.one_of(st.none(), st.lists(ITEMS, max_size=4)),
    "i": st.one_of(st.none(), st.integers(-5, 5))}), min_size=1, max_size=6), stored=st.sampled_from(["list", "json"]))
def test_interleave_and_list_items_in_nested_values_agree_with_the_reference(rows, stored):
    """interleave(l, m), and has/item/num_tags/interleave of a dotted name's field that holds a
    list (`o.x.1.t`: item 1 of the list `x`, then its `t`), against Python."""
    import json

    from recipe.syntax import field_path
    con = _connect()
    objs = [json.dumps({"x": [{"t": r["m"]}, {"t": "other"}]}) for r in rows]
    schema = pa.schema([("l", pa.list_(pa.string()) if stored == "list" else pa.string()),
                        ("m", pa.list_(pa.string()) if stored == "list" else pa.string()),
                        ("o", pa.string()), ("i", pa.int64())])
    data = [{**r, "o": o} | ({} if stored == "list" else {"l": json.dumps(r["l"]), "m": json.dumps(r["m"])})
            for r, o in zip(rows, objs)]
    con.register("raw", pa.Table.from_pylist(data, schema=schema))
    cast = "" if stored == "list" else " AS JSON"
    con.execute(f"CREATE TABLE t AS SELECT CAST(l{cast or ' AS VARCHAR[]'}) AS l, CAST(m{cast or ' AS VARCHAR[]'}) AS m, "
                "CAST(o AS JSON) AS o, i FROM raw")
    types = {"l": "any" if stored == "list" else "json", "m": "any" if stored == "list" else "json",
             "o": "json", "i": "int"}
    assert field_path("o.x.1.t", types) == ("o", ("x", "1", "t"))
    field = Column("o.x.1.t")

    def item(lst, n):
        if not isinstance(lst, list) or n is None or n == 0 or not -len(lst) <= n <= len(lst):
            return None
        return lst[n - 1] if n > 0 else lst[n]
    for e, want in ((Call("interleave", (Column("l"), Column("m"))), lambda r: _interleave(r["l"], r["m"])),
                    (Call("interleave", (Column("l"), field)), lambda r: _interleave(r["l"], r["m"])),
                    (Call("item", (field, Column("i"))), lambda r: item(r["m"], r["i"])),
                    (Call("has", (field, Lit("a"))), lambda r: None if r["m"] is None else "a" in r["m"]),
                    (Call("num_tags", (field,)), lambda r: None if r["m"] is None else len(r["m"])),
                    (Call("item", (Call("interleave", (field, Column("l"))), Column("i"))),
                     lambda r: item(_interleave(r["m"], r["l"]), r["i"]))):
        sql, binds = to_sql(e, {}, types)
        got = [r[0] for r in con.execute(f"SELECT {sql} FROM t", binds).fetchall()]
        assert got == [want(r) for r in rows], (e, sql)


@settings(max_examples=100, deadline=None)
@given(lists=st.lists(st.one_of(st.none(), st.lists(ITEMS, max_size=5)), min_size=1, max_size=6))
def test_a_conversation_made_from_a_list_takes_turns_and_leaves_out_trailing_nulls(lists):
    from recipe.engine.sql import conversation_sql
    con = _connect()
    con.register("t", pa.table({"l": pa.array(lists, pa.list_(pa.string()))}))
    messages, instruction, response = conversation_sql("l")
    got = con.execute(f"SELECT {messages}, {instruction}, {response} FROM t").fetchall()
    for lst, (m, ins, resp) in zip(lists, got):
        lst = list(lst or [])
        while lst and lst[-1] is None:
            lst.pop()
        assert m == [{"role": "user" if i % 2 == 0 else "assistant", "content": x or ""} for i, x in enumerate(lst)]
        assert (ins, resp) == ((lst[0] or "") if lst else "", (lst[1] or "") if len(lst) > 1 else "")

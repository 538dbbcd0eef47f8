"""Property-based tests: no input makes the compiler crash, and translated expressions stay
inside the whitelist."""
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from recipe.diagnostics import Diagnostic, RecipeError
from recipe.engine import sql as sql_module
from recipe.engine.sql import to_sql
from recipe.syntax import FUNCTIONS
from recipe.frontend import parse_text, parse_yaml
from recipe.check import check

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [p.read_text() for p in sorted((ROOT / "stdlib_recipes").glob("*.recipe"))] + \
        [p.read_text() for p in sorted((ROOT / "examples").glob("*.recipe"))]
ALPHABET = st.sampled_from(list("()[]|=,.\"'#:+-*/<>! \n\tabcdefxyz0123456789_") + ["and", "or", "not", "filter", "${k}"])


def _compile_or_diagnose(text: str, parse):
    try:
        r = parse(text, "fuzz.recipe")
    except RecipeError as e:
        assert e.diagnostics and all(isinstance(d, Diagnostic) for d in e.diagnostics)
        return
    c = check(r)
    assert all(isinstance(d, Diagnostic) for d in c.diagnostics)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_mutated_recipes_give_recipe_or_diagnostics(seed, data):
    n = len(seed)
    i = data.draw(st.integers(0, n))
    j = data.draw(st.integers(i, min(n, i + 12)))
    ins = data.draw(st.lists(ALPHABET, max_size=6).map("".join))
    _compile_or_diagnose(seed[:i] + ins + seed[j:], parse_text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_and_yaml(text):
    _compile_or_diagnose(text, parse_text)
    _compile_or_diagnose(text, parse_yaml)


# ---- expressions: generated trees translate to SQL made only of whitelisted parts ----------

NAMES = st.sampled_from(["instruction", "response", "score", "x'; DROP TABLE t; --", 'a"b'])
LITS = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False, width=32),
                 st.text(max_size=10), st.booleans())


def exprs():
    from recipe.ir import Binary, Call, Column, Lit, Unary
    leaf = st.one_of(NAMES.map(Column), LITS.map(Lit))
    ops = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
    return st.recursive(leaf, lambda kids: st.one_of(
        st.tuples(st.sampled_from(ops), kids, kids).map(lambda t: Binary(*t)),
        st.tuples(st.sampled_from(["not", "-"]), kids).map(lambda t: Unary(*t)),
        st.tuples(st.sampled_from(sorted(FUNCTIONS)), st.lists(kids, min_size=3, max_size=3)).map(
            lambda t: Call(t[0], tuple(t[1][:FUNCTIONS[t[0]].min_args])))), max_leaves=10)


SQL_FUNCS = {f.sql for f in FUNCTIONS.values()} | {"NULLIF", "len", "regexp_extract_all", "regexp_replace", "CAST",
                                                  "AS", "BIGINT", "DOUBLE", "INTEGER", "VARCHAR", "BOOLEAN", "CASE", "WHEN", "THEN",
                                                  "ELSE", "END", "list_transform", "list_distinct", "list_max", "range", "substr",
                                                  "array_to_string", "string_split", "replace", "chr", "ends_with", "length", "TRY", "TRY_CAST",
                                                  "left", "md5", "list_contains", "list_extract"}
LAMBDA_PARAMS = re.compile(r"__(a\d+|i|l|w)$")  # the translation's own lambda parameters
FIXED_LITERALS = set(sql_module.FIXED_LITERALS)  # the fixed patterns of words(), trim(), the ratios
TOKEN = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|\?|->|[A-Za-z_][A-Za-z0-9_]*|\S')
KEYWORDS = {"AND", "OR", "NOT", "NULL", "IS"}


@settings(max_examples=300, deadline=None)
@given(exprs())
def test_translated_sql_uses_only_whitelisted_tokens(e):
    sql, binds = to_sql(e, {})
    for tok in TOKEN.findall(sql):
        if tok.startswith('"'):
            continue  # a quoted identifier: a column name, quotes doubled
        if tok in FIXED_LITERALS:
            continue
        assert tok.startswith("'") is False, f"string literal pasted into SQL: {sql}"
        if tok[0].isalpha() or tok[0] == "_":
            assert tok in SQL_FUNCS or tok.upper() in KEYWORDS or LAMBDA_PARAMS.match(tok), f"unexpected word {tok!r} in {sql}"
        elif tok not in ("0", "1", "2", "4", "5", "->"):  # digits of fixed numbers: NULLIF(divisor, 0), list indexes,
            # chr(10), bucket's 15 hex digits, round's digits clamped to 400 (one token a digit)
            assert tok in "()+-*/%=<>!,?[]:", f"unexpected token {tok!r} in {sql}"
    # every literal travels as a bound parameter
    assert sql.count("?") == len(binds)

"""The recipe fuzzer: well-formed recipes over columns of random types, with random operators,
arguments and expressions (well-typed or not). Each must end in a diagnostic from `check`,
or in a clean run: never in a failure that `check` could have found, never in an internal
exception's text."""
import json
import os

from hypothesis import HealthCheck, event, given, settings, strategies as st

from recipe.api import load
from recipe.diagnostics import RecipeError, UserError
from recipe.frontend import parse_yaml
from recipe.frontend.printer import to_yaml

TYPES = {"int": st.integers(-5, 50), "float": st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 2)),
         "str": st.text(alphabet="ab cd\u00e9", max_size=8), "bool": st.booleans(),
         "list": st.lists(st.sampled_from(["x", "y", "z"]), max_size=3),
         # nested values: a JSON column (objects, lists of numbers)
         "json": st.one_of(st.dictionaries(st.sampled_from(["k", "s"]), st.integers(0, 9), max_size=2),
                           st.lists(st.integers(0, 3), min_size=1, max_size=2))}
COLNAMES = ["c1", "c2", "c3"]
CANON = ["instruction", "response"]


def literal(draw):
    # 10^10 leaves 32 bits (round's digits went through a 32-bit cast and stopped the run)
    return draw(st.sampled_from(["1", "2.5", '"ab"', "true", "null", "0", "10000000000", '"4.5"']))


def expr(draw, cols, depth=2):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.integers(0, 5)) == 0:  # a field of a nested value (of a column of any type)
            return f"{draw(st.sampled_from(COLNAMES))}.{draw(st.sampled_from(['k', 's', 'k.s']))}"
        return draw(st.sampled_from(cols)) if draw(st.booleans()) else literal(draw)
    kind = draw(st.sampled_from(["bin", "fn", "not"]))
    if kind == "not":
        return f"not ({expr(draw, cols, depth - 1)})"
    if kind == "bin":
        op = draw(st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "and", "or"]))
        return f"({expr(draw, cols, depth - 1)} {op} {expr(draw, cols, depth - 1)})"
    fn, n = draw(st.sampled_from([("length", 1), ("words", 1), ("lower", 1), ("trim", 1), ("contains", 2),
                                  ("abs", 1), ("round", 2), ("log", 1), ("sqrt", 1), ("coalesce", 2),
                                  ("concat", 2), ("least", 2), ("is_null", 1), ("num_tags", 1),
                                  ("number", 1), ("text", 1), ("lines", 1), ("max_line_length", 1),
                                  ("alpha_ratio", 1), ("digit_ratio", 1), ("char_repetition", 2),
                                  ("word_repetition", 2), ("greatest", 3), ("upper", 1), ("starts_with", 2),
                                  ("regexp_matches", 2), ("regexp_replace", 3), ("regexp_extract", 2),
                                  ("regexp_extract", 3), ("bucket", 2), ("has", 2), ("item", 2),
                                  ("interleave", 2)]))
    args = [expr(draw, cols, depth - 1) for _ in range(n)]
    if fn.startswith("regexp_") and draw(st.booleans()):  # mostly patterns check can judge
        args[1] = draw(st.sampled_from(['"a+"', '"(b)"', '"^\\\\s"', '"[é]"']))
    if fn == "regexp_extract" and n == 3 and draw(st.booleans()):  # mostly a group check can judge
        args[2] = draw(st.sampled_from(["0", "1", "2"]))
    return f"{fn}({', '.join(args)})"


def source_rows(draw, tag: str) -> list[dict]:
    types = {c: draw(st.sampled_from(sorted(TYPES))) for c in COLNAMES}
    rows = []
    for i in range(draw(st.integers(1, 8))):
        r = {"instruction": f"do {tag} {i} " + draw(st.text(alphabet="ab ", max_size=5)), "output": f"done {i}"}
        for c, t in types.items():
            # the first row has every column, so `check` can know its type
            r[c] = None if i and draw(st.integers(0, 5)) == 0 else draw(TYPES[t])
        rows.append(r)
    return rows


@st.composite
def case(draw):
    rows = source_rows(draw, "thing")
    # sometimes a second source whose columns have types of their own, unioned or mixed in first
    other = source_rows(draw, "other") if draw(st.integers(0, 3)) == 0 else None
    start = draw(st.sampled_from(["union(raw, raw2)", "mix(raw, raw2, weights=[1, 1], seed=1)"])) if other else "raw"
    cols = COLNAMES + CANON + ["conversation"]  # the pseudo-column: every turn as text
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        c = draw(st.sampled_from(cols))
        op = draw(st.sampled_from(["filter", "derive", "topk", "threshold", "quota", "sample", "limit",
                                   "dedupe", "score", "deita", "language", "redact", "normalize", "split_turns"] + (["join"] if other else [])))
        if op == "join":  # by a column or `_id`; inner/left add raw2's columns (a clash is a diagnostic)
            how = draw(st.sampled_from(["inner", "left", "anti"]))
            ops.append(f'join(raw2, on={draw(st.sampled_from([c, "_id"]))}, how="{how}")')
        elif op == "filter":
            ops.append(f"filter({expr(draw, cols)})")
        elif op == "derive":
            name = draw(st.sampled_from(["n1", "n2", "instruction", "response", "c1"]))
            ops.append(f"derive({name}={expr(draw, cols)})")
            if name not in cols:
                cols = cols + [name]
        elif op == "topk":
            ops.append(f'select(method="topk", by={c}, k={draw(st.integers(0, 5))})')
        elif op == "threshold":
            ops.append(f'select(method="threshold", by={c}, min={draw(st.integers(-2, 3))})')
        elif op == "quota":
            ops.append(f'select(method="quota", by={c}, per=2, order={draw(st.sampled_from(cols))})')
        elif op == "sample":
            ops.append(f"sample(n={draw(st.integers(0, 5))}, seed=1)")
        elif op == "limit":
            ops.append(f"limit(n={draw(st.integers(0, 5))})")
        elif op == "dedupe":
            m = draw(st.sampled_from(["exact", "minhash"] + (["ngram"] if other else [])))
            ops.append(f'dedupe(method="{m}", on={c}' + (f', against=raw2, ngram={draw(st.integers(1, 3))})'
                                                          if m == "ngram" else ")"))
        elif op == "language":  # builtin:lid176 (a real model, loaded in a tenth of a second)
            keep = draw(st.sampled_from(["", ', keep=["en"]', ', keep=["en", "fr"]', ', keep=["eng"]', ", keep=[]"]))
            floor = draw(st.sampled_from(["", ", min_score=0.5", ", min_score=0"]))
            ops.append(f"language(model=lid, on={c}{keep}{floor})")
            cols = cols + [x for x in ("language", "language_score") if x not in cols]
        elif op == "redact":
            on = draw(st.sampled_from(["conversation", "instruction", "response", c]))
            kinds = draw(st.sampled_from(["", ', kinds=["email", "phone", "credit_card"]', ', kinds=["ipv4"]']))
            how = draw(st.sampled_from(["", ", drop=true", ', replace="fake"']))
            ops.append(f"redact(on={on}{kinds}{how})")
            if "redactions" not in cols:
                cols = cols + ["redactions"]
        elif op == "normalize":
            on = draw(st.sampled_from(["conversation", "response", c]))
            ops.append(f"normalize(on={on}{draw(st.sampled_from(['', ', nfkc=true', ', unicode=false', ', html=true, whitespace=false']))})")
        elif op == "split_turns":
            ops.append(f"split_turns(max_tokens={draw(st.integers(1, 12))})")
            cols = cols + [x for x in ("_parents",) if x not in cols]
        elif op == "deita":
            ops.append(f'select(method="deita", k=3, quality={c}, embedding_column={draw(st.sampled_from(cols))})')
        else:
            ops.append(f'score(metric="{draw(st.sampled_from(["length", "words", "complexity"]))}", '
                       f'on={c}, tags={c}, column="s1")')
            cols = cols + ["s1"]
    sink = draw(st.sampled_from(['"o.jsonl"', '"o.csv"', '"o.json" (format="alpaca")',
                                 '"o.parquet"', '"o.jsonl" (format="sharegpt")', '"o.jsonl.gz"', '"o.csv.zst"']))
    return (rows, other, start), "\n  | ".join(ops), sink


@settings(max_examples=int(os.environ.get("RECIPE_FUZZ_EXAMPLES", 400)), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case())
def test_fuzzed_recipes_end_in_a_diagnostic_or_a_clean_run(ram_tmp, c):
    (rows, other, start), ops, sink = c
    tmp = ram_tmp.mktemp("fz")
    data = tmp / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = f'recipe fz\nsource raw = read("{data}", format="alpaca")\n'
    if "language(" in ops:
        text += 'model lid = language_id("builtin:lid176")\n'
    if other is not None:
        (tmp / "d2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
        text += f'source raw2 = read("{tmp / "d2.jsonl"}", format="alpaca")\n'
    text += f'x = {start}\n  | {ops}\nwrite x to {sink}\n'
    r = load(text)
    # the YAML form of every fuzzed recipe is the same program (text literals in expressions
    # once came back as column names)
    twin = parse_yaml(to_yaml(r.recipe), "fz.yaml")
    assert twin.dumps() == r.recipe.dumps(), to_yaml(r.recipe)
    diags = r.diagnose().diagnostics
    if any(d.is_error for d in diags):
        event("check found an error")
        return
    event("ran")
    try:
        res = r.run(out=tmp / "out", cache_dir=tmp / "cache")
    except (RecipeError, UserError) as e:
        if "must hold a list of" in str(e) and "set them aside first" in str(e):
            # rows whose embedding column holds no embedding (a column of nulls): the data's
            # fault, which `check` cannot see; the error names the rows and how to drop them
            assert "0 of" not in str(e) and "row raw" in str(e), str(e)
            event("embedding column without embeddings")
            return
        raise AssertionError(f"check passed, then the run failed:\n{text}\n{e}")
    for n in res.manifest["nodes"]:
        assert n["rows_in"] + n["rows_created"] == n["rows_out"] + n["rows_set_aside"], n

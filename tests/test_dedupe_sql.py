"""Exact dedupe (a window in SQL over an MD5 of the text normalised in numpy) groups rows
exactly as the Python normalisation (`normalise`) does, and keeps the same winner, on
generated Unicode text."""
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from recipe.algorithms.minhash import normalise
from recipe.api import load

# few pieces, short texts: collisions (the interesting cases) are common
PIECES = st.sampled_from(["a", "A", " ", "\t\n", "\u00a0", "\u2003", "\u0130", "i\u0307", "\u03a3", "\u03c3",
                          "\u03c2", "\u00c9", "\u00e9"])
TEXT = st.lists(PIECES, min_size=1, max_size=3).map("".join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=16), keep=st.sampled_from(["first", "longest", "max:n"]),
       after_filter=st.booleans())
def test_sql_exact_dedupe_matches_the_python_reference(ram_tmp, texts, keep, after_filter):
    """Also after a filter: its output is a view over the read's table, and the rows it
    drops are not candidates."""
    tmp = ram_tmp.mktemp("dd")
    rows = [{"instruction": "q " + t, "output": "a", "n": (i * 7) % 5} for i, t in enumerate(texts)]
    data = tmp / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = "raw | filter(n != 3)" if after_filter else "raw"
    r = load(f'recipe t\nsource raw = read("{data}")\nx = {src} | dedupe(method="exact", on=instruction, '
             f'keep="{keep}")\nwrite x to "x.jsonl"\n')
    r.run(out=tmp / "o", cache_dir=tmp / "c")
    got = [json.loads(line)["_id"] for line in (tmp / "o" / "x.jsonl").read_text().splitlines()]
    # the reference: group by the normalised text; the winner by `keep`, ties to the earliest
    best: dict = {}
    for i, row in enumerate(rows):
        if after_filter and row["n"] == 3:
            continue
        k = normalise(row["instruction"])
        score = 0 if keep == "first" else len(row["instruction"]) if keep == "longest" else row["n"]
        if k not in best or score > best[k][0]:
            best[k] = (score, i)
    assert got == [f"raw:{i}" for i in sorted(i for _, i in best.values())]
    # each dropped row names its group's winner
    winners = {k: i for k, (_, i) in best.items()}
    aside = [json.loads(line) for line in (tmp / "o" / "set_aside.jsonl").read_text().splitlines()]
    for a in aside:
        if a["reason"].startswith("duplicate of"):
            i = int(a["_id"].split(":")[1])
            assert a["reason"] == f"duplicate of raw:{winners[normalise(rows[i]['instruction'])]} (exact on instruction)"
    assert sum(a["reason"].startswith("duplicate of") for a in aside) == len(rows) - len(got) - (
        sum(r["n"] == 3 for r in rows) if after_filter else 0)


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=40))
def test_first_of_keys_is_each_keys_first_row(keys):
    """Few distinct halves, so rows share a high half with another low half (the two-key
    sort's case) as well as whole keys."""
    import numpy as np
    from recipe.table import first_of_keys
    hi = np.array([h for h, _ in keys], dtype=np.uint64)
    lo = np.array([l for _, l in keys], dtype=np.uint64)
    first: dict = {}
    want = [first.setdefault(k, i) for i, k in enumerate(keys)]
    assert first_of_keys(hi, lo).tolist() == want

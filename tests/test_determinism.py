"""Output does not depend on what is in the cache.

Each recipe, and random edits of it (renamed sources and nodes, changed params, reordered
declarations), runs once on a cache that other variants have warmed (step cache and model
results) and once on a fresh one: sinks and `set_aside.jsonl` must be byte-identical."""
import dataclasses
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from recipe.api import load
from recipe.frontend import parse_text
from recipe.frontend.printer import to_text

from conftest import alpaca_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.recipe"))


def outputs(out: Path) -> dict[str, bytes]:
    """Every file a run wrote except the manifest (which holds timings), plus its row counts."""
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"}
    m = json.loads((out / "manifest.json").read_text())
    files["counts"] = json.dumps([[n["name"], n["rows_in"], n["rows_out"], n["rows_set_aside"]] for n in m["nodes"]]
                                 + [[s["path"].split("/")[-1], s["rows"]] for s in m["sinks"]]).encode()
    return files


def edit(text: str, rnd: random.Random) -> str:
    """A random edit that a reviewer might see in a pull request: renamed sources and nodes,
    declarations in another order (the printer's canonical form of the result)."""
    r = parse_text(text, "x.recipe")
    names = [s.name for s in r.sources] + [n.name for n in r.nodes]
    for name in rnd.sample(names, k=rnd.randint(0, len(names))):
        text = re.sub(rf"(?<![\w.\"/]){re.escape(name)}(?![\w\"])", f"{name}_{rnd.randint(0, 99)}", text)
    r = parse_text(text, "x.recipe")
    nodes = list(r.nodes)
    rnd.shuffle(nodes)
    sources = list(r.sources)
    rnd.shuffle(sources)
    return to_text(dataclasses.replace(r, nodes=tuple(nodes), sources=tuple(sources)))


def run(text: str, recipe_file: Path, out: Path, cache: Path, params=None, sources=None, runtime=None):
    recipe_file.write_text(text)
    load(str(recipe_file)).run(params=params or {}, sources=sources, out=out, cache_dir=cache, runtime=runtime)
    return outputs(out)


# each example once, with two random edits (12 draws of an example until session 32, some twice
# and none certain to come up; a third of this file's time)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_examples_and_edits_give_the_same_bytes_on_warm_and_fresh_caches(tmp_path_factory, example, seed):
    rnd = random.Random(seed)
    tmp = tmp_path_factory.mktemp("det")
    # the example's data paths made absolute, so its variants can live in a temporary folder
    base = re.sub(r'read\("(?!/)', f'read("{example.parent}/', example.read_text())
    shared = tmp / "shared-cache"
    variants = [base] + [edit(base, rnd) for _ in range(2)]
    r = load(str(example))
    # generation kept short (about 40 ms a token here): what is asserted does not depend on length
    short = {"max_new_tokens": "8"} if any(p.name == "max_new_tokens" for p in r.recipe.params) else {}
    params = [short] + [short | {p.name: str(p.default.value * 2 if isinstance(p.default.value, int) else
                                             round(p.default.value * 0.9, 3)) if p.name not in short else "12"}
                        for p in r.recipe.params if isinstance(p.default.value, (int, float))
                        and not isinstance(p.default.value, bool)][:1]
    for i, text in enumerate(variants):
        for j, prm in enumerate(params):
            f = tmp / f"v{i}{j}.recipe"
            warm = run(text, f, tmp / f"w{i}{j}", shared, prm)
            fresh = run(text, f, tmp / f"f{i}{j}", tmp / f"fresh{i}{j}", prm)
            assert warm == fresh, f"variant {i} params {prm}:\n{text}"


LIBRARY = ["qdit", "superfiltering", "deita", "mods", "instag", "lift", "uit", "clean", "vicuna", "self_instruct"]
# short generations: what these tests assert does not depend on their length (each generated
# token costs about 40 ms on this CPU in batch-invariant float32)
SMALL = {"uit": {"n": "2", "eval_instances": "2", "max_new_tokens": "32"}, "lift": {"max_new": "2", "max_new_tokens": "48"},
         "instag": {"max_new_tokens": "32"},
         "self_instruct": {"n": "2", "prompts_per_round": "1", "task_tokens": "64", "max_rounds": "2", "max_new_tokens": "32"}}


# Known bug (2026-12-04): in full clean-clone runs on an AMX CPU, qdit's raw:0 IFD came out
# 0.178411 from the warm cache and 0.181864 fresh (bf16, one text at a time); it passes alone and
# in subsets of the tests before it. fp32 scoring fixed it but broke Ray parity in the 6th digit.
QDIT_DRIFT = pytest.mark.xfail(reason="bf16 IFD score drifts with process history on AMX CPUs (see README)",
                               strict=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=QDIT_DRIFT) if n == "qdit" else n for n in LIBRARY])
def test_library_recipe_is_cache_oblivious(name, tmp_path, model_cache):
    """A library recipe on a cache warmed by an edited variant (renamed source, another k)
    writes the same bytes as on a fresh cache, model results included."""
    from recipe.runtime import ModelRuntime
    rows = alpaca_rows(4)  # small: the test runs each library recipe three times
    for i, r in enumerate(rows):
        r["task"] = "describe" if i % 2 else "explain"
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    r = load(f"stdlib:{name}")
    has_k = any(p.name == "k" for p in r.recipe.params)
    params = {**({"k": "3"} if has_k else {}), **SMALL.get(name, {})}
    src = {"raw": str(data)}
    # results are cached apart (shared vs fresh); converted weights, a function of the
    # checkpoint alone, come from the session's cache so each runtime does not dequantise again
    warm_rt = ModelRuntime(tmp_path / "models-shared", weights_dir=model_cache)
    # warm the shared caches with a variant: the source renamed, and another k
    text = (ROOT / "stdlib_recipes" / f"{name}.recipe").read_text()
    variant = re.sub(r"(?<![\w.\"/])raw(?![\w\"])", "pool_in", text)
    vf = tmp_path / "variant.recipe"
    vf.write_text(variant)
    load(str(vf)).run(params={**params, **({"k": "5"} if has_k else {})}, sources={"pool_in": str(data)},
                      out=tmp_path / "v", cache_dir=tmp_path / "shared", runtime=warm_rt)
    warm = load(f"stdlib:{name}").run(params=params, sources=src, out=tmp_path / "w", cache_dir=tmp_path / "shared",
                                      runtime=warm_rt)
    fresh = load(f"stdlib:{name}").run(params=params, sources=src, out=tmp_path / "f", cache_dir=tmp_path / "fresh",
                                       runtime=ModelRuntime(tmp_path / "models-fresh", weights_dir=model_cache))
    assert outputs(warm.out_dir) == outputs(fresh.out_dir)

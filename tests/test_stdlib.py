"""The library recipes run end to end on a small generated input with exact accounting, and
compose with `use`."""
from pathlib import Path

import pytest

from recipe.api import load
from recipe.link import stdlib_names
from recipe.runtime import ModelRuntime

from conftest import alpaca_rows, read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = ["clean", "deita", "instag", "lift", "mods", "qdit", "self_instruct", "superfiltering", "uit", "vicuna"]


def small_input(tmp_path):
    rows = alpaca_rows(12)
    for i, r in enumerate(rows):
        r["task"] = "describe" if i % 2 else "explain"
    return write_jsonl(tmp_path / "in.jsonl", rows)


def library_params(name: str, r) -> dict:
    """Small settings that make a library recipe quick on `small_input`."""
    params = {"k": "4"} if any(p.name == "k" for p in r.recipe.params) else {}
    if name == "uit":
        params = {"n": "2", "eval_instances": "2"}
    if name == "lift":
        params["max_new"] = "4"
    if name == "vicuna":  # a context short enough that SmolLM2's template splits some rows
        params["seq_len"] = "72"
    if name == "self_instruct":
        params = {"n": "2", "prompts_per_round": "1", "task_tokens": "64", "max_rounds": "2"}
    if name in ("uit", "instag", "lift", "self_instruct"):  # short generations (about 40 ms a token here)
        params["max_new_tokens"] = "48" if name == "lift" else "32"
    return params


def test_library_is_complete():
    assert stdlib_names() == EXPECTED


def test_clean_sets_aside_each_rules_rows_naming_the_rule(tmp_path):
    """stdlib:clean (no models): a row breaking each rule is set aside by that rule's step;
    rows that only look alike (a short list that repeats, a photo named in a quoted text
    after the task) are kept."""
    story = " ".join(f"word{i}" for i in range(60))
    task = "Explain in detail how photosynthesis works in green plants and in algae."
    rows = {"good": (task, "Plants turn light, water and CO2 into sugar and oxygen."),
            "empty": ("Say something.", "   "),
            "placeholder": ("What is the capital of Atlantis?", "N/A"),
            "refusal": ("Tell me a joke.", "I'm sorry, but I cannot tell jokes."),
            "unseen": ("Describe the scene in this photo.", "A beach at sunset."),
            "loop": ("Write a story.", "Once upon a time. " + "The end is near and the end is here. " * 12),
            "zeros": ("An array of 24 zeros.", "arr = [" + ", ".join(["0"] * 24) + "]"),
            "quoted": ("Summarise the article below. " + "x" * 160 + " She sent this picture later.", story),
            "dup": (task.upper().replace(" ", "  "), "Short."),
            "near": (task.replace("in algae", "algae"), "Plants make sugar."),
            # an input that only says there is none leaves the prompt (AlpacaDataCleaned), and the
            # row it hid is then a duplicate of it
            "noinput": ("Name the largest planet.", "Jupiter, a gas giant."),
            "noinput_dup": ("Name the  largest planet.", "Jupiter."),
            "input": ("Translate the text to French.", "Bonjour.")}
    inputs = {"noinput": "<No input>.", "input": "Good morning."}
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": k, "instruction": i, "input": inputs.get(k, ""), "output": o}
                                              for k, (i, o) in rows.items()])
    f = tmp_path / "c.recipe"
    f.write_text((ROOT / "stdlib_recipes" / "clean.recipe").read_text().replace('read("data.jsonl")',
                                                                               f'read("{data}", id="id")'))
    res = load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    out = read_jsonl(tmp_path / "o" / "clean.jsonl")
    kept = [r["_id"] for r in out]
    aside = {a["_id"]: (a["node"], a["reason"]) for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl")}
    assert kept == ["good", "zeros", "quoted", "noinput", "input"]
    step = {k: v[0] for k, v in aside.items()}
    assert step == {"empty": "clean/filter", "placeholder": "clean/filter#2", "refusal": "clean/filter#3",
                    "unseen": "clean/filter#4", "loop": "clean/filter#5", "dup": "clean/dedupe",
                    "near": "clean/dedupe#2", "noinput_dup": "clean/dedupe"}
    assert out[3]["messages"][0]["content"] == "Name the largest planet." and out[3]["input"] == ""
    assert out[4]["messages"][0]["content"] == "Translate the text to French.\n\nGood morning."  # a real input stays
    fixed = next(n for n in res.manifest["nodes"] if n["name"] == "clean/normalize")
    assert fixed["stats"]["rows changed"] == {"placeholder_input": 1}
    assert aside["dup"][1] == "duplicate of good (exact on instruction)"
    assert "word_repetition(response, 10)" in aside["loop"][1]


@pytest.mark.slow
def test_vicuna_drops_and_splits_as_fastchat_did_naming_each_step(tmp_path, model_cache):
    def chat(*turns):
        return {"conversations": [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(turns)]}
    long = chat(*[f"Question {i}: what is {i} times {i}?" if j == 0 else f"{i} times {i} is {i * i}."
                  for i in range(6) for j in range(2)])
    rows = {"good": chat("Name a prime.", "Seven is a prime number."),
            "long": long,
            "short": {"conversations": [{"from": "human", "value": "Hello there?"}]},
            "brand": chat("Are you ChatGPT?", "I am an assistant."),
            "limit": chat("Hi", "Too many requests in 1 hour. Try again later."),
            "dup": chat("name a PRIME.", "Seven  is a prime number."),
            "french": chat("Quelle est la capitale de la France ?", "La capitale de la France est Paris."),
            "list": chat("List two fruits.", "Here:\n1. apple\n1. pear")}
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": k, **v} for k, v in rows.items()])
    res = load("stdlib:vicuna").run(params={"seq_len": "90", "test_share": "0"}, sources={"raw": str(data)},
                                    out=tmp_path / "o", cache_dir=tmp_path / "c", runtime=ModelRuntime(model_cache))
    aside = {a["_id"]: a["node"] for a in read_jsonl(tmp_path / "o" / "set_aside.jsonl") if a["node"] != "test"}
    assert aside == {"raw:2": "cleaned/filter", "raw:3": "cleaned/filter#2", "raw:4": "cleaned/filter#3",
                     "raw:5": "cleaned/dedupe", "raw:6": "one_language", "raw:7": "parts/filter"}
    kept = read_jsonl(tmp_path / "o" / "vicuna.jsonl")
    assert kept[0]["_id"] == "raw:0" and [r["_id"] for r in kept[1:]][:2] == ["raw:1", "raw:1+part2"]
    split = next(n for n in res.manifest["nodes"] if n["name"] == "parts/split_turns")
    assert split["rows_created"] == len(kept) - 2 > 0
    import json
    train = json.loads((tmp_path / "o" / "vicuna_train.json").read_text())
    assert len(train) == len(kept) and train[0]["conversations"][0] == {"from": "human", "value": "Name a prime."}


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_library_recipe_runs_with_exact_accounting(name, tmp_path, model_cache):
    r = load(f"stdlib:{name}")
    params = library_params(name, r)
    if name == "mods":  # settings no other test uses: this run trains (weights are cached by key)
        params["epochs"] = "2"
    res = r.run(params=params, sources={"raw": str(small_input(tmp_path))}, out=tmp_path / "o",
                cache_dir=tmp_path / "c", runtime=ModelRuntime(model_cache))
    m = res.manifest
    for n in m["nodes"]:
        assert n["rows_in"] + n["rows_created"] == n["rows_out"] + n["rows_set_aside"], n
    main = m["sinks"][0]
    assert Path(main["path"]).name == f"{name}.jsonl"
    rows = read_jsonl(main["path"])
    assert len(rows) == main["rows"] and len({r["_id"] for r in rows}) == len(rows)
    if "k" in params:
        assert 0 < len(rows) <= 4
    aside = read_jsonl(tmp_path / "o" / "set_aside.jsonl")
    assert len(aside) == sum(n["rows_set_aside"] for n in m["nodes"])
    if name == "mods":  # MoDS as published: necessity under SmolLM2 fine-tuned on the seed
        tuned = next(n for n in m["nodes"] if n["name"] == "tuned/finetune")
        seed = next(n for n in m["nodes"] if n["name"] == "seed")
        assert tuned["stats"]["rows"] == seed["rows_out"] > 0 and tuned["stats"]["response_tokens"] > 0
        assert tuned["stats"]["loss_after"] < tuned["stats"]["loss_before"]
        assert m["models"]["tuned"]["source"].startswith("finetuned:")
    if name == "uit":
        chosen = m["nodes"][1]["stats"]["unify"]
        assert set(chosen) == {"describe", "explain"}
    same_on_ray(r, name, params, tmp_path, model_cache, res)


# the Ray run computes these recipes' model results itself (its own result cache): the
# model actors' numbers must equal one process's; the others reuse this run's results
COMPUTE_ON_RAY = {"qdit", "superfiltering"}


def same_on_ray(r, name, params, tmp_path, model_cache, res) -> None:
    """The Ray engine (tests/test_ray.py) gives the same bytes and counts for the recipe: tables
    cut into 7-row blocks and two actors per model, so every step crosses block and shard bounds."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return
    import os
    from test_ray import counts, outputs
    rt = ModelRuntime(tmp_path / "ray-models", weights_dir=model_cache) if name in COMPUTE_ON_RAY else ModelRuntime(model_cache)
    os.environ["RECIPE_RAY_BLOCK_ROWS"] = "7"
    try:
        got = r.run(params=params, sources={"raw": str(tmp_path / "in.jsonl")}, out=tmp_path / "o-ray",
                    cache_dir=tmp_path / "c-ray", runtime=rt, engine="ray", replicas=2)
    finally:
        del os.environ["RECIPE_RAY_BLOCK_ROWS"]
    assert outputs(tmp_path / "o-ray") == outputs(tmp_path / "o")
    assert counts(got.manifest) == counts(res.manifest)
    if name in COMPUTE_ON_RAY:  # the actors computed what was not cached (here: everything), once
        st = got.manifest["model_runtime"].values()
        assert sum(s["computed"] for s in st) > 0 and all(s["computed"] + s["cache_hits"] <= s["requests"] for s in st)


@pytest.mark.slow
def test_use_composes_a_library_recipe_with_overrides(tmp_path, model_cache):
    data = small_input(tmp_path)
    f = tmp_path / "mine.recipe"
    f.write_text(f'''recipe mine

use stdlib:superfiltering as sf (top=0.5, k=2, raw=pool)

source raw = read("{data}")

pool = raw | filter(length(response) > 10)

write sf.picked to "picked.jsonl"
''')
    r = load(str(f))
    assert r.check().ok
    linked = r.linked
    assert {p.name: p.default.value for p in linked.params} == {"sf.top": 0.5, "sf.k": 2}
    assert [i.name for i in next(n for n in linked.nodes if n.name == "sf.scored").inputs] == ["pool"]
    res = r.run(out=tmp_path / "o", cache_dir=tmp_path / "c", runtime=ModelRuntime(model_cache))
    names = [n["name"] for n in res.manifest["nodes"]]
    assert names[:2] == ["raw", "pool"] and "sf.picked/select#2" in names
    assert len(read_jsonl(tmp_path / "o" / "picked.jsonl")) <= 2
    # overriding with --set works on the prefixed name
    assert r.check(params={"sf.k": "1"}).params["sf.k"] == 1


def test_a_library_recipe_says_which_source_it_needs_and_catches_a_misspelt_one(tmp_path):
    from recipe.diagnostics import UserError
    r = load("stdlib:qdit")
    with pytest.raises(UserError, match=r"--source raw=FILE"):
        r.plan()
    with pytest.raises(UserError, match=r"no source `rawx`.*did you mean `raw`"):
        r.plan(sources={"rawx": str(tmp_path / "d.jsonl")})

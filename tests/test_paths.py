"""A path written in a recipe file is relative to that file's folder; one given from outside
(`--set`, `--source`, Python) to the working directory. Found on a real try: a `use`d recipe in
another folder read the file of the same name beside the recipe that used it, without a word,
and a source path given as a param's default failed `check` with "input not found: None"."""
from recipe.api import load
from recipe.cli import main

from conftest import read_jsonl, write_jsonl
from test_model_folders import _encoder
from test_template_files import PS


def _alpaca(path, text):
    return write_jsonl(path, [{"instruction": text, "output": "ok"}])


def _texts(out, name):
    return [r["instruction"] for r in read_jsonl(out / name)]


def test_a_used_recipe_reads_its_source_beside_itself(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    _alpaca(tmp_path / "lib" / "data.jsonl", "the used recipe's row")
    _alpaca(tmp_path / "data.jsonl", "a row beside the recipe that uses it")
    (tmp_path / "lib" / "prep.recipe").write_text(
        'recipe prep\nsource raw = read("data.jsonl", format="alpaca")\n'
        'clean = raw | filter(length(instruction) > 0)\nwrite clean to "prep.jsonl"\n')
    (tmp_path / "main.recipe").write_text('recipe main\nuse "lib/prep.recipe" as p ()\nall = p.clean\n'
                                          'write all to "all.jsonl"\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    load("../main.recipe").run(out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)
    assert _texts(tmp_path / "o", "all.jsonl") == ["the used recipe's row"]


def test_a_param_default_is_relative_to_its_recipe_and_a_set_value_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "w").mkdir()
    _alpaca(tmp_path / "r" / "data.jsonl", "beside the recipe")
    _alpaca(tmp_path / "w" / "data.jsonl", "in the working directory")
    (tmp_path / "r" / "p.recipe").write_text('recipe p\nparam data: str = "data.jsonl"\n'
                                             'source raw = read(data, format="alpaca")\nwrite raw to "o.jsonl"\n')
    monkeypatch.chdir(tmp_path / "w")
    r = load("../r/p.recipe")
    assert [d.message for d in r.diagnose().diagnostics] == []
    r.run(out=tmp_path / "o1", cache_dir=tmp_path / "c", quiet=True)
    assert _texts(tmp_path / "o1", "o.jsonl") == ["beside the recipe"]
    assert main(["run", "../r/p.recipe", "--set", "data=data.jsonl", "--out", str(tmp_path / "o2"),
                 "--cache-dir", str(tmp_path / "c"), "-q"]) == 0
    assert _texts(tmp_path / "o2", "o.jsonl") == ["in the working directory"]


def test_model_folders_are_relative_to_the_recipe_file(tmp_path, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "w").mkdir()
    _encoder(tmp_path / "r" / "enc")
    write_jsonl(tmp_path / "r" / "data.jsonl", [{"instruction": f"w{i} w{i + 1}", "output": "w2"} for i in range(6)])
    text = ('recipe m\nmodel e = embedding("enc")\nsource raw = read("data.jsonl", format="alpaca")\n'
            'x = raw | select(method="kcenter", k=2, embedding=e)\nwrite x to "x.jsonl"\n')
    (tmp_path / "r" / "m.recipe").write_text(text)
    monkeypatch.chdir(tmp_path / "w")
    assert [d.message for d in load("../r/m.recipe").diagnose().diagnostics if d.is_error] == []
    load("../r/m.recipe").run(out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)
    assert len(read_jsonl(tmp_path / "o" / "x.jsonl")) == 2
    # the same folder name beside the working directory is not what the recipe means
    (tmp_path / "w" / "m.recipe").write_text(text.replace('read("data.jsonl"', f'read("{tmp_path / "r" / "data.jsonl"}"'))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    errs = [(d.code, d.message) for d in load("../w/m.recipe").diagnose().diagnostics if d.is_error]
    assert errs == [("E0312", "model not found at `../w/enc`")]


def test_template_files_are_relative_to_the_recipe_and_keyed_by_contents_not_spelling(tmp_path, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "w").mkdir()
    (tmp_path / "r" / "templates.yaml").write_text(PS)
    write_jsonl(tmp_path / "r" / "raw.jsonl", [{"premise": f"p{i}", "label": f"l{i}"} for i in range(3)])
    (tmp_path / "r" / "t.recipe").write_text(
        'recipe t\nsource raw = read("raw.jsonl", format="raw")\n'
        'x = raw | format_transfer(method="template", promptsource="templates.yaml")\nwrite x to "x.jsonl"\n')
    monkeypatch.chdir(tmp_path / "w")
    assert [d.message for d in load("../r/t.recipe").diagnose().diagnostics] == []
    load("../r/t.recipe").run(out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)
    assert read_jsonl(tmp_path / "o" / "x.jsonl")[0]["messages"][0]["content"] == "Q: p0"
    # run from the recipe's own folder: the same files, so the same steps, served from the cache
    monkeypatch.chdir(tmp_path / "r")
    res = load("t.recipe").run(out=tmp_path / "o2", cache_dir=tmp_path / "c", quiet=True)
    assert {n["name"]: n["cached"] for n in res.manifest["nodes"]}["x"] is True


def test_a_missing_file_given_from_outside_is_looked_for_in_the_working_directory(tmp_path, monkeypatch, capsys):
    """The hint names the folder the path was looked for in: the recipe's for a literal, the
    working directory for --source and --set (it said "relative to the recipe file" for both)."""
    (tmp_path / "r").mkdir()
    (tmp_path / "w").mkdir()
    _alpaca(tmp_path / "r" / "data.jsonl", "beside the recipe")
    (tmp_path / "r" / "p.recipe").write_text('recipe p\nparam data: str = "data.jsonl"\n'
                                             'source raw = read(data, format="alpaca")\nwrite raw to "o.jsonl"\n')
    monkeypatch.chdir(tmp_path / "w")
    for given in (["--source", "raw=data.jsonl"], ["--set", "data=data.jsonl"]):
        assert main(["check", "../r/p.recipe", *given]) == 1
        err = capsys.readouterr().err
        assert "input not found: data.jsonl" in err and f"relative to the working directory, {tmp_path / 'w'}" in err, err
    (tmp_path / "r" / "q.recipe").write_text('recipe q\nsource raw = read("nothere.jsonl")\nwrite raw to "o.jsonl"\n')
    assert main(["check", "../r/q.recipe"]) == 1
    assert "check the path (relative to the recipe file)" in capsys.readouterr().err

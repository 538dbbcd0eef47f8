"""Operators from installed plugin packages (entry points in the group `recipe.operators`),
examples/plugin's: found, checked, run and fingerprinted like built-in ones; an edited plugin re-runs its steps
("code changed"); a broken one is said with its package; a built-in name cannot be taken."""
import json
import shutil
import sys
from pathlib import Path

import pytest

import recipe.codehash as codehash
from recipe import ops
from recipe.api import load
from recipe.cli import main
from recipe.diagnostics import RecipeError, UserError
from recipe.schema import build_schema

from conftest import write_jsonl

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"


@pytest.fixture
def plugin(tmp_path):
    """examples/plugin's package as a distribution `longwords 0.1` on sys.path (a copy: the
    tests edit it), with its entry points."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "recipe_long_words", site / "longwords")
    info = site / "longwords-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: longwords\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[recipe.operators]\nlong_words = longwords:OP\n")
    sys.path.insert(0, str(site))

    def forget():
        ops.plugins.cache_clear()
        codehash.plugin_hash.cache_clear()
        for name in [n for n in ops._CACHE if n not in ops._MODULES and n not in ops._INTERNAL]:
            del ops._CACHE[name]
        for m in [m for m in sys.modules if m.split(".")[0] in ("longwords", "brokenops", "recipe_long_words")]:
            del sys.modules[m]
    forget()
    yield site
    sys.path.remove(str(site))
    forget()


ROWS = [{"instruction": f"q{i}", "output": " ".join(["tiny"] * 3 + ["enormous"] * (i % 4))} for i in range(8)]


def _recipe(tmp_path, least=2):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    f = tmp_path / "p.recipe"
    f.write_text(f'recipe p\nsource raw = read("{data}")\nx = raw | long_words(length=4, least={least}) | filter(long_words < 3)\n'
                 f'write x to "x.jsonl"\n')
    return f


def test_a_plugin_operator_is_checked_run_and_listed(plugin, tmp_path, capsys):
    f = _recipe(tmp_path)
    res = load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    out = [json.loads(x) for x in (tmp_path / "o" / "x.jsonl").read_text().splitlines()]
    assert [r["long_words"] for r in out] == [2, 2]  # 0 and 1 set aside by the plugin, 3 by the filter
    node = res.manifest["nodes"][1]
    assert (node["op"], node["rows_in"], node["rows_out"], node["rows_set_aside"]) == ("long_words", 8, 4, 4)
    aside = (tmp_path / "o" / "set_aside.jsonl").read_text()
    assert "long_words: 0 words longer than 4, fewer than 2" in aside and res.manifest["plugins"] == {"long_words": "longwords 0.1"}
    from recipe.card import write_card
    assert "Plugin operators: `long_words` (longwords 0.1)" in write_card(tmp_path / "o", cache_dir=tmp_path / "c").read_text()
    # its parameters are checked like a built-in's; its column's type flows on
    with pytest.raises(RecipeError, match="`least` = -1 is out of range"):
        load(str(_recipe(tmp_path, least=-1))).check()
    bad = tmp_path / "t.recipe"
    bad.write_text(f.read_text().replace("long_words < 3", 'long_words == "many"'))
    with pytest.raises(RecipeError, match="E0405|compare"):
        load(str(bad)).check()
    assert main(["ops", "long_words"]) == 0
    assert "long_words (v1, plugin: longwords 0.1): Count words longer" in capsys.readouterr().out


def test_an_edited_plugin_re_runs_its_steps(plugin, tmp_path, capsys):
    f = _recipe(tmp_path)
    load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
    assert main(["plan", str(f), "--cache-dir", str(tmp_path / "c")]) == 0
    assert "code changed" not in capsys.readouterr().out
    src = plugin / "longwords" / "__init__.py"
    src.write_text(src.read_text().replace('fewer than {least}"', 'below {least}"'))
    assert "below {least}" in src.read_text()
    codehash.plugin_hash.cache_clear()  # as a new process would read it
    assert main(["plan", str(f), "--cache-dir", str(tmp_path / "c")]) == 0
    assert "long_words <- raw  [code changed]" in capsys.readouterr().out


def test_a_broken_plugin_is_said_with_its_package(plugin, tmp_path, capsys):
    (plugin / "brokenops.py").write_text("raise ImportError('needs a library that is not installed')\n")
    (plugin / "longwords-0.1.dist-info" / "entry_points.txt").write_text(
        "[recipe.operators]\nlong_words = longwords:OP\nbroken = brokenops:OP\nfilter = longwords:OP\n")
    ops.plugins.cache_clear()
    f = tmp_path / "b.recipe"
    f.write_text(f'recipe b\nsource raw = read("{write_jsonl(tmp_path / "d.jsonl", ROWS)}")\n'
                 f'x = raw | broken()\nwrite x to "x.jsonl"\n')
    assert main(["check", str(f)]) == 1
    err = capsys.readouterr().err
    assert "operator `broken` comes from the plugin longwords 0.1 (brokenops:OP), which failed to load: " \
           "ImportError: needs a library that is not installed" in err
    with pytest.raises(UserError, match="failed to load"):
        ops.get("broken")
    # a built-in's name stays the built-in's
    assert ops.get("filter").__module__ == "recipe.ops.filter" and "filter" not in ops.plugins()


def test_the_shipped_schema_holds_built_in_operators_only(plugin, capsys):
    names = {next(iter(i["properties"])) for i in
             build_schema()["properties"]["steps"]["additionalProperties"]["properties"]["ops"]["items"]["anyOf"]}
    assert "long_words" not in names and "filter" in names
    assert main(["schema"]) == 0
    assert '"long_words"' in capsys.readouterr().out


def test_the_example_plugin_installs_and_runs(tmp_path, capsys):
    """examples/plugin, installed by pip as a user would (from a copy: the build writes beside
    its sources), gives `long_words` to recipes."""
    import subprocess
    src = tmp_path / "plugin"
    shutil.copytree(EXAMPLE, src)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(src)], check=True, capture_output=True)
    sys.path.insert(0, str(site))
    ops.plugins.cache_clear()
    try:
        data = write_jsonl(tmp_path / "d.jsonl", ROWS)
        f = tmp_path / "p.recipe"
        f.write_text(f'recipe p\nsource raw = read("{data}")\nx = raw | long_words(length=4, least=3)\n'
                     f'write x to "x.jsonl"\n')
        res = load(str(f)).run(out=tmp_path / "o", cache_dir=tmp_path / "c")
        assert [json.loads(x)["long_words"] for x in (tmp_path / "o" / "x.jsonl").read_text().splitlines()] == [3, 3]
        assert res.manifest["plugins"] == {"long_words": "recipe-long-words 0.1.0"}
    finally:
        sys.path.remove(str(site))
        ops.plugins.cache_clear()
        ops._CACHE.pop("long_words", None)
        for m in [m for m in sys.modules if m.startswith("recipe_long_words")]:
            del sys.modules[m]

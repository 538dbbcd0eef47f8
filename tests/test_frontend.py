"""Front ends: text and YAML produce the same IR; fmt is canonical, idempotent, keeps comments."""
import re
from pathlib import Path

import pytest

from recipe.frontend import parse_text, parse_yaml
from recipe.frontend.printer import to_text, to_yaml
from recipe.ir import Binary, Column, Lit, ParamRef

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(list((ROOT / "examples").glob("*.recipe")) + list((ROOT / "stdlib_recipes").glob("*.recipe")))

SAMPLE = '''# header comment
recipe demo

param k: int = 10
param cut: float = 0.5

model emb = embedding("builtin:minilm")

source raw = read("data.jsonl", format="alpaca")

# a pipeline
clean = raw
  | filter(length(response) > 3 and not (score < cut))  # keep real answers
  | dedupe(method="minhash", on=instruction, threshold=0.8)

both = union(clean, raw) | limit(n=k)

write both to "out.jsonl" (format="alpaca")
'''


def test_text_parse_builds_typed_ir():
    r = parse_text(SAMPLE, "demo.recipe")
    assert r.name == "demo"
    assert [p.name for p in r.params] == ["k", "cut"]
    clean = r.nodes[0]
    assert [o.op for o in clean.ops] == ["filter", "dedupe"]
    where = clean.ops[0].args[0].value
    assert isinstance(where, Binary) and where.op == "and"
    # a param inside an expression is a ParamRef, a column is a Column
    inner = where.right.operand
    assert isinstance(inner.left, Column) and isinstance(inner.right, ParamRef)
    # bare names outside expressions are plain values; `k` is a declared param
    assert clean.ops[1].arg("on").value == Lit("instruction")
    assert r.nodes[1].ops[1].arg("n").value == ParamRef("k")
    assert [i.name for i in r.nodes[1].inputs] == ["clean", "raw"]
    # spans point into the file
    assert clean.ops[1].name_span.line == 14 and clean.ops[1].name_span.col == 5


def test_yaml_and_text_give_identical_ir():
    r = parse_text(SAMPLE, "demo.recipe")
    y = to_yaml(r)
    r2 = parse_yaml(y, "demo.yaml")
    assert r2.dumps() == r.dumps()
    assert to_text(r2) == to_text(r)


def test_text_literals_in_expressions_stay_text_in_yaml():
    # derive's values and filter's condition are expressions: in YAML a bare `gsm` is the column
    # `gsm`, so a text literal must keep its quotes (it became a column reference until session 36)
    text = ('recipe t\n\nsource raw = read("d.jsonl")\n\na = raw\n  | derive(origin="gsm", note="it\'s \\"x\\"", '
            'lines="one\\ntwo", n=3, ok=true, none=null, same=origin)\n  | filter("yes")\n\nwrite a to "o.jsonl"\n')
    r = parse_text(text, "t.recipe")
    derive = r.nodes[0].ops[0]
    assert derive.arg("origin").value == Lit("gsm") and isinstance(derive.arg("same").value, Column)
    y = to_yaml(r)
    assert "origin: '\"gsm\"'" in y
    back = parse_yaml(y, "t.yaml")
    assert back.dumps() == r.dumps()
    assert to_text(back) == to_text(r) == text


def test_the_text_of_a_param_reference_stays_text_in_yaml():
    # in YAML a value that is exactly `${k}` refers to param k; the text `${k}` is written `$${k}`
    text = ('recipe t\n\nparam k: str = "${k}"\n\nsource raw = read("${k}")\n\n'
            'write raw to "${k}.jsonl"\n\nwrite raw to "${k}"\n')
    r = parse_text(text, "t.recipe")
    assert r.sources[0].path == Lit("${k}")
    y = to_yaml(r)
    assert 'read: "$${k}"' in y and 'write: "${k}.jsonl"' in y
    assert parse_yaml(y, "t.yaml").dumps() == r.dumps()
    ref = parse_yaml(y.replace('read: "$${k}"', 'read: "${k}"'), "t.yaml")
    assert isinstance(ref.sources[0].path, ParamRef)


def test_fmt_keeps_comments_and_is_idempotent():
    out = to_text(parse_text(SAMPLE, "x.recipe"))
    assert "# header comment" in out and "# a pipeline" in out and "# keep real answers" in out
    assert to_text(parse_text(out, "x.recipe")) == out
    y = to_yaml(parse_text(SAMPLE, "x.recipe"))
    assert "# keep real answers" in y
    assert to_yaml(parse_yaml(y, "x.yaml")) == y


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_committed_recipes_are_formatted_and_round_trip(path):
    text = path.read_text()
    r = parse_text(text, str(path))
    assert to_text(r) == text, f"{path} is not canonically formatted: run `recipe fmt {path}`"
    yaml_twin = path.with_suffix(".yaml")
    y = to_yaml(r)
    assert parse_yaml(y, "x.yaml").dumps() == r.dumps()
    if yaml_twin.exists():
        assert yaml_twin.read_text() == y, f"{yaml_twin} is out of date: `recipe fmt --to yaml {path}`"


def test_yaml_expression_spans_point_into_the_scalar():
    y = 'recipe: t\nsources:\n  raw: {read: "d.jsonl"}\nsteps:\n  a:\n    input: raw\n    ops:\n      - filter: "length(respons) > 2"\nsinks:\n  - {input: a, write: "o.jsonl"}\n'
    r = parse_yaml(y, "t.yaml")
    col = r.nodes[0].ops[0].args[0].value.left.args[0]
    assert isinstance(col, Column) and col.name == "respons"
    assert (col.span.line, col.span.col) == (8, 25)


def test_schema_file_matches_operator_declarations():
    import json
    from recipe.schema import SCHEMA_FILE, build_schema
    assert json.loads(SCHEMA_FILE.read_text()) == build_schema(), "regenerate with recipe.schema.write_schema()"


def test_schema_command_prints_the_schema_and_hooks_name_real_commands(capsys):
    import json
    import shlex
    import yaml
    from recipe.cli import main
    from recipe.schema import build_schema
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == build_schema()
    root = Path(__file__).resolve().parents[1]
    hooks = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"recipe-fmt", "recipe-check"}
    for h in hooks:  # each hook's command, on a canonical example, as pre-commit would call it
        cmd = shlex.split(h["entry"])
        assert cmd[0] == "recipe" and re.search(h["files"], "examples/quickstart.recipe")
        assert main(cmd[1:] + [str(root / "examples" / "quickstart.recipe")]) == 0


@pytest.mark.parametrize("text, hinted", [
    ('source s = read("d.jsonl")\nx = union(s | limit(n=1), s)\n', True),
    ('source s = read("d.jsonl")\nx = s | filter(instruction == "a (b") | | limit(n=1)\n', False),  # "(" in a string
    ('source s = read("d.jsonl")\nx = s | | limit(n=1)\n', False),
])
def test_a_pipe_inside_arguments_says_to_name_the_pipeline_first(text, hinted):
    from recipe.diagnostics import RecipeError
    with pytest.raises(RecipeError) as e:
        parse_text(text, "r.recipe")
    d = e.value.diagnostics[0]
    assert d.code == "E0001" and "_OP" not in d.hints[0]
    assert any("a pipeline cannot be an argument" in h for h in d.hints) == hinted


def test_yaml_scalars_read_as_the_text_form_reads_them():
    # YAML 1.1 (PyYAML's default) read `010` as eight, `1:30` as ninety and `yes` as true
    y = '''recipe: t
sources:
  raw: {read: "d.jsonl"}
steps:
  x:
    input: raw
    ops:
      - limit: {n: 010}
      - sample: {n: 0x10, seed: 1:30}
      - filter: {where: "source == \\"2024-01-01\\""}
sinks:
  - {input: x, write: "x.jsonl", format: yes}
'''
    r = parse_yaml(y, "t.yaml")
    lim, smp = r.nodes[0].ops[0], r.nodes[0].ops[1]
    assert lim.arg("n").value == Lit(10) and smp.arg("n").value == Lit(16)
    assert smp.arg("seed").value == Lit("1:30")  # text: `check` says it is not a number
    assert r.sinks[0].options[0].value == Lit("yes")
    text = parse_text('recipe t\nsource raw = read("d.jsonl")\nx = raw | limit(n=010)\nwrite x to "x.jsonl"\n', "t.recipe")
    assert text.nodes[0].ops[0].arg("n").value == Lit(10)
    for v, want in (("true", True), ("False", False), ("1e3", 1000.0), (".5", 0.5), ("-7", -7), ("0o17", 15)):
        got = parse_yaml(y.replace("{n: 010}", "{n: " + v + "}"), "t.yaml").nodes[0].ops[0].arg("n").value
        assert got == Lit(want) and type(got.value) is type(want), (v, got)


@pytest.mark.parametrize("name", ["note", "nothing", "notes", "orders", "android", "trueness", "falsey", "nullable"])
def test_a_name_that_starts_with_a_keyword_is_a_name(name):
    """`not`, `or`, `and`, `true`, `false` and `null` are keywords only as whole words: until
    session 30 `filter(note > 0)` parsed as `not e > 0` (and `derive(note=...)` failed)."""
    r = parse_text(f'recipe t\nsource raw = read("d.jsonl")\nx = raw | derive({name}=1) | filter({name} > 0 and not {name})\n'
                   'write x to "x.jsonl"\n', "t.recipe")
    derive, flt = r.nodes[0].ops
    assert derive.args[0].name == name
    cond = flt.args[0].value
    assert isinstance(cond, Binary) and cond.op == "and"
    assert cond.left.left == Column(name, cond.left.left.span)
    assert cond.right.operand == Column(name, cond.right.operand.span)
    assert to_text(r).count(name) == 3


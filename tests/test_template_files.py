"""Template files (`format_transfer(method="template", promptsource=... | flan=...)`) are part of
what a step depends on: an edited file re-runs the step (it was served from the cache with the
old text), and `check` reads them, so a missing or unreadable file, an unknown FLAN task, or
templates that no row here can fill are found before the run, not by it."""
import json

from recipe.api import load
from recipe.cli import main

from conftest import read_jsonl, write_jsonl

PS = '''dataset: toy
templates:
  a: !Template
    id: a
    jinja: "Q: {{premise}} ||| {{label}}"
    name: first
'''


def _recipe(data, **how):
    args = ", ".join(f'{k}="{v}"' for k, v in how.items())
    return f'''recipe t
source raw = read("{data}", format="raw")
x = raw | format_transfer(method="template", {args})
write x to "x.jsonl"
'''


def _rows(tmp_path):
    return write_jsonl(tmp_path / "raw.jsonl", [{"premise": f"p{i}", "label": f"l{i}"} for i in range(4)])


def _diags(text):
    return [(d.code, d.severity, d.message) for d in load(text).diagnose().diagnostics]


def test_an_edited_template_file_re_runs_the_step_with_the_new_text(tmp_path, capsys):
    data, y = _rows(tmp_path), tmp_path / "templates.yaml"
    y.write_text(PS)
    text = _recipe(data, promptsource=y)
    run = lambda: load(text).run(out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)  # noqa: E731
    run()
    assert read_jsonl(tmp_path / "o" / "x.jsonl")[0]["messages"][0]["content"] == "Q: p0"
    res = run()
    assert {n["name"]: n["cached"] for n in res.manifest["nodes"]}["x"] is True
    y.write_text(PS.replace("Q: ", "Question: "))
    f = tmp_path / "t.recipe"
    f.write_text(text)
    assert main(["plan", str(f), "--cache-dir", str(tmp_path / "c")]) == 0
    assert [ln for ln in capsys.readouterr().out.splitlines() if "format_transfer" in ln and "[template file changed]" in ln]
    res = run()
    assert {n["name"]: n["cached"] for n in res.manifest["nodes"]}["x"] is False
    assert read_jsonl(tmp_path / "o" / "x.jsonl")[0]["messages"][0]["content"] == "Question: p0"


def test_check_reads_the_template_files(tmp_path):
    data = _rows(tmp_path)
    assert _diags(_recipe(data, promptsource=tmp_path / "none.yaml")) == [
        ("E0207", "error", f"no PromptSource templates.yaml at {tmp_path / 'none.yaml'}")]
    (code, _, msg), = _diags(_recipe(data, promptsource=data))  # JSON lines, not YAML templates
    assert code == "E0207" and "is not a PromptSource templates file" in msg
    flan = tmp_path / "flan.json"
    flan.write_text(json.dumps({"rte": [["{premise}", "{label}"]], "anli": [["{premise}?", "{label}"]]}))
    (code, _, msg), = _diags(_recipe(data, flan=flan, flan_task="RTE2"))
    assert code == "E0207" and "no task `RTE2`" in msg and "'rte'" in msg
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rte": ["{premise}"]}))
    (code, _, msg), = _diags(_recipe(data, flan=bad, flan_task="rte"))
    assert code == "E0207" and "not a list of [input, target] patterns" in msg
    assert _diags(_recipe(data, flan=flan, flan_task="rte")) == []


def test_templates_that_no_row_here_can_fill_are_a_warning(tmp_path):
    data, y = _rows(tmp_path), tmp_path / "templates.yaml"
    y.write_text(PS.replace("{{premise}}", "{{hypothesis}}"))
    (code, severity, msg), = _diags(_recipe(data, promptsource=y))
    assert (code, severity) == ("W0411", "warning") and "`first` reads `hypothesis`" in msg
    # the run does what the warning says: every row is set aside, with the reason
    res = load(_recipe(data, promptsource=y)).run(out=tmp_path / "o", cache_dir=tmp_path / "c", quiet=True)
    x = {n["name"]: n for n in res.manifest["nodes"]}["x"]
    assert x["rows_out"] == 0 and x["rows_set_aside"] == 4
    # one template that can render is enough: no warning
    y.write_text(PS.replace("{{premise}}", "{{hypothesis}}") + PS.split("templates:\n")[1].replace("  a:", "  b:")
                 .replace("id: a", "id: b").replace("name: first", "name: second"))
    assert _diags(_recipe(data, promptsource=y)) == []


def test_a_field_the_row_lacks_or_holds_null_is_never_rendered_as_text(tmp_path):
    from recipe.templates import Template, render
    t = Template("t", "promptsource", "Q: {{premise}}{% if hint %} (hint: {{hint}}){% endif %} ||| {{label}}")
    assert render(t, {"premise": "p", "label": "yes"}) == ("Q: p", "yes")  # a missing `hint` tests false
    assert render(t, {"premise": "p", "hint": "h", "label": "yes"}) == ("Q: p (hint: h)", "yes")
    for row in ({"premise": "p"}, {"premise": None, "label": "yes"}):  # was "Q: " / "Q: None"
        try:
            render(t, row)
            raise AssertionError(f"rendered {row}")
        except ValueError as e:
            assert "is undefined (the row lacks the field, or it is null)" in str(e)

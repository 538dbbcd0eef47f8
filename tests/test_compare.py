"""`recipe compare OLD NEW`: two runs' outputs row by row: removed, added and changed rows,
why each removed row left (the new run's set_aside.jsonl), matched by `_id` or, for formats
without it, by content; each step's rows out side by side."""
import json

from recipe.cli import main
from recipe.compare import compare

from conftest import write_jsonl

ROWS = [{"instruction": f"Question {i}?", "output": "yes " * (i % 5), "n": i} for i in range(20)] + \
       [{"instruction": "Question 3?", "output": "yes yes yes ", "n": 3}]  # an exact copy of row 3
TEXT = ('recipe c\nparam least: int = 1\nparam tag: str = "a"\nsource raw = read("{data}")\n'
        'kept = raw | filter(words(response) >= least) | dedupe(method="exact", on=instruction)'
        ' | derive(tag = concat(tag, text(n % 2)))\n'
        'write kept to "k.jsonl"\nwrite kept to "k_alpaca.json" (format="alpaca")\n'
        'write kept to "parts.jsonl" (shards=2)\nexpect kept: rows() >= 10\n')


def _run(tmp_path, name, **params):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    f = tmp_path / "c.recipe"
    f.write_text(TEXT.format(data=data))
    args = ["run", str(f), "--out", str(tmp_path / name), "--cache-dir", str(tmp_path / "cache"), "-q"]
    for k, v in params.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) in (0, 3)  # 3: `expect kept: rows() >= 10` not met
    return tmp_path / name


def test_removed_rows_are_counted_and_each_says_which_step_set_it_aside(tmp_path, capsys):
    old, new = _run(tmp_path, "old"), _run(tmp_path, "new", least=3)
    changes, steps, notes = compare(old, new)
    k = next(c for c in changes if c.file == "k.jsonl")
    # least 1 keeps n % 5 in 1..4 (16 rows, the copy of row 3 deduplicated), least 3 keeps 3..4 (8)
    assert (k.old_rows, k.new_rows, len(k.removed_keys), len(k.added_keys), len(k.changed_keys), k.same) == (16, 8, 8, 0, 0, 8)
    assert len(k.removed) == 5  # the shown ones
    assert k.by_id and dict(k.removed_why) == {"kept/filter": 8}
    assert k.reasons["raw:1"].startswith("kept/filter: ")
    shards = next(c for c in changes if c.file == "parts.jsonl")  # both files of the sharded sink
    assert (shards.old_rows, shards.new_rows, len(shards.removed_keys)) == (16, 8, 8)
    assert {"step": "kept/filter", "old": 17, "new": 9} in steps
    assert notes == ["expect kept: rows() >= 10: met -> NOT MET (rows() = 8)"]
    assert main(["compare", str(old), str(new), "--exit-code", "--show", "2"]) == 1
    out = capsys.readouterr().out
    assert "k.jsonl: 16 rows -> 8 rows: 8 removed, 0 added, 0 changed, 8 the same" in out
    assert "  - raw:1: Question 1?\n      why: kept/filter: " in out and "... 6 more removed" in out
    assert "  kept/filter: 17 -> 9" in out and "expect kept: rows() >= 10: met -> NOT MET (rows() = 8)" in out
    # the other way round: the rows come back, with why they were not there before
    back, _, _ = compare(new, old)
    assert dict(next(c for c in back if c.file == "k.jsonl").added_why) == {"kept/filter": 8}


def test_changed_rows_name_their_fields_and_the_same_runs_compare_equal(tmp_path, capsys):
    old, new = _run(tmp_path, "old"), _run(tmp_path, "new", tag="b")
    k = next(c for c in compare(old, new)[0] if c.file == "k.jsonl")
    assert (len(k.changed_keys), k.same) == (16, 0) and k.changed[0][2] == ["tag"]
    assert main(["compare", str(old), str(_run(tmp_path, "again")), "--exit-code"]) == 0
    assert "16 rows -> 16 rows: 0 removed, 0 added, 0 changed, 16 the same" in capsys.readouterr().out


def test_the_same_rows_in_another_order_are_said_to_be(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS[:20])
    f = tmp_path / "s.recipe"
    f.write_text(f'recipe s\nparam seed: int = 0\nsource raw = read("{data}")\n'
                 f'mixed = raw | shuffle(seed=seed)\nwrite mixed to "m.jsonl"\n')
    for name, seed in (("old", "1"), ("new", "2"), ("again", "1")):
        assert main(["run", str(f), "--out", str(tmp_path / name), "--cache-dir", str(tmp_path / "c"), "-q",
                     "--set", f"seed={seed}"]) == 0
    m = compare(tmp_path / "old", tmp_path / "new")[0][0]
    assert (m.same, m.reordered, len(m.removed_keys) + len(m.added_keys) + len(m.changed_keys)) == (20, True, 0)
    assert not compare(tmp_path / "old", tmp_path / "again")[0][0].reordered


def test_a_file_without_ids_is_matched_by_content(tmp_path):
    old, new = _run(tmp_path, "old"), _run(tmp_path, "new", least=4)
    a = next(c for c in compare(old, new)[0] if c.file == "k_alpaca.json")
    assert not a.by_id and (len(a.removed_keys), len(a.added_keys), a.same) == (12, 0, 4)
    assert all(k is None for k, _ in a.removed) and not a.removed_why  # no ids: no reasons to look up
    assert [t for _, t in a.removed] == ["Question 1?", "Question 2?", "Question 3?", "Question 6?", "Question 7?"]


def test_markdown_and_json_for_a_pull_request(tmp_path, capsys):
    old, new = _run(tmp_path, "old"), _run(tmp_path, "new", least=3)
    assert main(["compare", str(old), str(new), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "### `k.jsonl`\n\n16 rows -> 8 rows: 8 removed" in md and "```diff\n- raw:1: Question 1?" in md
    assert "| `kept/filter` | 17 | 9 |" in md
    assert main(["compare", str(old), str(new), "--format", "json", "--show", "1"]) == 0
    got = json.loads(capsys.readouterr().out)
    k = next(s for s in got["sinks"] if s["file"] == "k.jsonl")
    assert (k["removed"], k["matched_by"], k["removed_by"]) == (8, "_id", {"kept/filter": 8})
    assert len(k["examples"]["removed"]) == 1 and k["examples"]["removed"][0]["why"].startswith("kept/filter: ")


def test_a_folder_that_is_no_run_is_said_plainly(tmp_path, capsys):
    old = _run(tmp_path, "old")
    assert main(["compare", str(old), str(tmp_path / "nothing")]) == 1
    assert "holds no manifest.json: give the --out folder of a finished run" in capsys.readouterr().err


def test_a_removed_near_duplicate_is_shown_against_the_row_kept(tmp_path, capsys):
    base = "Summarise the following report on the river's water quality over the last ten years in plain words"
    rows = [{"instruction": base + " for a school newsletter.", "output": "a"},
            {"instruction": base + " for a city council meeting.", "output": "b"},
            {"instruction": "Write a haiku about autumn leaves.", "output": "c"}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "n.recipe"
    f.write_text(f'recipe n\nparam t: float = 0.95\nsource raw = read("{data}")\n'
                 f'kept = raw | dedupe(method="minhash", on=instruction, threshold=t)\nwrite kept to "k.jsonl"\n')
    for name, t in (("old", "0.95"), ("new", "0.6")):
        assert main(["run", str(f), "--out", str(tmp_path / name), "--cache-dir", str(tmp_path / "c"), "-q",
                     "--set", f"t={t}"]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert "  - raw:1: Summarise the following report" in out
    assert "      why: kept: duplicate of raw:0 (minhash on instruction)" in out
    part = len(base) + len(" for a ") + 1
    assert f"      against raw:0: they part at character {part}: '...in words for a city council meeting.' / " \
           f"kept '...in words for a school newsletter.'" in out

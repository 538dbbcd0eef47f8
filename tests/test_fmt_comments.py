"""`fmt` never loses a comment: generated recipes with a comment before or after every line
(text form and YAML form, a block scalar included) keep each comment once, in order, through
formatting, through a second formatting (idempotent), and through conversion to the other
form and back; block scalars come back as block scalars with the same text."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from recipe.frontend import parse_any
from recipe.frontend.printer import to_text, to_yaml

TEXT = '''recipe demo
param k: int = 10
param word: str = "don't"
model emb = embedding("builtin:minilm")
source raw = read("data.jsonl", format="alpaca")
clean = raw
  | filter(length(response) > 3 and not contains(instruction, "#x"))
  | dedupe(method="minhash", on=instruction, threshold=0.8)
both = union(clean, raw) | limit(n=k)
write both to "out.jsonl" (format="alpaca")
'''

YAML = '''recipe: demo
params:
  k: {type: int, default: 10}
  word: {type: str, default: don't}
sources:
  raw: {read: "data.jsonl", format: alpaca}
steps:
  clean:
    input: raw
    ops:
      - filter: {where: "length(response) > 3"}
      - format_transfer:
          template: |
            # a line of the template, not a comment
            Answer: {response}
      - limit: {n: 3}
sinks:
  - {input: clean, write: "o.jsonl"}
'''
BLOCK_BODY = (14, 15)  # lines (1-based) inside the block scalar: text there is the template's


def _insert(base: str, spots: list[tuple[int, bool]], skip=()) -> tuple[str, list[str]]:
    lines = base.rstrip("\n").split("\n")
    out, comments = [], []
    for n, line in enumerate(lines, 1):
        for at, trailing in spots:
            if at == n and not trailing and n not in skip:
                c = f"# lead {len(comments)}"
                comments.append(c)
                out.append(" " * (len(line) - len(line.lstrip())) + c)
        tail = [t for at, t in spots if at == n and t and n not in skip]
        if tail:
            c = f"# trail {len(comments)}"
            comments.append(c)
            line = f"{line}  {c}"
        out.append(line)
    return "\n".join(out) + "\n", comments


def _comments_in(text: str) -> list[str]:
    return [ln[ln.index("# "):].strip() for ln in text.split("\n") if "# lead" in ln or "# trail" in ln]


SPOTS = st.lists(st.tuples(st.integers(1, 19), st.booleans()), max_size=12, unique=True)


@settings(max_examples=150, deadline=None)
@given(spots=SPOTS)
def test_text_form_keeps_every_comment(spots):
    src, comments = _insert(TEXT, spots)
    once = to_text(parse_any(src, "t.recipe"))
    assert sorted(_comments_in(once)) == sorted(comments)
    assert to_text(parse_any(once, "t.recipe")) == once
    back = to_text(parse_any(to_yaml(parse_any(once, "t.recipe")), "t.yaml"))
    assert sorted(_comments_in(back)) == sorted(comments)


@settings(max_examples=150, deadline=None)
@given(spots=SPOTS)
def test_yaml_form_keeps_every_comment_and_block_scalars(spots):
    src, comments = _insert(YAML, spots, skip=BLOCK_BODY)
    r = parse_any(src, "t.yaml")
    once = to_yaml(r)
    assert sorted(_comments_in(once)) == sorted(comments)
    again = parse_any(once, "t.yaml")
    assert to_yaml(again) == once
    template = [a.value.value for n in again.nodes for o in n.ops for a in o.args if a.name == "template"]
    assert template == ["# a line of the template, not a comment\nAnswer: {response}\n"]
    assert "template: |" in once and "default: \"don't\"" in once


def test_a_step_commented_out_at_a_pipelines_end_stays_in_the_pipeline():
    """Commenting out the last step is an everyday edit: the line stays under the steps it
    followed (it went before the next statement, unindented), in the text form and the YAML."""
    src = ('recipe r\n\nsource raw = read("d.jsonl")\n\nclean = raw\n  | filter(length(response) > 0)\n'
           '  # | dedupe(method="minhash", on=instruction)  # too many\n\nwrite clean to "o.jsonl"\n')
    once = to_text(parse_any(src, "t.recipe"))
    assert once == src
    one = 'recipe r\nsource raw = read("d.jsonl")\nclean = raw\n  # | limit(n=3)\nwrite clean to "o.jsonl"\n'
    assert to_text(parse_any(one, "t.recipe")).split("\n\n")[2] == "clean = raw\n  # | limit(n=3)"
    y = to_yaml(parse_any(src, "t.recipe"))
    assert '      - filter: {where: "length(response) > 0"}\n      # | dedupe' in y
    # an unindented comment after a pipeline still goes with the statement that follows
    free = src.replace("  # | dedupe", "# | dedupe")
    assert to_text(parse_any(free, "t.recipe")).endswith('\n\n# | dedupe(method="minhash", on=instruction)  # too many\n'
                                                         'write clean to "o.jsonl"\n')

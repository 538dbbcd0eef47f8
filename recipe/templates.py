"""Prompt templates read from a path: PromptSource collections (Jinja `input ||| target`,
rendered in a sandboxed environment) and FLAN patterns (`(input_format, target_format)`
pairs with `{placeholders}` and `{options_}`). The project ships no template collection.
"""
from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from .diagnostics import UserError

MAX_TEMPLATE_CHARS = 20_000
MAX_RENDERED_CHARS = 200_000


@dataclass(frozen=True)
class Template:
    name: str
    kind: str          # promptsource | flan
    body: str          # jinja text, or the FLAN input pattern
    target: str = ""   # FLAN target pattern
    choices: str = ""  # PromptSource answer_choices (itself a template)


class _PSLoader(yaml.SafeLoader):
    """PromptSource files tag their mappings `!Template` / `!TemplateMetadata`: read them as
    plain mappings (no Python objects are ever constructed)."""


for _tag in ("!Template", "!TemplateMetadata", "!TemplateCollection"):
    _PSLoader.add_constructor(_tag, lambda loader, node: loader.construct_mapping(node, deep=True))


def load_promptsource(path: str | Path) -> list[Template]:
    p = Path(path)
    files = sorted(p.rglob("templates.yaml")) if p.is_dir() else [p]
    if not files or not files[0].exists():
        raise UserError(f"no PromptSource templates.yaml at {path}")
    out = []
    for f in files:
        doc = yaml.load(f.read_text(encoding="utf-8"), Loader=_PSLoader) or {}
        for tid, t in sorted((doc.get("templates") or {}).items(), key=lambda kv: (kv[1].get("name", ""), kv[0])):
            if len(t.get("jinja", "")) > MAX_TEMPLATE_CHARS:
                continue
            out.append(Template(t.get("name", tid), "promptsource", t["jinja"], choices=t.get("answer_choices") or ""))
    return out


def load_flan(path: str | Path, task: str) -> list[Template]:
    p = Path(path)
    if not p.exists():
        raise UserError(f"no FLAN template file at {path}")
    doc = json.loads(p.read_text(encoding="utf-8"))
    patterns = doc.get("PATTERNS", doc)
    if task not in patterns:
        raise UserError(f"FLAN templates have no task `{task}`")
    return [Template(f"{task}#{i}", "flan", a, b) for i, (a, b) in enumerate(patterns[task])]


def _sandbox():
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    return ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


def render(t: Template, row: dict) -> tuple[str, str]:
    """(input, target) for one row; raises ValueError with a reason when it cannot render."""
    if t.kind == "flan":
        fields = dict(row)
        opts = row.get("options")
        if isinstance(opts, list):
            fields["options_"] = "OPTIONS:\n- " + "\n- ".join(map(str, opts))
        needed = {f for _, f, _, _ in string.Formatter().parse(t.body + t.target) if f}
        missing = sorted(needed - set(fields))
        if missing:
            raise ValueError(f"template {t.name} needs {', '.join(missing)}")
        safe = {k: v for k, v in fields.items() if isinstance(v, (str, int, float))}
        if needed - set(safe):
            raise ValueError(f"template {t.name}: fields {', '.join(sorted(needed - set(safe)))} are not text")
        return t.body.format_map(safe), t.target.format_map(safe)
    from jinja2 import TemplateError
    env = _sandbox()
    try:
        ctx = dict(row)
        if t.choices:
            ctx["answer_choices"] = [c.strip() for c in env.from_string(t.choices).render(**row).split("|||")]
        text = env.from_string(t.body).render(**ctx)
    except (TemplateError, TypeError, IndexError, KeyError, ValueError) as e:
        raise ValueError(f"template {t.name}: {type(e).__name__}: {e}")
    if len(text) > MAX_RENDERED_CHARS:
        raise ValueError(f"template {t.name} rendered more than {MAX_RENDERED_CHARS} characters")
    parts = text.split("|||")
    if len(parts) != 2 or not parts[0].strip():
        raise ValueError(f"template {t.name} did not render `input ||| target`")
    if not parts[1].strip():
        raise ValueError(f"template {t.name} rendered an empty target")
    return parts[0].strip(), parts[1].strip()

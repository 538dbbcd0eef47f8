"""Prompt templates read from a path: PromptSource collections (Jinja `input ||| target`,
rendered in a sandboxed environment) and FLAN patterns (`(input_format, target_format)`
pairs with `{placeholders}` and `{options_}`). The project ships no template collection.
"""
from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import lru_cache
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


def template_files(path: str | Path) -> list[Path]:
    """The files a template path names: a PromptSource folder's every templates.yaml (sorted),
    or the file itself; [] when there is none."""
    p = Path(path)
    if p.is_dir():
        return sorted(p.rglob("templates.yaml"))
    return [p] if p.is_file() else []


def load_promptsource(path: str | Path) -> list[Template]:
    files = template_files(path)
    if not files:
        raise UserError(f"no PromptSource templates.yaml at {path}")
    out = []
    for f in files:
        try:
            doc = yaml.load(f.read_text(encoding="utf-8"), Loader=_PSLoader) or {}
            items = sorted((doc.get("templates") or {}).items(), key=lambda kv: (kv[1].get("name", ""), kv[0]))
            for tid, t in items:
                if len(t.get("jinja", "")) > MAX_TEMPLATE_CHARS:
                    continue
                out.append(Template(t.get("name", tid), "promptsource", t["jinja"], choices=t.get("answer_choices") or ""))
        except (yaml.YAMLError, UnicodeDecodeError, AttributeError, KeyError, TypeError) as e:
            raise UserError(f"{f} is not a PromptSource templates file ({type(e).__name__}: {_first_line(e)})")
    if not out:
        raise UserError(f"no templates in {path}")
    return out


def load_flan(path: str | Path, task: str) -> list[Template]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no FLAN template file at {path}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        patterns = doc.get("PATTERNS", doc)
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise UserError(f"{path} is not a FLAN templates JSON ({type(e).__name__}: {_first_line(e)})")
    if task not in patterns:
        import difflib
        low = {str(k).lower(): str(k) for k in patterns}
        near = [low[k] for k in difflib.get_close_matches(task.lower(), list(low), n=3, cutoff=0.6)]
        raise UserError(f"FLAN templates have no task `{task}`" + (f" (did you mean {', '.join(map(repr, near))}?)"
                                                                   if near else ""))
    pairs = patterns[task]
    if not isinstance(pairs, list) or not all(isinstance(x, (list, tuple)) and len(x) == 2
                                             and all(isinstance(y, str) for y in x) for x in pairs):
        raise UserError(f"FLAN task `{task}` in {path} is not a list of [input, target] patterns")
    return [Template(f"{task}#{i}", "flan", a, b) for i, (a, b) in enumerate(pairs)]


def template_fields(t: Template) -> frozenset[str]:
    """The row fields a template reads (its placeholders or Jinja variables, less what
    rendering itself provides); a template that cannot be parsed reads nothing known."""
    if t.kind == "flan":
        try:
            names = {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(t.body + t.target) if f}
        except ValueError:
            return frozenset()
        return frozenset(names - {"options_"})
    from jinja2 import TemplateError, meta
    env = _sandbox()
    try:
        names = meta.find_undeclared_variables(env.parse(t.body))
    except TemplateError:
        return frozenset()
    return frozenset(names - {"answer_choices"} - set(env.globals))


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else ""


@lru_cache(maxsize=1)
def _sandbox():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Missing(StrictUndefined):
        """Undefined that stops a render when printed or used, but tests false."""
        def __bool__(self):
            return False

    return ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False, undefined=Missing)


@lru_cache(maxsize=4096)
def _compiled(text: str):
    """A template compiled once (rendering row by row compiled it for every row)."""
    return _sandbox().from_string(text)


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
    from jinja2 import TemplateError, UndefinedError
    try:
        # a field the row lacks, or holds null, is undefined: rendering it stops the row
        # (it rendered as "" or "None" inside the prompt); `{% if field %}` reads it as false
        ctx = {k: v for k, v in row.items() if v is not None}
        if t.choices:
            ctx["answer_choices"] = [c.strip() for c in _compiled(t.choices).render(**ctx).split("|||")]
        text = _compiled(t.body).render(**ctx)
    except UndefinedError as e:
        raise ValueError(f"template {t.name}: {e} (the row lacks the field, or it is null)")
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

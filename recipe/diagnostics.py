"""One diagnostic type for every stage, rendered like a compiler error.

    error[E0201]: unknown operator `dedup`
      --> recipes/mods.recipe:14:5
       |
    14 |   | dedup(method="minhash")
       |     ^^^^^ did you mean `dedupe`?
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence

from .codes import lookup


@dataclass(frozen=True)
class Span:
    """A region of a source file: 1-based line and column, end exclusive."""
    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col,
                "end_line": self.end_line, "end_col": self.end_col}


NO_SPAN = Span("<none>", 0, 0, 0, 0)


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    hints: tuple[str, ...] = ()
    severity: str = "error"  # or "warning"

    def __post_init__(self):
        lookup(self.code)  # every code is declared once, in recipe/codes.py

    @property
    def title(self) -> str:
        return lookup(self.code).title

    @property
    def shown_hints(self) -> tuple[str, ...]:
        """The diagnostic's own hints, else its code's general one."""
        return self.hints or ((lookup(self.code).hint,) if lookup(self.code).hint else ())

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict:
        return {"code": self.code, "title": self.title, "severity": self.severity, "message": self.message,
                "span": self.span.to_json() if self.span else None, "hints": list(self.shown_hints)}


class RecipeError(Exception):
    """Raised to stop a stage; carries every diagnostic the stage found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.message for d in self.diagnostics))


class UserError(Exception):
    """A mistake outside a recipe file (bad path, bad flag); printed without a traceback."""


def did_you_mean(name: str, candidates: Iterable[str]) -> tuple[str, ...]:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return (f"did you mean `{close[0]}`?",) if close else ()


def column_hint(name: str, columns: Iterable[str]) -> tuple[str, ...]:
    """The hint for an unknown column: an input field the read renamed (`formats.column_name`),
    else the nearest name, else the columns there are."""
    columns = list(columns)
    kept = name.lstrip("_") + "_in_input"
    if kept in columns:
        return (f"the input's `{name}` is the column `{kept}`: recipe's own `_id`, `messages`, `instruction` and "
                f"`response` take those names, in any case (SQL names ignore case)",)
    return did_you_mean(name, columns) or (f"available: {', '.join(sorted(columns))}",)


def raise_if_errors(diags: Sequence[Diagnostic]) -> None:
    if any(d.is_error for d in diags):
        raise RecipeError(diags)


def render(diag: Diagnostic, sources: dict[str, str] | None = None) -> str:
    """Render one diagnostic; `sources` maps file name to its text for the source line."""
    out = [f"{diag.severity}[{diag.code}]: {diag.message}"]
    span = diag.span
    hints = list(diag.shown_hints)
    if span is None or span.line <= 0:
        out.extend(f"  = hint: {h}" for h in hints)
        return "\n".join(out)
    out.append(f"  --> {span.file}:{span.line}:{span.col}")
    text = (sources or {}).get(span.file)
    if text is None:
        try:
            with open(span.file, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            text = None
    lines = text.splitlines() if text is not None else []
    if 0 < span.line <= len(lines):
        src = lines[span.line - 1]
        num = str(span.line)
        pad = " " * len(num)
        end = span.end_col if span.end_line == span.line and span.end_col > span.col else len(src) + 1
        width = max(1, min(end, len(src) + 1) - span.col)
        caret = " " * (span.col - 1) + "^" * width
        first = hints.pop(0) if hints else ""
        out += [f"{pad} |", f"{num} | {src}", f"{pad} | {caret}" + (f" {first}" if first else "")]
    out.extend(f"  = hint: {h}" for h in hints)
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    return "\n\n".join(render(d, sources) for d in diags)

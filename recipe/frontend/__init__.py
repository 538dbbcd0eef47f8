"""Front ends: text (Lark) and YAML, both lowering to `ir.Recipe`."""
from __future__ import annotations

from pathlib import Path

from ..ir import Recipe


def parse_text(text: str, file: str = "<string>") -> Recipe:
    from .text import parse
    return parse(text, file)


def parse_yaml(text: str, file: str = "<string>") -> Recipe:
    from .yaml_loader import parse
    return parse(text, file)


def parse_any(text: str, file: str) -> Recipe:
    """Pick the front end from the file name (`.yaml`/`.yml`), else the text form."""
    if Path(file).suffix in (".yaml", ".yml"):
        return parse_yaml(text, file)
    return parse_text(text, file)

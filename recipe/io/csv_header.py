"""A CSV/TSV source's header row, doubted: `check` warns (W0906) when it looks like a record."""
from __future__ import annotations

from ..diagnostics import UserError
from .readers import CsvRecords, delimiter, kind_suffix, list_files


def header_doubt(path: str) -> tuple[str, int] | None:
    """Why the first CSV/TSV file of a source seems to have no header row, and its number of
    fields; or None. (Its first line,
    read as the header, looks like a record: FLAN's CoT TSVs have none, and their first
    question became a column name.) A name looks like data when it is long, holds a newline,
    ends a sentence or is a number."""
    try:
        files = [f for f in list_files(path) if kind_suffix(f) in (".csv", ".tsv")]
        if not files:
            return None
        recs = CsvRecords(files[0], delimiter(files[0]))
        try:
            names = list(recs.reader.fieldnames or [])
        finally:
            recs.close()
    except (UserError, OSError):
        return None

    def datum(n: str) -> bool:
        n = n.strip()
        try:
            float(n)
            return True
        except ValueError:
            return len(n) > 48 or "\n" in n or n.endswith(("?", ".", "!"))
    odd = [n for n in names if datum(n)]
    if not odd:
        return None
    shown = odd[0] if len(odd[0]) <= 60 else odd[0][:57] + "..."
    return (f"{files[0].name}'s first line is read as its header, but it looks like a record "
            f"(a column would be named `{shown}`)", len(names))

"""What a sink may be: the formats written and the file extensions, checked by `check`
before a run and by the writers during one."""
from __future__ import annotations

from pathlib import Path

# the record shapes `formats.from_row` writes (the others are read-only)
WRITE_FORMATS = ("jsonl", "tag_counts", "alpaca", "sharegpt", "openai", "dolly", "prompt_completion")
SINK_EXTENSIONS = (".jsonl", ".json", ".parquet", ".csv", ".tsv")


def sink_extension_problem(path: str, fmt: str) -> str | None:
    """Why a sink's file name does not fit its format (None when it does)."""
    suffix = Path(path).suffix.lower()
    if fmt == "tag_counts":
        return None if suffix == ".json" else f"`tag_counts` writes one JSON document: name the file `.json`, not `{suffix or path}`"
    if suffix not in SINK_EXTENSIONS:
        return f"cannot tell how to write `{path}`: unknown extension `{suffix}`" if suffix else \
            f"`{path}` has no extension: name it .jsonl, .json, .parquet, .csv or .tsv"
    return None

"""What a sink may be: the formats written and the file extensions, checked by `check`
before a run and by the writers during one."""
from __future__ import annotations

from pathlib import Path

# the record shapes `formats.from_row` writes (the others are read-only)
WRITE_FORMATS = ("jsonl", "tag_counts", "alpaca", "sharegpt", "openai", "dolly", "prompt_completion")
SINK_EXTENSIONS = (".jsonl", ".json", ".parquet", ".csv", ".tsv")
# a text sink may be compressed as a whole (`out.jsonl.gz`), as datasets are shipped; the
# codec's name as pyarrow's streams take it. Parquet compresses inside the file.
SINK_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


def sink_kind(path: str | Path) -> tuple[str, str | None]:
    """(the container's extension, the compression or None): `a.jsonl.gz` -> (".jsonl", ".gz")."""
    p = Path(path)
    s = p.suffix.lower()
    if s in SINK_COMPRESSIONS:
        return Path(p.stem).suffix.lower(), s
    return s, None


def sink_extension_problem(path: str, fmt: str) -> str | None:
    """Why a sink's file name does not fit its format (None when it does)."""
    suffix, packed = sink_kind(path)
    if fmt == "tag_counts":
        if suffix == ".json" and not packed:
            return None
        return f"`tag_counts` writes one JSON document: name the file `.json`, not `{''.join(Path(path).suffixes[-2:]) or path}`"
    if packed and suffix == ".parquet":
        return f"`{path}`: Parquet compresses inside the file: name it `.parquet`"
    if suffix not in SINK_EXTENSIONS:
        shown = "".join(Path(path).suffixes[-2:]) if packed else suffix
        return f"cannot tell how to write `{path}`: unknown extension `{shown}`" if suffix else \
            f"`{path}` has no extension: name it .jsonl, .json, .parquet, .csv or .tsv"
    return None


CONTAINERS = {".jsonl": "JSON lines", ".json": "a JSON array", ".parquet": "Parquet", ".csv": "CSV", ".tsv": "TSV"}


def sink_shape(path: str, fmt: str | None) -> str:
    """What a sink writes, as the plan, the card and the report show it: the records' shape (the
    format) and the file's container (its extension): `x.parquet` of rows is not "jsonl"."""
    if fmt == "tag_counts":
        return "tag counts"
    shape = "rows" if fmt in (None, "", "jsonl") else f"{fmt} records"
    kind, packed = sink_kind(str(path))
    container = CONTAINERS.get(kind)
    if container and packed:
        container += f", {SINK_COMPRESSIONS[packed]}-compressed"
    return f"{shape}, {container}" if container else shape


def shard_count(rows: int, shards: int | None, shard_rows: int | None) -> int:
    """How many files a sink of `rows` rows is written as: `shards` (no more than there are rows),
    or enough of `shard_rows` rows each; at least one."""
    if shard_rows:
        return max(1, -(-rows // shard_rows))
    return max(1, min(shards or 1, rows))


def shard_path(path: str | Path, i: int, n: int) -> Path:
    """The i-th of n files of a sharded sink, named as the Hugging Face Hub names a split's
    shards: `train.parquet` -> `train-00000-of-00004.parquet` (`a.jsonl.gz` -> `a-00000-of-00004.jsonl.gz`)."""
    p = Path(path)
    kind, packed = sink_kind(p)
    ext = kind + (packed or "")
    stem = p.name[: len(p.name) - len(ext)] if ext and p.name.lower().endswith(ext) else p.stem
    return p.with_name(f"{stem}-{i:05d}-of-{n:05d}{p.name[len(stem):]}")

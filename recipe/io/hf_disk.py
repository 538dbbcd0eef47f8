"""Hugging Face datasets saved with `save_to_disk`: a folder of Arrow files (`data-00000-of-
00001.arrow`, written in Arrow's IPC stream format) beside `state.json`, which lists them in
order, and `dataset_info.json`; a `DatasetDict` is a folder of such folders named in
`dataset_dict.json`. Read without the `datasets` library: the files are plain Arrow.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

from ..diagnostics import UserError

# the metadata files save_to_disk writes beside its Arrow files: never rows
METADATA = ("state.json", "dataset_info.json", "dataset_dict.json")


def saved_dataset_files(folder: Path) -> list[Path] | None:
    """The Arrow files of a `save_to_disk` folder, in the dataset's order (None: the folder
    is not one). A DatasetDict folder is an error that names its splits: its splits are
    usually train and test, which a recipe should not read together by accident."""
    if (folder / "dataset_dict.json").is_file():
        try:
            splits = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{folder}: a Hugging Face DatasetDict folder whose dataset_dict.json is unreadable ({e})")
        raise UserError(f"{folder} is a Hugging Face DatasetDict (splits: {', '.join(map(str, splits))}); "
                        f"read one split's folder, e.g. {folder / str(splits[0]) if splits else folder}")
    state = folder / "state.json"
    if not state.is_file() or not any(folder.glob("*.arrow")):
        return None
    try:
        names = [d["filename"] for d in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{state}: a Hugging Face save_to_disk folder whose state.json is unreadable ({e})")
    files = [folder / n for n in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UserError(f"{folder}: state.json names Arrow files that are not there: {', '.join(missing)}")
    return files


def is_metadata(path: Path) -> bool:
    """A save_to_disk metadata file (beside Arrow files), which a folder's listing skips."""
    return path.name in METADATA and any(path.parent.glob("*.arrow"))


def arrow_batches(path: Path, size: int = 8192) -> Iterator:
    """The record batches of an Arrow IPC file, stream format (what save_to_disk writes) or
    file format, at most `size` rows each."""
    import pyarrow as pa
    try:
        src = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_stream(src)
        except pa.ArrowInvalid:
            src.seek(0)
            f = pa.ipc.open_file(src)
            reader = (f.get_batch(i) for i in range(f.num_record_batches))
        while True:
            try:
                b = next(reader)
            except StopIteration:
                return
            for at in range(0, b.num_rows, size):
                yield b.slice(at, size)
    except (pa.ArrowException, OSError) as e:  # a damaged or truncated file
        raise UserError(f"{path}: not a readable Arrow file ({e})")


# a Hugging Face Hub shard (`train-00000-of-00002.parquet`) or a folder named as a split
_SHARD = re.compile(r"^(?P<split>[A-Za-z][\w.]*?)-\d{5}-of-\d{5}\.")
SPLIT_FOLDERS = ("train", "test", "validation", "valid", "dev", "eval")


def mixed_splits(files: list[Path]) -> list[str]:
    """The dataset splits a source's files belong to, when they are several (a Hub dataset's
    folder read whole mixes train and test): from Hub shard names or split-named folders.
    Empty when the files name at most one split."""
    found: dict[str, None] = {}
    for f in files:
        m = _SHARD.match(f.name)
        if m:
            found[m.group("split")] = None
        elif f.parent.name.lower() in SPLIT_FOLDERS:
            found[f.parent.name] = None
    return list(found) if len(found) > 1 else []

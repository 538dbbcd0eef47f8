"""Reading a finished run's `manifest.json` (written by engine/run.py) for the commands that
look at a run afterwards (`explain`, `report`): a folder that holds no run, or a manifest that
is not one, is one clear error instead of a traceback."""
from __future__ import annotations

import json
from pathlib import Path

from .diagnostics import UserError


def read_manifest(out: Path | str) -> dict:
    path = Path(out) / "manifest.json"
    if not Path(out).is_dir():
        raise UserError(f"no run in {out} (no such folder); give the run's --out")
    if not path.is_file():
        raise UserError(f"no run in {out} (manifest.json is missing); give the run's --out")
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path} is not a run's manifest (not JSON: {e}); re-run the recipe to write it again")
    if not isinstance(man, dict) or not isinstance(man.get("nodes"), list) or not isinstance(man.get("sinks"), list):
        raise UserError(f"{path} is not a run's manifest (it has no `nodes` and `sinks` lists); "
                        f"re-run the recipe to write it again")
    return man


def sink_files(sink: dict) -> list[str]:
    """The files a sink of the manifest wrote: its shards (`shards=`, `shard_rows=`), or its path."""
    return [f["path"] for f in sink.get("files") or []] or [sink["path"]]


def sink_shown(sink: dict, inside: bool = False) -> str:
    """A sink's file as a person reads it: a sharded sink's files as one pattern
    (`out/train-*-of-00004.parquet`, the glob the Hub's `data_files` takes); `inside`: the
    path inside --out (`train-*-of-00004.parquet`), as the recipe names it."""
    from pathlib import PurePosixPath
    files = sink_files(sink)
    shown = sink["path"]
    if sink.get("files"):
        n = len(files)
        shown = files[0].replace(f"-00000-of-{n:05d}", f"-*-of-{n:05d}", 1)
    if not inside:
        return shown
    # manifests before session 39 have no `file`: the name alone
    return str(PurePosixPath(sink["file"]).parent / Path(shown).name) if sink.get("file") else Path(shown).name


def source_entry(path: str, fingerprint: str, files: list[dict]) -> dict:
    """A source's entry in the manifest's `inputs`: its path, the key its read is cached
    under, and each file with its bytes and SHA-256 (as `sha256sum` prints it); `sha256` too
    when the source is one file."""
    entry = {"path": path, "fingerprint": fingerprint, "files": files}
    if len(files) == 1:
        entry["sha256"] = files[0]["sha256"]
    return entry

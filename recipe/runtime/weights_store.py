"""The model cache's weight folders: converted checkpoints (`dequantised/`, a GGUF made
loadable once) and fine-tuned models (`finetuned/`, ~270 MB each for SmolLM2). Each gets a
`recipe.json` saying what it was made from, and a `.used` stamp touched whenever a run loads
it, so `recipe cache --models` can list them and remove those no run has loaded for a while
(a removed folder is made again when a run needs it: converting costs seconds, training
minutes). Model results (`results.sqlite`, `emb/`) are listed, never pruned here."""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = {"dequantised": "converted", "finetuned": "fine-tuned"}
INFO, STAMP = "recipe.json", ".used"


def describe(folder: Path, what: str) -> None:
    """Say what a weight folder (still under its temporary name) was made from."""
    (Path(folder) / INFO).write_text(json.dumps({"made_from": what, "made": time.time()}), encoding="utf-8")


def made_from(folder: Path) -> str:
    """What a weight folder was made from (its path when recipe did not make it)."""
    try:
        return json.loads((Path(folder) / INFO).read_text(encoding="utf-8"))["made_from"]
    except (OSError, ValueError, KeyError):
        return str(folder)


def mark_used(folder: Path) -> None:
    """Stamp a weight folder of the model cache as loaded now (a user's own model folder is
    never written to; a read-only cache is left as it is)."""
    folder = Path(folder)
    if folder.parent.name in KINDS:
        try:
            (folder / STAMP).touch()
        except OSError:
            pass


@dataclass(frozen=True)
class Entry:
    kind: str          # converted | fine-tuned
    path: Path
    bytes: int
    made_from: str
    last_used: float   # seconds since the epoch: the stamp, else the folder's own time


def _bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _is_leftover(p: Path) -> bool:
    return ".tmp" in p.name  # a conversion or training a killed run left under its temporary name


def entries(root: Path) -> list[Entry]:
    out = []
    for sub, kind in KINDS.items():
        d = Path(root) / sub
        for p in sorted(d.iterdir()) if d.is_dir() else []:
            if not p.is_dir() or _is_leftover(p):
                continue
            what = made_from(p) if (p / INFO).exists() else "(made before recipe recorded what from)"
            stamp = p / STAMP
            used = stamp.stat().st_mtime if stamp.exists() else p.stat().st_mtime
            out.append(Entry(kind, p, _bytes(p), what, used))
    return out


def leftovers(root: Path) -> list[Path]:
    return [p for sub in KINDS for p in sorted((Path(root) / sub).glob("*.tmp*")) if p.is_dir()]


def prune(root: Path, older_than_days: float, now: float | None = None) -> tuple[list[Entry], list[Path]]:
    """Remove the weight folders no run has loaded for `older_than_days`, and the temporary
    folders of killed runs older than a day; what was removed."""
    now = time.time() if now is None else now
    gone = [e for e in entries(root) if now - e.last_used >= older_than_days * 86400]
    old_tmp = [p for p in leftovers(root) if now - p.stat().st_mtime >= 86400]
    for p in [e.path for e in gone] + old_tmp:
        shutil.rmtree(p, ignore_errors=True)
    return gone, old_tmp


def results_summary(root: Path) -> tuple[int, int, int]:
    """(scalar results, embeddings, bytes on disk) of the model-result cache."""
    import sqlite3
    db = Path(root) / "results.sqlite"
    if not db.exists():
        return 0, 0, 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        n = con.execute("SELECT count(*) FROM results").fetchone()[0]
        e = con.execute("SELECT count(*) FROM emb").fetchone()[0]
    except sqlite3.Error:
        n = e = 0
    finally:
        con.close()
    size = sum(f.stat().st_size for f in Path(root).glob("results.sqlite*")) + \
        (_bytes(Path(root) / "emb") if (Path(root) / "emb").is_dir() else 0)
    return n, e, size


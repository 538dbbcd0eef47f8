"""Files' SHA-256 digests, as `sha256sum` prints them: a source's part of its read's key and
what the manifest and the dataset card say it was. A large file's digest is remembered, in
the user's cache (`paths.user_cache_dir`), under what its `stat` says of it (size, mtime and
ctime in nanoseconds, inode, device), as git's index and make do: `recipe plan` or a rerun
over an unchanged 11 GB file reads it again only when one of those moved. ctime cannot be
set by any tool, so an edit in place is seen; a file written within the last few seconds is
not remembered (on a file system with coarse timestamps a second write in the same tick
would look unchanged: git's "racy" case)."""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .faults import atomic_write
from .paths import user_cache_dir

REMEMBER_BYTES = 8 << 20  # smaller files are hashed every time (milliseconds)
SETTLED_SECONDS = 3.0  # a file changed more recently than this is not remembered
KEPT = 4096  # entries the memo holds at most (the most recently used)


def file_digests(paths: list[Path]) -> list[str]:
    """Each file's SHA-256, the large ones remembered; files hashed on one thread per CPU
    (hashlib releases the GIL)."""
    memo = _Memo() if any(_size(p) >= REMEMBER_BYTES for p in paths) else None
    # each file's digest is remembered under its stat from before it was read: a file that
    # changes while it is hashed no longer matches that stat, so it is hashed again next time
    before = {p: memo.stat(p) for p in paths} if memo is not None else {}
    found = [memo.get(before[p]) if memo is not None else None for p in paths]
    todo = [p for p, d in zip(paths, found) if d is None]
    if len(todo) < 2:
        fresh = [digest(p) for p in todo]
    else:
        with ThreadPoolExecutor(min(len(todo), os.cpu_count() or 1)) as pool:
            fresh = list(pool.map(digest, todo))
    got = dict(zip(todo, fresh))
    if memo is not None:
        for p in todo:
            if before[p] is not None:
                memo.put(before[p], got[p])
        memo.save()
    return [d if d is not None else got[p] for p, d in zip(paths, found)]


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


class _Memo:
    """{resolved path: [size, mtime_ns, ctime_ns, inode, device, sha256, last used]} in one JSON
    file, replaced atomically; a lost race between two runs loses entries, never corrupts."""

    def __init__(self):
        self.file = user_cache_dir() / "digests.json"
        try:
            self.entries = json.loads(self.file.read_text(encoding="utf-8"))
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    @staticmethod
    def stat(p: Path) -> tuple[str, list] | None:
        """(resolved path, [size, mtime_ns, ctime_ns, inode, device]), or None (gone, small)."""
        try:
            st = os.stat(p)
        except OSError:
            return None
        if st.st_size < REMEMBER_BYTES:
            return None
        return str(Path(p).resolve()), [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]

    def get(self, found: tuple[str, list] | None) -> str | None:
        if found is None:
            return None
        e = self.entries.get(found[0])
        if not isinstance(e, list) or len(e) != 7 or e[:5] != found[1]:
            return None
        e[6], self.changed = time.time(), True
        return e[5]

    def put(self, found: tuple[str, list], sha: str) -> None:
        now = time.time()
        if now - max(found[1][1], found[1][2]) / 1e9 < SETTLED_SECONDS:
            return  # just written: a write in the same timestamp tick could follow unseen
        self.entries[found[0]] = [*found[1], sha, now]
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        if len(self.entries) > KEPT:
            keep = sorted(self.entries.items(), key=lambda kv: kv[1][6] if isinstance(kv[1], list) and len(kv[1]) == 7 else 0)
            self.entries = dict(keep[-KEPT:])
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.file, json.dumps(self.entries).encode())
        except OSError:
            pass  # a read-only cache: the digests are hashed again next time

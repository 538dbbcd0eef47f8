"""Persistent cache of model results, keyed by (model identity, call, arguments, text hash).

Scalar results (log-likelihoods, probabilities, generations, classifier scores) live in a
SQLite table as JSON; embeddings live in float16 `.npy` shards that are memory-mapped on
read, with SQLite mapping each key to (shard, row). A shard is written to a temporary name
and renamed before its keys are committed, so a crash never leaves a key without its vector.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import numpy as np


def key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode("utf-8", "surrogatepass") if isinstance(p, str) else json.dumps(p, sort_keys=True).encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class ResultCache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "emb").mkdir(exist_ok=True)
        self.db = sqlite3.connect(str(self.root / "results.sqlite"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS results (k TEXT PRIMARY KEY, v TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (k TEXT PRIMARY KEY, shard TEXT, row INTEGER)")
        self._shards: dict[str, np.ndarray] = {}

    # ---- scalar results ------------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, object]:
        out = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT k, v FROM results WHERE k IN ({','.join('?' * len(chunk))})"
            out.update({k: json.loads(v) for k, v in self.db.execute(q, chunk).fetchall()})
        return out

    def put_many(self, items: dict[str, object]) -> None:
        if not items:
            return
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?)",
                            [(k, json.dumps(v)) for k, v in items.items()])
        self.db.execute("COMMIT")

    # ---- embeddings ----------------------------------------------------------------
    def get_embeddings(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, tuple[str, int]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT k, shard, row FROM emb WHERE k IN ({','.join('?' * len(chunk))})"
            found.update({k: (s, r) for k, s, r in self.db.execute(q, chunk).fetchall()})
        out = {}
        for k, (shard, row) in found.items():
            arr = self._shard(shard)
            if arr is not None:
                out[k] = np.asarray(arr[row], dtype=np.float32)
        return out

    def _shard(self, name: str):
        if name not in self._shards:
            p = self.root / "emb" / name
            if not p.exists():
                return None
            self._shards[name] = np.load(p, mmap_mode="r")
        return self._shards[name]

    def put_embeddings(self, keys: list[str], vecs: np.ndarray) -> None:
        if not keys:
            return
        name = key(*keys)[:32] + ".npy"
        final = self.root / "emb" / name
        tmp = final.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            np.save(fh, vecs.astype(np.float16))
        os.replace(tmp, final)
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                            [(k, name, i) for i, k in enumerate(keys)])
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

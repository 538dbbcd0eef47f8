"""The facts a report shows, gathered from a finished run: its manifest and set_aside.jsonl,
and, where the step cache still holds the run, each step's table (numeric columns before and
after each step that removed rows, tags, sample rows, embeddings of kept and removed rows).
Large tables are sampled (every k-th row, so the sample is the same on every call)."""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..manifest import read_manifest

MAX_VALUES = 50_000   # numeric values per column and step drawn in a histogram
SAMPLES = 5           # kept and removed rows shown per step
MAP_ROWS = 2_000      # rows placed on the 2-D map of embeddings
SKIP = {"_id", "_row", "_parents", "messages"}


@dataclass
class Facts:
    manifest: dict
    cached: bool                       # whether the step cache held the run
    note: str = ""                     # why the cache-based sections are missing, if they are
    distributions: list[dict] = field(default_factory=list)  # {step, column, before, after}
    tags: dict[str, int] = field(default_factory=dict)
    removed: dict[str, list[dict]] = field(default_factory=dict)  # step -> [{_id, reason, instruction}]
    kept: dict[str, list[dict]] = field(default_factory=dict)     # step -> [{_id, instruction, ...}]
    embedding_map: dict | None = None  # {x, y, kept, ids, source}
    usage: dict[str, dict] = field(default_factory=dict)  # step -> model requests, computed, tokens


def collect(out: Path, cache_dir: Path | None, model_cache: Path | None = None) -> Facts:
    man = read_manifest(out)
    facts = Facts(man, cached=False)
    facts.removed = _removed(out / "set_aside.jsonl")
    if man.get("engine") == "ray" and cache_dir:
        from ..engine.ray_store import cache_views
        con = cache_views(cache_dir, man)
        if con is not None:
            try:
                _from_cache(con, man, facts, model_cache)
            finally:
                con.close()
            return facts
    db = cache_dir / "cache.duckdb" if cache_dir else None
    if db is None or not db.exists():
        facts.note = "the step cache is not available: give the run's --cache-dir for distributions, tags and kept rows"
        return facts
    import duckdb
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as e:
        facts.note = f"cannot open the step cache ({str(e).splitlines()[0]}); is a run still using it?"
        return facts
    try:
        _from_cache(con, man, facts, model_cache)
    finally:
        con.close()
    return facts


def _removed(path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                got = out.setdefault(rec["node"], [])
                if len(got) < SAMPLES:
                    got.append({"_id": rec["_id"], "reason": rec["reason"]})
    return out


def _from_cache(con, man: dict, facts: Facts, model_cache) -> None:
    from ..engine.sql import quote_ident as q
    from ..engine.store import Store
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    tables = {n["name"]: Store.table(n["fingerprint"]) for n in man["nodes"] if "fingerprint" in n}
    if not tables or any(t not in have for t in tables.values()):
        facts.note = "the step cache no longer holds this run (another --cache-dir, or re-run since)"
        return
    facts.cached = True
    fps = {n["fingerprint"]: n["name"] for n in man["nodes"] if "fingerprint" in n}
    try:  # what each step asked of its models, as the run recorded it
        for fp, usage in con.execute("SELECT fp, usage FROM _steps WHERE usage IS NOT NULL").fetchall():
            if fp in fps:
                facts.usage[fps[fp]] = json.loads(usage)
    except Exception:  # a cache from before steps recorded model usage
        pass
    cols = {name: _columns(con, t) for name, t in tables.items()}
    for n in man["nodes"]:
        name, inputs = n["name"], [i for i in n["inputs"] if i in tables]
        facts.kept[name] = _rows(con, tables[name], cols[name], SAMPLES)
        if inputs and n["rows_out"] < n["rows_in"]:
            before = inputs[0]
            for c, kind in cols[before].items():
                if kind == "num" and c in cols[name]:
                    facts.distributions.append({
                        "step": name, "column": c,
                        "before": _numbers(con, tables[before], c), "after": _numbers(con, tables[name], c)})
        for rec in facts.removed.get(name, []):  # the removed rows' text, from the step's input
            for i in inputs:
                got = con.execute(f"SELECT instruction FROM {q(tables[i])} WHERE _id = ? LIMIT 1",
                                  [rec["_id"]]).fetchone() if "instruction" in cols[i] else None
                if got:
                    rec["instruction"] = got[0]
                    break
    final = [s["step"] for s in man.get("sinks", []) if s.get("step") in tables]
    for step in dict.fromkeys(final):
        if cols[step].get("tags") == "list":
            for (tag, count) in con.execute(
                    f"SELECT t, count(*) FROM (SELECT unnest(tags) AS t FROM {q(tables[step])}) GROUP BY t "
                    "ORDER BY count(*) DESC, t LIMIT 40").fetchall():
                facts.tags[str(tag)] = facts.tags.get(str(tag), 0) + int(count)
    facts.embedding_map = _embedding_map(con, man, tables, cols, final, model_cache)


def _columns(con, table: str) -> dict[str, str]:
    """Column name -> num | list | text | other."""
    out = {}
    for name, typ in con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall():
        if name in SKIP:
            continue
        t = typ.upper()
        out[name] = ("num" if t in ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "DECIMAL") or t.startswith("DECIMAL")
                     else "list" if t.endswith("[]") else "text" if t == "VARCHAR" else "other")
    return out


def _every(con, table: str, limit: int) -> str:
    """A WHERE clause taking every k-th row so that at most `limit` rows come back."""
    from ..engine.sql import quote_ident as q
    n = con.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]
    k = max(1, -(-n // limit))
    return f"_row % {k} = 0"


def _numbers(con, table: str, column: str) -> list[float]:
    from ..engine.sql import quote_ident as q
    where = _every(con, table, MAX_VALUES)
    rows = con.execute(f"SELECT CAST({q(column)} AS DOUBLE) FROM {q(table)} WHERE {where} "
                       f"AND {q(column)} IS NOT NULL").fetchall()
    return [float(r[0]) for r in rows if np.isfinite(r[0])]


def _rows(con, table: str, cols: dict, limit: int) -> list[dict]:
    from ..engine.sql import quote_ident as q
    shown = ["_id"] + [c for c, k in cols.items() if k in ("text", "num", "list")][:6]
    cur = con.execute(f"SELECT {', '.join(q(c) for c in shown)} FROM {q(table)} ORDER BY _row LIMIT {int(limit)}")
    return [dict(zip(shown, r)) for r in cur.fetchall()]


def _embedding_map(con, man, tables, cols, final, model_cache) -> dict | None:
    """Kept rows (in a sink) against removed ones (read but not written), placed by the
    first two principal components of their embeddings: the recipe's embedding model
    through the runtime (its results are cached from the run), else hashed word counts."""
    from ..engine.sql import quote_ident as q
    first = next((n["name"] for n in man["nodes"] if n["op"] == "read" and n["name"] in tables), None)
    if first is None or "instruction" not in cols[first]:
        return None
    where = _every(con, tables[first], MAP_ROWS)
    rows = con.execute(f"SELECT _id, instruction FROM {q(tables[first])} WHERE {where} ORDER BY _row").fetchall()
    if len(rows) < 3:
        return None
    kept_ids: set[str] = set()
    for step in dict.fromkeys(final):
        kept_ids |= {r[0] for r in con.execute(f"SELECT _id FROM {q(tables[step])}").fetchall()}
    ids, texts = [r[0] for r in rows], [r[1] or "" for r in rows]
    e, source = _embed(man, texts, model_cache)
    e = e - e.mean(axis=0)
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    xy = e @ vt[:2].T
    return {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "kept": [i in kept_ids for i in ids],
            "ids": ids, "source": source}


def _embed(man: dict, texts: list[str], model_cache) -> tuple[np.ndarray, str]:
    model = next(((name, m) for name, m in man.get("models", {}).items() if m.get("kind") == "embedding"), None)
    if model is not None:
        try:
            from ..runtime import ModelRuntime
            rt = ModelRuntime(model_cache)
            decl = {"kind": "embedding", "source": model[1]["source"], "options": {}, "identity": model[1]["identity"]}
            return np.asarray(rt.embed(decl, texts), dtype=np.float64), f"embeddings of `{model[0]}` ({model[1]['source']})"
        except Exception as e:  # a model the report cannot load here: fall back, and say so
            reason = f"; `{model[0]}` could not be loaded here: {str(e).splitlines()[0][:120]}"
    else:
        reason = "; the recipe declares no embedding model"
    dim = 256
    e = np.zeros((len(texts), dim))
    for i, t in enumerate(texts):
        for w in t.lower().split():
            e[i, zlib.crc32(w.encode("utf-8")) % dim] += 1.0
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9), "hashed word counts" + reason

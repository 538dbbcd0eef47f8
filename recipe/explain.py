"""`recipe explain`: one row's own path through a finished run, with what each step gave it.

The manifest names each step's fingerprint and inputs; the step tables in the cache hold
the row as each step left it. A step is on the row's path when one of its inputs holds the
row; the path ends where a step set it aside (with that step's reason) or at a sink.
"""
from __future__ import annotations

import json
from pathlib import Path

from .diagnostics import UserError
from .manifest import read_manifest
from .engine.sql import quote_ident as q

SKIP = {"_id", "messages", "_row"}  # `_row`: the engine's row order, not data


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    s = json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


class NotCached(Exception):
    """The step cache does not hold this run's steps (another cache dir, or pruned)."""


def explain(out: Path, row: str, cache_dir: Path) -> list[str]:
    """Lines that tell where `row` went and why, step by step."""
    man = read_manifest(out)
    if man.get("engine") == "ray":
        from .engine.ray_store import cache_views
        con = cache_views(cache_dir, man)
        if con is None:
            raise UserError(f"the step cache {cache_dir} does not hold this Ray run's steps; give its --cache-dir")
        try:
            return _walk(con, man, row)
        finally:
            con.close()
    db = Path(cache_dir) / "cache.duckdb"
    if not db.exists():
        raise UserError(f"the step cache {cache_dir} is gone; re-run the recipe (or give its --cache-dir)")
    import duckdb
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as e:
        raise UserError(f"cannot open the step cache {cache_dir}: {str(e).splitlines()[0]}")
    try:
        return _walk(con, man, row)
    finally:
        con.close()


def _get(con, table: str, row: str) -> dict | None:
    try:
        cur = con.execute(f"SELECT * FROM {q(table)} WHERE _id = ? LIMIT 1", [row])
    except Exception:  # a table dropped since the run (the cache was pruned)
        return None
    vals = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], vals)) if vals else None


def _walk(con, man: dict, row: str) -> list[str]:
    from .engine.store import Store
    if man["nodes"] and "fingerprint" in man["nodes"][0]:
        have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if any(Store.table(n["fingerprint"]) not in have for n in man["nodes"]):
            raise NotCached()
    state: dict[str, dict] = {}  # step -> the row as it left that step
    lines: list[str] = []
    for n in man["nodes"]:
        if "fingerprint" not in n:
            raise UserError("this run's manifest predates `explain` paths; run the recipe again")
        before = next((state[i] for i in n["inputs"] if i in state), None)
        fp = n["fingerprint"]
        if n["inputs"] and before is None:
            made = _get(con, Store.table(fp), row) if n.get("rows_created") else None
            if made is not None:  # a row this step created (fuse, split_turns): its path starts here
                state[n["name"]] = made
                parents = made.get("_parents")
                lines.append(f"{n['name']} ({n['op']}): created" + (f" from {', '.join(parents)}" if parents else "")
                             + (f"; instruction={_short(made['instruction'])}" if "instruction" in made else ""))
            continue  # else the row never reached this step
        after = _get(con, Store.table(fp), row)
        if after is not None:
            state[n["name"]] = after
            changed = {k: v for k, v in after.items() if k not in SKIP and (before is None or before.get(k) != v)}
            if before is None:
                shown = ", ".join(f"{k}={_short(after[k])}" for k in ("instruction",) if k in after)
                lines.append(f"{n['name']} ({n['op']}): read" + (f"; {shown}" if shown else ""))
            else:
                lines.append(f"{n['name']} ({n['op']}): kept" +
                             (": " + ", ".join(f"{k}={_short(v)}" for k, v in changed.items()) if changed else ""))
            continue
        aside = _get(con, Store.aside(fp), row)
        if aside:
            lines.append(f"{n['name']} ({n['op']}): set aside: {aside['reason']}")
        elif before is not None:
            lines.append(f"{n['name']} ({n['op']}): not in its output")
    if not lines:
        raise UserError(f"row `{row}` is not in this run (ids look like `{_example_id(con, man)}`)")
    # every sink whose step holds the row: set aside on one branch, it may be written by another
    from .manifest import sink_shown
    lines += [f"written to {sink_shown(s)}" for s in man.get("sinks", []) if s.get("step") in state]
    return lines


def _example_id(con, man) -> str:
    from .engine.store import Store
    first = man["nodes"][0]
    try:
        got = con.execute(f"SELECT _id FROM {q(Store.table(first['fingerprint']))} LIMIT 1").fetchone()
    except Exception:
        got = None
    return got[0] if got else "source:0"

"""What a cache directory holds, and pruning it: `recipe cache [--prune]`.

A cache only grows: every edit of a step adds that step's tables (a 1M-row read is 1.2 GB)
and nothing removes the old ones. Pruning keeps, for each step name, the step its latest
run finished (what `recipe plan`, `explain` and `report` read) and every step those read
rows through (a step's view reads its input's tables; a Ray view block reads its base
block), and removes every other step, and tables a killed run left without a record.
DuckDB does not give a dropped table's space back to the file system, so the database is
then copied into a new file (same row order, row-group size and compression), which
replaces the old one. Both engines' caches are pruned; the cache's lock is held throughout,
so no run can use it meanwhile.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .store import DUCKDB_MEMORY, ROW_GROUP_SIZE, cache_compression, lock_cache, unlock_cache

# every table of a step is named by a letter and the first 24 hex digits of its fingerprint
_NAME = re.compile(r"\b[tma]_([0-9a-f]{24})(?:__rows|__raw)?\b")


@dataclass
class StepEntry:
    engine: str
    name: str
    op: str
    fp: str
    rows_out: int
    seconds: float
    keep: bool = False  # some name's latest step, or read through by one


@dataclass
class CacheReport:
    steps: list[StepEntry] = field(default_factory=list)
    orphans: int = 0          # tables or block folders without a finished step's record
    bytes_before: int = 0
    bytes_after: int | None = None  # after pruning; None when nothing was pruned

    @property
    def removed(self) -> list[StepEntry]:
        return [s for s in self.steps if not s.keep]


def inspect(cache_dir: str | Path, prune: bool = False) -> CacheReport:
    """The cache's steps, each marked kept or not; with `prune`, the others removed."""
    d = Path(cache_dir)
    if not d.is_dir():
        raise FileNotFoundError(d)
    report = CacheReport(bytes_before=folder_bytes(d))
    fh = lock_cache(d)
    try:
        if (d / "cache.duckdb").exists():
            _duckdb(d, report, prune)
        if (d / "ray" / "steps").is_dir():
            _ray(d / "ray", report, prune)
    finally:
        unlock_cache(fh)
    if prune and (report.removed or report.orphans):
        report.bytes_after = folder_bytes(d)
    return report


def _closure(keep: set[str], reads: dict[str, set[str]]) -> set[str]:
    todo, seen = list(keep), set(keep)
    while todo:
        for r in reads.get(todo.pop(), ()):
            if r not in seen:
                seen.add(r)
                todo.append(r)
    return seen


# ---- the DuckDB engine's database ---------------------------------------------------------
def _duckdb(d: Path, report: CacheReport, prune: bool) -> None:
    import duckdb
    path = d / "cache.duckdb"
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    # the copy spills as a run does: memory bounded by the same limit, not DuckDB's 80% of RAM
    con.execute("SET temp_directory = ?", [str(d / "spill")])
    con.execute("SET memory_limit = ?", [os.environ.get("RECIPE_DUCKDB_MEMORY") or DUCKDB_MEMORY])
    try:
        con.execute(f"ATTACH {_literal(path)} AS cache")
        con.execute("USE cache")
        steps = con.execute("SELECT fp, name, op, rows_out, seconds FROM _steps").fetchall()
        latest = {fp[:24] for (fp,) in con.execute("SELECT fp FROM _last").fetchall()}
        reads: dict[str, set[str]] = {}
        for name, sql in con.execute("SELECT view_name, sql FROM duckdb_views() "
                                     "WHERE database_name = 'cache' AND NOT internal").fetchall():
            m = _NAME.fullmatch(name)
            if m:
                reads.setdefault(m.group(1), set()).update(x for x in _NAME.findall(sql or "") if x != m.group(1))
        keep = _closure(latest, reads)
        entries = [StepEntry("duckdb", n, op, fp, rows or 0, secs or 0.0, fp[:24] in keep)
                   for fp, n, op, rows, secs in steps]
        report.steps += entries
        recorded = {e.fp[:24] for e in entries}
        objects = con.execute("SELECT table_name, table_type FROM information_schema.tables "
                              "WHERE table_catalog = 'cache'").fetchall()
        orphans = {m.group(1) for t, _ in objects if (m := _NAME.fullmatch(t))} - recorded - keep
        report.orphans += len(orphans)
        gone = {e.fp[:24] for e in entries if not e.keep} | orphans
        if not prune or not gone:
            return
        # views first, then tables; no kept view names a dropped one (the closure above)
        for kind in ("VIEW", "BASE TABLE"):
            for t, typ in objects:
                m = _NAME.fullmatch(t)
                if m and m.group(1) in gone and typ == kind:
                    con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS \"{t}\"")
        for e in entries:
            if not e.keep:
                con.execute("DELETE FROM _steps WHERE fp = ?", [e.fp])
        con.execute("CHECKPOINT")
        _compact(con, d)
    finally:
        con.close()


def _compact(con, d: Path) -> None:
    """Copy the database into a new file and put it in the old one's place: dropped tables'
    blocks are free inside the old file but the file keeps its size."""
    new = d / "cache.compact.duckdb"
    for p in (new, Path(str(new) + ".wal")):
        p.unlink(missing_ok=True)
    con.execute(f"ATTACH {_literal(new)} AS fresh (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
    con.execute("SET preserve_insertion_order = true")  # rows stay in `_row` order
    con.execute("SET force_compression = ?", [cache_compression()])
    con.execute("COPY FROM DATABASE cache TO fresh")
    con.execute("USE memory")
    con.execute("DETACH fresh")
    con.execute("DETACH cache")
    os.replace(new, d / "cache.duckdb")
    Path(str(d / "cache.duckdb") + ".wal").unlink(missing_ok=True)


# ---- the Ray engine's blocks ---------------------------------------------------------------
def _ray(r: Path, report: CacheReport, prune: bool) -> None:
    from .ray_block_io import VIEW_OF
    import pyarrow.parquet as pq
    records = {}
    for p in (r / "steps").glob("*.json"):
        rec = json.loads(p.read_text())
        records[rec["fp"][:24]] = (p, rec)
    latest = {json.loads(p.read_text())["fp"][:24] for p in (r / "last").glob("*.json")}
    reads: dict[str, set[str]] = {}
    folders = [p for p in r.iterdir() if p.is_dir() and re.fullmatch(r"[ta]_[0-9a-f]{24}", p.name)]
    for f in folders:
        if f.name.startswith("t_"):
            for b in sorted(f.glob("*.parquet")):
                base = (pq.read_schema(b).metadata or {}).get(VIEW_OF)
                if base:
                    reads.setdefault(f.name[2:], set()).add(Path(base.decode()).parts[0][2:])
    keep = _closure(latest, reads)
    entries = [StepEntry("ray", rec["name"], rec["op"], rec["fp"], rec.get("rows_out") or 0,
                         rec.get("seconds") or 0.0, fp in keep) for fp, (_, rec) in records.items()]
    report.steps += entries
    orphans = {f.name[2:] for f in folders} - set(records) - keep
    report.orphans += len(orphans)
    if not prune:
        return
    gone = {e.fp[:24] for e in entries if not e.keep} | orphans
    # pieces of a one-file sink a killed driver left (the cache's lock says no run is writing)
    shutil.rmtree(r / "sinks", ignore_errors=True)
    for fp in gone:  # the record first: a step without it is unfinished, never read
        if fp in records:
            records[fp][0].unlink(missing_ok=True)
        for kind in ("t_", "a_"):
            shutil.rmtree(r / f"{kind}{fp}", ignore_errors=True)


def _literal(p: Path) -> str:
    """A path as an SQL string literal (ATTACH takes no bound parameters)."""
    return "'" + str(p).replace("'", "''") + "'"


def folder_bytes(d: Path) -> int:
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total

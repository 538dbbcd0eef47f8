"""The cache directory: one DuckDB database of step tables, guarded by a lock file.

A step writes its tables outside any transaction (DuckDB holds a transaction's appended
rows in memory until it commits, so a step in one transaction costs memory in proportion
to its output); its row in `_steps`, written in one transaction after the tables are
complete, is what makes it finished. A run killed at any moment leaves either a finished
step or tables without a `_steps` row, which the next run drops and rebuilds.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import duckdb

from ..diagnostics import UserError
from .sql import register_functions


DUCKDB_MEMORY = "768MB"
ROW_GROUP_SIZE = 16_384


def cache_compression() -> str:
    """How step tables are stored: `uncompressed` (default, fastest) or, with
    RECIPE_CACHE_COMPRESSION=auto, compressed as DuckDB sees fit."""
    want = (os.environ.get("RECIPE_CACHE_COMPRESSION") or "uncompressed").strip().lower()
    if want not in ("uncompressed", "auto"):
        raise UserError(f"RECIPE_CACHE_COMPRESSION={want!r}: use `auto` (compressed, a smaller cache) "
                        f"or `uncompressed` (the default, faster)")
    return want


def lock_cache(d: Path):
    """Take the cache directory's lock (one run at a time, whichever engine); returns the
    open lock file, to pass to `unlock_cache` when done."""
    fh = open(d / "lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        who = fh.read().strip() or "another process"
        fh.close()
        raise UserError(f"the cache directory {d} is in use by a running `recipe run` ({who}); "
                        f"wait for it or pass another --cache-dir")
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}")
    fh.flush()
    return fh


def unlock_cache(fh) -> None:
    try:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
    except (OSError, ValueError):
        pass


class Store:
    def __init__(self, cache_dir: str | Path):
        self.dir = Path(cache_dir)
        compression = cache_compression()  # a bad setting fails before the cache is locked
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create cache directory {self.dir}: {e.strerror}")
        self._lock_fh = lock_cache(self.dir)
        # Rows reach DuckDB only as registered Arrow tables (our readers parse the files), so
        # the database never needs the file system or network: a translation bug or a hostile
        # expression cannot read /etc/passwd. External access goes off once the cache file is
        # attached, and lock_configuration keeps it off.
        self.con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                      "autoload_known_extensions": False})
        self.con.execute("SET temp_directory = ?", [str(self.dir / "spill")])
        # small row groups: DuckDB buffers the row groups a statement is appending, so their
        # size bounds what a step's writes hold in memory (122,880 rows of P3 text by default)
        path = str(self.dir / "cache.duckdb").replace("'", "''")
        self.con.execute(f"ATTACH '{path}' AS cache (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        self.con.execute("USE cache")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute("SET enable_progress_bar = false")  # our own progress goes to stderr
        register_functions(self.con)
        # DuckDB caches step tables in memory up to its limit and spills beyond it; its own
        # default (80% of RAM) would make a run's memory grow with its rows, so the limit is
        # 768 MB unless RECIPE_DUCKDB_MEMORY says otherwise (tests/test_memory.py runs at 128MB; at
        # 1M rows 1 GB cost 250 MB more peak and no time)
        self.con.execute("SET memory_limit = ?", [os.environ.get("RECIPE_DUCKDB_MEMORY") or DUCKDB_MEMORY])
        self.con.execute("CREATE TABLE IF NOT EXISTS _steps (fp VARCHAR PRIMARY KEY, name VARCHAR, op VARCHAR, "
                         "rows_in BIGINT, rows_created BIGINT, rows_out BIGINT, rows_set_aside BIGINT, "
                         "seconds DOUBLE, info VARCHAR)")
        # what each step asked of its models (JSON), for `recipe plan`'s estimates; added to
        # caches made before it existed
        self.con.execute("ALTER TABLE _steps ADD COLUMN IF NOT EXISTS usage VARCHAR")
        # what each step's key was made of, for rates fitted over all its runs (not only a name's latest)
        self.con.execute("ALTER TABLE _steps ADD COLUMN IF NOT EXISTS parts VARCHAR")
        self.con.execute("CREATE TABLE IF NOT EXISTS _last (name VARCHAR PRIMARY KEY, fp VARCHAR, parts VARCHAR)")
        # step tables are written once and read once or twice: compressing them (FSST on the
        # texts) cost more than it saved (1M P3 rows: the read 5.7 s -> 4.6 s, the cache 1.0
        # -> 1.2 GB, later scans no slower); RECIPE_CACHE_COMPRESSION=auto, for a user short
        # of disk, lets DuckDB compress them again
        self.con.execute("SET force_compression = ?", [compression])
        self.con.execute("SET lock_configuration = true")

    @staticmethod
    def table(fp: str) -> str:
        return f"t_{fp[:24]}"

    @staticmethod
    def aside(fp: str) -> str:
        return f"a_{fp[:24]}"

    # ---- what the run loop (engine/run.py) asks of an engine ---------------------------
    engine = "duckdb"

    def table_of(self, fp: str):
        """A finished (or the running) step's rows as a `Table`."""
        from .duck import DuckTable
        return DuckTable(self.con, self.table(fp))

    def output(self, fp: str, params: dict):
        """The `Output` a step's kernel builds its table through."""
        from .duck import DuckOutput
        return DuckOutput(self.con, self.table(fp), self.aside(fp), params)

    def read(self, fp: str, ctx, source: str, args: dict, log) -> None:
        """The read step: a source's files into the step's table."""
        from .read import read_source
        read_source(self.con, self.table(fp), self.aside(fp), ctx, source, args, log)

    # ---- one step: its tables, then its row in `_steps` ---------------------------------
    def begin_step(self, fp: str) -> None:
        from .tables import ASIDE_DDL
        self._drop(fp)  # what a killed run left half-written
        self.con.execute(f"CREATE TABLE {self.aside(fp)} {ASIDE_DDL}")

    def _drop(self, fp: str) -> None:
        """A step's rows (a table, or a view over its input and its stored mask, or a read's
        view over its stored rows), mask and set-aside rows."""
        from .duck import mask_table
        from .tables import raw_view, rows_table
        t = self.table(fp)
        kind = self.con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ? "
                                "AND table_catalog = current_database()", [t]).fetchall()
        self.con.execute(f"DROP {'VIEW' if kind and kind[0][0] == 'VIEW' else 'TABLE'} IF EXISTS {t}")
        self.con.execute(f"DROP TABLE IF EXISTS {mask_table(t)}")
        self.con.execute(f"DROP TABLE IF EXISTS {rows_table(t)}")
        self.con.execute(f"DROP VIEW IF EXISTS {raw_view(t)}")
        self.con.execute(f"DROP TABLE IF EXISTS {self.aside(fp)}")

    def record_step(self, step, counts: tuple[int, int, int, int], seconds: float, info: dict,
                    usage: dict | None = None) -> None:
        """The step's accounting (rows in, created, out, set aside), its model usage and what
        its key was made of; takes effect at `commit`."""
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute("INSERT OR REPLACE INTO _steps (fp, name, op, rows_in, rows_created, rows_out, rows_set_aside, "
                         "seconds, info, usage, parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [step.fingerprint, step.name, step.op, *counts, seconds, json.dumps(info, sort_keys=True),
                          json.dumps(usage) if usage else None, json.dumps(step.parts, sort_keys=True, default=str)])
        self.used(step)

    def used(self, step) -> None:
        """A step served from the cache is its name's latest run too: `recipe plan` compares
        with it, and `recipe cache --prune` keeps it."""
        self.con.execute("INSERT OR REPLACE INTO _last VALUES (?, ?, ?)",
                         [step.name, step.fingerprint, json.dumps(step.parts, sort_keys=True, default=str)])

    def commit(self) -> None:
        self.con.execute("COMMIT")

    def rollback(self, fp: str) -> None:
        """A failed step: no `_steps` row, no tables."""
        try:
            self.con.execute("ROLLBACK")
        except Exception:  # no transaction was open: the step failed before record_step
            pass
        self._drop(fp)

    def aside_batches(self, fp: str, size: int = 10_000):
        """A step's set-aside rows (Arrow tables of `_id, reason, raw`), in order, `size` at a time."""
        import pyarrow as pa
        # an append-only log: DuckDB returns it in insertion order (preserve_insertion_order)
        res = self.con.execute(f"SELECT _id, reason, raw FROM {self.aside(fp)}")
        reader = res.to_arrow_reader(size) if hasattr(res, "to_arrow_reader") else res.fetch_record_batch(size)
        for b in reader:
            yield pa.Table.from_batches([b])

    def aside_count(self, fp: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM {self.aside(fp)}").fetchall()[0][0]

    def done(self, fp: str) -> dict | None:
        rows = self.con.execute("SELECT rows_in, rows_created, rows_out, rows_set_aside, seconds, info "
                                "FROM _steps WHERE fp = ?", [fp]).fetchall()
        if not rows:
            return None
        r = rows[0]
        return {"rows_in": r[0], "rows_created": r[1], "rows_out": r[2], "rows_set_aside": r[3],
                "seconds": r[4], "info": json.loads(r[5] or "{}")}

    def history(self) -> list[dict]:
        """Every finished step in the cache that is some name's latest run: its parts (op,
        models), rows, seconds and model usage; what `recipe plan` estimates from."""
        rows = self.con.execute("SELECT l.parts, s.rows_in, s.rows_out, s.seconds, s.usage, s.name FROM _last l "
                                "JOIN _steps s ON s.fp = l.fp").fetchall()
        return [{"parts": json.loads(p), "rows_in": a, "rows_out": b, "seconds": t,
                 "usage": json.loads(u) if u else None, "name": n} for p, a, b, t, u, n in rows]

    def runs(self) -> list[dict]:
        """Every finished step in the cache, as `history` gives a name's latest (steps recorded
        before steps kept their parts count where they are some name's latest): the runs of
        several sizes that a step's rates are fitted over."""
        rows = self.con.execute("SELECT coalesce(s.parts, l.parts), s.rows_in, s.rows_out, s.seconds, s.usage, s.name "
                                "FROM _steps s LEFT JOIN _last l ON l.fp = s.fp "
                                "WHERE coalesce(s.parts, l.parts) IS NOT NULL").fetchall()
        return [{"parts": json.loads(p), "rows_in": a, "rows_out": b, "seconds": t,
                 "usage": json.loads(u) if u else None, "name": n} for p, a, b, t, u, n in rows]

    def last_parts(self, name: str) -> dict | None:
        rows = self.con.execute("SELECT parts FROM _last WHERE name = ?", [name]).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            unlock_cache(self._lock_fh)

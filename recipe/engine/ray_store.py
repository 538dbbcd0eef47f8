"""The Ray engine's step cache: Parquet blocks under CACHE_DIR/ray, keyed by the same
fingerprints as the DuckDB engine's, and a JSON record per finished step.

A step writes its blocks (t_<fp>/) and set-aside blocks (a_<fp>/) first; its record
(steps/<fp>.json, written atomically after the blocks are complete) is what makes it
finished. A driver killed at any moment leaves finished steps or blocks without a record,
which the next run removes and rebuilds. Same lock file as the DuckDB engine's cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..diagnostics import UserError
from ..faults import atomic_write
from . import ray_blocks as rb
from .store import lock_cache, unlock_cache

BLOCK_ROWS = 65_536  # rows per block: a task's unit of work and of retry


def start_ray(address: str | None = None) -> None:
    """Connect to a cluster (`auto`, or ray://HOST:10001) or start a local instance."""
    try:
        import ray
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'recipe[ray]' (make setup installs it)")
    if ray.is_initialized():
        return
    if address and address != "auto":
        _reachable(address)
    kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address:
        kw["address"] = address
    elif os.environ.get("RECIPE_RAY_CPUS"):
        kw["num_cpus"] = int(os.environ["RECIPE_RAY_CPUS"])
    if address and address.startswith("ray://"):
        # `ray start` turns token authentication on when a token exists (RAY_AUTH_TOKEN or
        # ~/.ray/auth_token), and Ray Client sends it only in token mode, which a driver
        # connecting through `auto` gets by itself and a client does not (Ray 2.60 timed out)
        try:
            from ray._private.authentication.authentication_token_setup import (
                maybe_enable_token_auth_if_token_available)
        except ImportError:  # a Ray without token authentication
            pass
        else:
            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    for attempt in range(3):
        try:
            ray.init(**kw)
            return
        except ConnectionError as e:
            # a Ray Client head starts a server for each client, and under load that start can
            # fail once ("Starting Ray client server failed"; or "Initialization failure from
            # server" when its proxier met a zombie process: both seen in full test runs): try again
            if any(m in str(e) for m in ("Starting Ray client server failed", "Initialization failure from server")) \
                    and attempt < 2:
                time.sleep(2)
                continue
            raise UserError(f"cannot reach the Ray cluster at {address}: {e} (is the head's client port open? a "
                            f"cluster with token authentication needs its token: RAY_AUTH_TOKEN or ~/.ray/auth_token)")


def _reachable(address: str, timeout: float = 5.0) -> None:
    """A cluster address whose port does not answer is one clear error at once (Ray itself
    retried for minutes, printing its own warnings, before giving up)."""
    import socket
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: write HOST:PORT (ray://HOST:10001 for Ray Client, HOST:6379 for the "
                        f"head's own address), or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(f"cannot reach the Ray cluster at {address}: {e.strerror or e} (is it started? `ray start "
                        f"--head` on the head; Ray Client listens on port 10001)") from None


class RayStore:
    engine = "ray"

    def __init__(self, cache_dir: str | Path, address: str | None = None):
        self.root = Path(cache_dir).resolve()
        self.dir = self.root / "ray"
        try:
            (self.dir / "steps").mkdir(parents=True, exist_ok=True)
            (self.dir / "last").mkdir(exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create cache directory {self.root}: {e.strerror}")
        self._lock_fh = lock_cache(self.root)
        self.block_rows = int(os.environ.get("RECIPE_RAY_BLOCK_ROWS") or BLOCK_ROWS)
        self._pending = None
        start_ray(address)

    @classmethod
    def reader(cls, cache_dir: str | Path) -> "RayStore":
        """What the cache holds, for `recipe plan`: no Ray, no lock (the DuckDB store of the
        same directory may hold it), nothing written."""
        st = cls.__new__(cls)
        st.root = Path(cache_dir).resolve()
        st.dir, st._lock_fh, st._pending = st.root / "ray", None, None
        return st

    def write_files(self, parts: list, fmt: str | None, options: dict) -> list:
        """A sharded sink's files, a task each (`run._write_one` over the rows `RayTable.rows_between`
        reads from the blocks): the workers write them side by side, not the driver one by one.
        On a cluster --out must be storage every node sees, as the cache is."""
        from .ray_table import gather, remote
        from .run import _write_one
        return gather([remote(_write_one).remote(part, path, fmt, options) for path, part in parts])

    def write_joined(self, table, path: Path, fmt: str | None, options: dict):
        """A one-file JSON-lines sink (uncompressed: each line stands alone, so pieces written
        apart and joined are the file written whole), its rows cut into a piece per CPU that
        tasks write beside the cache, joined into the file by the driver as bytes: the rows
        never pass through the driver as values. None where the sink is not such a file or
        too small to split (the caller writes it whole)."""
        import ray
        from ..faults import atomic_file
        from .ray_table import gather, remote
        from .run import _write_one
        from ..io.sinks import sink_kind
        if sink_kind(path) != (".jsonl", None) or not hasattr(table, "files"):
            return None
        n = table.count()
        k = max(1, min(int(ray.available_resources().get("CPU", 1)), len(table.files())))
        if k < 2 or n < 2 * self.block_rows:
            return None
        cuts = [i * n // k for i in range(k + 1)]
        tmp = self.dir / "sinks"
        tmp.mkdir(exist_ok=True)
        pieces = [tmp / f"{path.name}.{os.getpid()}.{i}.jsonl" for i in range(k)]
        try:
            done = gather([remote(_write_one).remote(table.rows_between(cuts[i], cuts[i + 1]), pieces[i], fmt, options)
                           for i in range(k)])
            with atomic_file(path, "wb") as fh:
                for p in pieces:
                    with open(p, "rb") as src:
                        shutil.copyfileobj(src, fh, 1 << 22)
        finally:
            for p in pieces:
                p.unlink(missing_ok=True)
        from .run import summed_writes
        return summed_writes(done)

    def _t(self, fp: str) -> Path:
        return self.dir / f"t_{fp[:24]}"

    def _a(self, fp: str) -> Path:
        return self.dir / f"a_{fp[:24]}"

    # ---- what the run loop asks of an engine ----------------------------------------------
    def table_of(self, fp: str):
        from .ray_table import RayTable
        return RayTable(self._t(fp))

    def output(self, fp: str, params: dict):
        from .ray_table import RayOutput
        return RayOutput(self._t(fp), self._a(fp), params, self.block_rows)

    def read(self, fp: str, ctx, source: str, args: dict, log) -> None:
        """In tasks, a piece of the source each; else on the driver (engine/ray_read.py)."""
        from ..io.readers import list_files
        from .ray_read import pieces_of, read_in_tasks, read_on_driver
        pieces = pieces_of(self, source, args, list_files(args["path"]), log)
        if pieces and read_in_tasks(self, fp, ctx, source, args, pieces, log):
            return
        read_on_driver(self, fp, ctx, source, args, log)

    def pmap(self, fn, arglist: list) -> list:
        from .ray_table import ray_map
        return ray_map(fn, arglist)

    # ---- one step: its blocks, then its record ---------------------------------------------
    def begin_step(self, fp: str) -> None:
        self._drop(fp)  # what a killed run left half-written
        self._t(fp).mkdir(parents=True)
        self._a(fp).mkdir(parents=True)

    def _drop(self, fp: str) -> None:
        shutil.rmtree(self._t(fp), ignore_errors=True)
        shutil.rmtree(self._a(fp), ignore_errors=True)

    def record_step(self, step, counts, seconds: float, info: dict, usage: dict | None = None) -> None:
        self._pending = (step, {"fp": step.fingerprint, "name": step.name, "op": step.op,
                                **dict(zip(("rows_in", "rows_created", "rows_out", "rows_set_aside"), counts)),
                                "seconds": seconds, "info": info, "usage": usage, "parts": step.parts})

    def commit(self) -> None:
        step, rec = self._pending
        self._pending = None
        atomic_write(self.dir / "steps" / f"{step.fingerprint}.json", json.dumps(rec, sort_keys=True, default=str).encode())
        self.used(step)

    def used(self, step) -> None:
        """The step is its name's latest run (run now, or served from the cache)."""
        atomic_write(self._last(step.name), json.dumps({"name": step.name, "fp": step.fingerprint,
                                                         "parts": step.parts}, sort_keys=True, default=str).encode())

    def rollback(self, fp: str) -> None:
        self._pending = None
        self._drop(fp)

    def _last(self, name: str) -> Path:
        return self.dir / "last" / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".json")

    def _aside_files(self, fp: str) -> list[str]:
        return rb.files_of(self._a(fp))

    def aside_batches(self, fp: str, size: int = 10_000):
        for f in self._aside_files(fp):
            for b in pq.ParquetFile(f).iter_batches(batch_size=size, columns=["_id", "reason", "raw"]):
                yield pa.Table.from_batches([b])

    def aside_count(self, fp: str) -> int:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self._aside_files(fp))

    def done(self, fp: str) -> dict | None:
        p = self.dir / "steps" / f"{fp}.json"
        if not p.exists() or not self._t(fp).is_dir():
            return None
        r = json.loads(p.read_text())
        return {k: r[k] for k in ("rows_in", "rows_created", "rows_out", "rows_set_aside", "seconds")} | {"info": r["info"] or {}}

    def history(self) -> list[dict]:
        out = []
        for p in (self.dir / "last").glob("*.json"):
            last = json.loads(p.read_text())
            s = self.dir / "steps" / f"{last['fp']}.json"
            if s.exists():
                r = json.loads(s.read_text())
                out.append({"parts": last["parts"], "rows_in": r["rows_in"], "rows_out": r["rows_out"],
                            "seconds": r["seconds"], "usage": r["usage"], "name": r["name"]})
        return out

    def runs(self) -> list[dict]:
        """Every finished step with its parts (as the DuckDB store's `runs`): steps recorded
        before they kept their parts count where they are some name's latest."""
        latest = {(last := json.loads(p.read_text()))["fp"]: last["parts"] for p in (self.dir / "last").glob("*.json")}
        out = []
        for p in (self.dir / "steps").glob("*.json"):
            r = json.loads(p.read_text())
            parts = r.get("parts") or latest.get(r["fp"])
            if parts is not None:
                out.append({"parts": parts, "rows_in": r["rows_in"], "rows_out": r["rows_out"],
                            "seconds": r["seconds"], "usage": r["usage"], "name": r["name"]})
        return out

    def last_parts(self, name: str) -> dict | None:
        p = self._last(name)
        return json.loads(p.read_text())["parts"] if p.exists() else None

    def close(self) -> None:
        if self._lock_fh is not None:
            unlock_cache(self._lock_fh)


def cache_views(cache_dir: str | Path, manifest: dict):
    """A read-only DuckDB view of a Ray run's step cache, with the DuckDB engine's table names
    (t_/a_ + fingerprint), for `recipe explain` and `recipe report`; None when the cache
    does not hold the run's steps."""
    import duckdb
    root = Path(cache_dir).resolve() / "ray"
    con = duckdb.connect(":memory:")
    for n in manifest.get("nodes", []):
        fp = n.get("fingerprint", "")
        for prefix in ("t", "a"):
            files = rb.files_of(root / f"{prefix}_{fp[:24]}")
            if not files:
                if prefix == "t":
                    con.close()
                    return None
                continue
            con.execute(f'CREATE VIEW "{prefix}_{fp[:24]}" AS ' + " UNION ALL ".join(_block_sql(f) for f in files))
    # the views read the cache's blocks and nothing else may be read
    con.execute("SET allowed_directories = ?", [[str(root) + os.sep]])
    con.execute("SET enable_external_access = false")
    return con


def _block_sql(f: str) -> str:
    """A block's rows in SQL, as `read_block` reads them: a view's by their positions in its
    base block, flagged two-turn conversations rebuilt."""
    from ..io.arrow_alpaca import TWO
    from .tables import TWO_TURNS

    def lit(p) -> str:
        return "'" + str(p).replace("'", "''") + "'"
    meta = pq.read_schema(f).metadata or {}
    view = rb.VIEW_OF in meta
    base = Path(f).parent.parent / meta[rb.VIEW_OF].decode() if view else f
    rows = f"read_parquet({lit(base)}, file_row_number = true)"
    if view:
        rows = f"(SELECT * FROM {rows} WHERE file_row_number IN (SELECT __pos FROM read_parquet({lit(f)})))"
    if TWO in pq.read_schema(base).names:
        return (f"(SELECT * EXCLUDE (file_row_number, {TWO}) REPLACE (CASE WHEN {TWO} THEN {TWO_TURNS} "
                f"ELSE messages END AS messages) FROM {rows} ORDER BY file_row_number)")
    return f"(SELECT * EXCLUDE (file_row_number) FROM {rows} ORDER BY file_row_number)"


class EitherCache:
    """What `recipe plan` reads: a step is cached when either engine's cache holds it (a
    project may run on both); the latest parts of a name come from whichever has them."""

    def __init__(self, stores: list):
        self.stores = stores

    def done(self, fp: str) -> dict | None:
        return next((d for st in self.stores if (d := st.done(fp))), None)

    def history(self) -> list[dict]:
        return [h for st in self.stores for h in st.history()]

    def runs(self) -> list[dict]:
        return [h for st in self.stores for h in st.runs()]

    def last_parts(self, name: str) -> dict | None:
        return next((p for st in self.stores if (p := st.last_parts(name))), None)

    def close(self) -> None:
        for st in self.stores:
            st.close()

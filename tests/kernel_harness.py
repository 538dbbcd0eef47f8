"""Engines under the kernel test suite (tests/test_kernels.py): each harness makes input
tables from rows, an output for one step, and reads back what the step produced.

An engine that implements recipe/table.py adds a harness here and passes the suite."""
from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa

from recipe.engine.duck import DuckOutput, DuckTable
from recipe.engine.tables import ASIDE_DDL, RowWriter, arrow_of
from recipe.table import KernelContext


class DuckHarness:
    name = "duckdb"

    def __init__(self):
        self.con = duckdb.connect()
        self.con.execute("SET preserve_insertion_order = true")
        self._n = itertools.count()

    def table(self, rows: list[dict]):
        """A step table holding `rows` (each with an `_id`), as the read step writes it."""
        name = f"t{next(self._n)}"
        w = RowWriter(self.con, name)
        for r in rows:
            r = dict(r)
            w.add(r.pop("_id"), r)
        w.close()
        return DuckTable(self.con, name)

    def context(self, params: dict | None = None, models: dict | None = None, runtime=None) -> KernelContext:
        i = next(self._n)
        self.con.execute(f"CREATE TABLE a{i} {ASIDE_DDL}")
        out = DuckOutput(self.con, f"o{i}", f"a{i}", params or {})
        return KernelContext(out, f"step{i}", params or {}, models or {}, (lambda: runtime))

    def result(self, ctx: KernelContext):
        """(the output as a Table, [(_id, reason)] set aside, in order)."""
        aside = self.con.execute(f"SELECT _id, reason FROM {ctx.out.aside}").fetchall()
        return DuckTable(self.con, ctx.out.out), aside

    def close(self):
        self.con.close()


HARNESSES = [DuckHarness]


def rows_of(table) -> list[dict]:
    return table.arrow(table.columns()).to_pylist()


def arrow_col(values, type_=None) -> pa.Table:
    return pa.table({"v": pa.array(values, type_)})


class RayHarness:
    """The Ray engine: tables cut into blocks of 3 rows, so that every operation crosses
    block bounds; block work runs as tasks on a local Ray instance."""
    name = "ray"

    def __init__(self):
        import tempfile
        from pathlib import Path
        from recipe.engine.ray_store import start_ray
        start_ray()
        self.dir = Path(tempfile.mkdtemp(prefix="ray-harness-"))
        self.duck = DuckHarness()
        self._n = itertools.count()

    def table(self, rows: list[dict]):
        from recipe.engine import ray_blocks as rb
        from recipe.engine.ray_table import RayTable
        src = self.duck.table(rows)
        d = self.dir / f"t{next(self._n)}"
        d.mkdir()
        t = arrow_of(self.duck.con.execute(f"SELECT * FROM {src.name}"))
        for i, s in enumerate(range(0, max(t.num_rows, 1), 3)):
            rb.write_atomic(t.slice(s, 3), str(d / rb.block_name(i)))
        return RayTable(d)

    def context(self, params: dict | None = None, models: dict | None = None, runtime=None) -> KernelContext:
        from recipe.engine.ray_table import RayOutput
        i = next(self._n)
        (self.dir / f"o{i}").mkdir()
        (self.dir / f"a{i}").mkdir()
        from recipe.engine.ray_table import ray_map
        out = RayOutput(self.dir / f"o{i}", self.dir / f"a{i}", params or {}, block_rows=3)
        return KernelContext(out, f"step{i}", params or {}, models or {}, (lambda: runtime), pmap=ray_map)

    def result(self, ctx: KernelContext):
        import pyarrow.parquet as pq
        from recipe.engine import ray_blocks as rb
        from recipe.engine.ray_table import RayTable
        aside = []
        for f in rb.files_of(ctx.out.asidedir):
            t = pq.read_table(f)
            aside += list(zip(t.column("_id").to_pylist(), t.column("reason").to_pylist()))
        return RayTable(ctx.out.outdir), aside

    def close(self):
        import shutil
        self.duck.close()
        shutil.rmtree(self.dir, ignore_errors=True)


try:
    import ray  # noqa: F401  (an optional extra; make setup installs it)
    HARNESSES.append(RayHarness)
except ImportError:
    pass

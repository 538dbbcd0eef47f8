"""Engines under the kernel test suite (tests/test_kernels.py): each harness makes input
tables from rows, an output for one step, and reads back what the step produced.

An engine that implements recipe/table.py adds a harness here and passes the suite."""
from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa

from recipe.engine.duck import DuckOutput, DuckTable
from recipe.engine.tables import ASIDE_DDL, RowWriter
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

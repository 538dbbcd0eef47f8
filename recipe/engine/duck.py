"""The table interface (recipe/table.py) on DuckDB tables.

Row identity and order are an explicit `_row BIGINT` column, strictly increasing in a
table's order (dense when a step renumbers, sparse after a filter); kernels never see it:
they address rows by position, and this module maps positions to `_row` values.

Every table is written in `_row` order (statements whose plan can reorder rows, joins and
windows, end in `ORDER BY _row`), and the connection preserves insertion order, so scans
and filters read in `_row` order without a sort: a sort of a whole table would hold it in
memory (a streamed `ORDER BY` over 200 MB did not fit a 256 MB limit).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..table import Output, Table
from ..syntax import to_text  # noqa: F401  (reasons quote expressions as written)
from .sql import normalised_sql, quote_ident as q, sync_messages_sql, text_sql, to_sql

ROW = "_row"


class DuckTable(Table):
    def __init__(self, con, name: str):
        self.con, self.name = con, name

    def columns(self) -> list[str]:
        return [r[0] for r in self.con.execute(f"DESCRIBE {q(self.name)}").fetchall() if r[0] != ROW]

    def count(self) -> int:
        return self.con.execute(f"SELECT count(*) FROM {q(self.name)}").fetchall()[0][0]

    def arrow(self, cols: Sequence[str]) -> pa.Table:
        return self.con.execute(f"SELECT {_sel(cols)} FROM {q(self.name)}").to_arrow_table()

    def batches(self, cols: Sequence[str], size: int = 20_000) -> Iterator[pa.Table]:
        cur = self.con.cursor()  # its own cursor: the kernel may write while it reads
        res = cur.execute(f"SELECT {_sel(cols)} FROM {q(self.name)}")
        reader = res.to_arrow_reader(size) if hasattr(res, "to_arrow_reader") else res.fetch_record_batch(size)
        for b in reader:
            yield pa.Table.from_batches([b])

    def row_ids(self) -> np.ndarray:
        """The `_row` value of each position."""
        t = self.con.execute(f"SELECT {ROW} FROM {q(self.name)}").to_arrow_table()
        return t.column(0).to_numpy()


def _sel(cols: Sequence[str]) -> str:
    return ", ".join(q(c) for c in cols) if cols else "NULL AS __none"


class DuckOutput(Output):
    """Creates the step's table `out` and appends to its set-aside table `aside`
    (`_id, reason, raw`), inside the step's transaction."""

    def __init__(self, con, out: str, aside: str, params: dict):
        self.con, self.out, self.aside, self.params = con, out, aside, params
        self.made = False

    def _make(self) -> None:
        if self.made:
            raise RuntimeError("a kernel built its output twice")
        self.made = True

    def _arrow(self, name: str, tbl: pa.Table):
        self.con.register(name, tbl)
        return name

    # ---- building the output --------------------------------------------------------
    def filter(self, src, cond, reason):
        self._make()
        sql, binds = to_sql(cond, self.params)
        s = q(src.name)
        self.con.execute(f"CREATE TABLE {q(self.out)} AS SELECT * FROM {s} WHERE coalesce({sql}, false)", binds)
        self.con.execute(f"INSERT INTO {q(self.aside)} SELECT _id, ?, NULL FROM {s} "
                         f"WHERE NOT coalesce({sql}, false)", [reason] + binds)

    def derive(self, src, columns, cast=None):
        self._make()
        cast = cast or {}
        existing = set(src.columns())
        sels, binds, replaced = [], [], []
        for name, e in columns.items():
            sql, b = to_sql(e, self.params)
            if name in ("instruction", "response") or cast.get(name) == "text":  # conversation text: never null
                sql = f"coalesce(CAST({sql} AS VARCHAR), '')"
            elif cast.get(name) == "float":
                sql = f"CAST({sql} AS DOUBLE)"
            sels.append(f"{sql} AS {q(name)}")
            binds += b
            if name in existing:
                replaced.append(q(name))
        excl = f" EXCLUDE ({', '.join(replaced)})" if replaced else ""
        self.con.execute(f"CREATE TABLE {q(self.out)} AS SELECT *{excl}, {', '.join(sels)} FROM {q(src.name)}",
                         binds)
        if "instruction" in columns or "response" in columns:
            # the conversation is the text writers and operators read: keep it in step
            self.con.execute(f"UPDATE {q(self.out)} SET messages = "
                             f"{sync_messages_sql('instruction' in columns, 'response' in columns)}")

    def add_columns(self, src, new, drop=None):
        self._make()
        if new.num_rows != src.count():
            raise RuntimeError(f"add_columns: {new.num_rows} values for {src.count()} rows")
        names = new.column_names
        replace = [n for n in names if n in set(src.columns())]
        excl = f" EXCLUDE ({', '.join(q(n) for n in replace)})" if replace else ""
        tbl = new.append_column("__r", pa.array(src.row_ids(), pa.int64()))
        drop = drop or {}
        why = [None] * new.num_rows
        for i, reason in drop.items():
            why[i] = reason
        tbl = tbl.append_column("__drop", pa.array(why, pa.string()))
        self._arrow("__new", tbl)
        sel = ", ".join(f"n.{q(n)}" for n in names)
        self.con.execute(f"CREATE TABLE {q(self.out)} AS SELECT s.*{excl}, {sel} FROM {q(src.name)} s "
                         f"JOIN __new n ON s.{ROW} = n.__r WHERE n.__drop IS NULL ORDER BY s.{ROW}")
        if drop:
            self.con.execute(f"INSERT INTO {q(self.aside)} SELECT s._id, n.__drop, NULL FROM {q(src.name)} s "
                             f"JOIN __new n ON s.{ROW} = n.__r WHERE n.__drop IS NOT NULL ORDER BY s.{ROW}")
        self.con.unregister("__new")

    def keep(self, src, positions, reasons):
        self._make()
        self._keep_into(src, positions, reasons, self.out, renumber=True)

    def _keep_into(self, src, positions, reasons, target: str, renumber: bool) -> None:
        rows = src.row_ids()
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(rows) or len(np.unique(pos)) != len(pos)):
            raise RuntimeError(f"keep: positions must be distinct and within 0..{len(rows) - 1}")
        k = pa.table({"__r": pa.array(rows[pos], pa.int64()), "__ord": pa.array(np.arange(len(pos), dtype=np.int64))})
        self._arrow("__keep", k)
        new_row = f"k.__ord AS {ROW}" if renumber else f"s.{ROW}"
        self.con.execute(f"CREATE TABLE {q(target)} AS SELECT s.* EXCLUDE ({ROW}), {new_row} FROM {q(src.name)} s "
                         f"JOIN __keep k ON s.{ROW} = k.__r ORDER BY k.__ord")
        if isinstance(reasons, str):
            self.con.execute(f"INSERT INTO {q(self.aside)} SELECT s._id, ?, NULL FROM {q(src.name)} s "
                             f"ANTI JOIN __keep k ON s.{ROW} = k.__r ORDER BY s.{ROW}", [reasons])
        else:
            r = pa.table({"__r": pa.array(rows[np.asarray(list(reasons.keys()), dtype=np.int64)], pa.int64()),
                          "__reason": pa.array(list(reasons.values()), pa.string())})
            self._arrow("__reasons", r)
            self.con.execute(f"INSERT INTO {q(self.aside)} SELECT s._id, coalesce(r.__reason, 'not kept'), NULL "
                             f"FROM {q(src.name)} s ANTI JOIN __keep k ON s.{ROW} = k.__r "
                             f"LEFT JOIN __reasons r ON s.{ROW} = r.__r ORDER BY s.{ROW}")
            self.con.unregister("__reasons")
        self.con.unregister("__keep")

    def concat(self, srcs, keep=None, reasons=None):
        self._make()
        parts = []
        for i, t in enumerate(srcs):
            name = t.name
            if keep is not None and keep[i] is not None:
                name = f"__c{i}"
                self._keep_into(t, sorted(keep[i]), reasons[i], name, renumber=False)
            parts.append(f"SELECT *, {i} AS __src FROM {q(name)}")
        union = " UNION ALL BY NAME ".join(parts)
        self.con.execute(f"CREATE TEMP TABLE __u AS SELECT *, row_number() OVER (PARTITION BY _id ORDER BY __src, {ROW}) "
                         f"AS __rn FROM ({union})")
        self.con.execute(f"CREATE TABLE {q(self.out)} AS SELECT * EXCLUDE (__src, {ROW}, __rn), "
                         f"row_number() OVER (ORDER BY __src, {ROW}) - 1 AS {ROW} FROM __u "
                         f"WHERE __rn = 1 ORDER BY __src, {ROW}")
        self.con.execute(f"INSERT INTO {q(self.aside)} SELECT _id, 'duplicate `_id`: already taken from an earlier input', "
                         f"NULL FROM __u WHERE __rn > 1 ORDER BY __src, {ROW}")
        self.con.execute("DROP TABLE __u")
        for i in range(len(srcs)):
            self.con.execute(f"DROP TABLE IF EXISTS __c{i}")

    def distinct(self, src, on, keep):
        """A window over the normalised text, so no text leaves the database (DuckDB spills)."""
        self._make()
        text = text_sql(on)
        key = normalised_sql(text)
        if keep == "first":
            rank = ROW
        elif keep == "longest":
            rank = f"length({text}) DESC, {ROW}"
        else:
            how, col = keep.split(":", 1)
            rank = f"TRY_CAST({q(col)} AS DOUBLE) {'DESC' if how == 'max' else 'ASC'} NULLS LAST, {ROW}"
        con, s = self.con, q(src.name)
        con.execute(f"CREATE TEMP TABLE __dd AS SELECT {ROW} AS __r, _id AS __id, "
                    f"first_value(_id) OVER (PARTITION BY {key} ORDER BY {rank}) AS __win, "
                    f"row_number() OVER (PARTITION BY {key} ORDER BY {rank}) AS __n FROM {s}")
        con.execute(f"CREATE TABLE {q(self.out)} AS SELECT s.* FROM {s} s SEMI JOIN "
                    f"(SELECT __r FROM __dd WHERE __n = 1) d ON s.{ROW} = d.__r ORDER BY s.{ROW}")
        con.execute(f"INSERT INTO {q(self.aside)} SELECT __id, 'duplicate of ' || __win || ?, NULL FROM __dd "
                    f"WHERE __n > 1 ORDER BY __r", [f" (exact on {on})"])
        groups = con.execute("SELECT count(*) FROM __dd WHERE __n = 1").fetchall()[0][0]
        con.execute("DROP TABLE __dd")
        return groups

    def rows(self, tbl):
        self._make()
        tbl = tbl.append_column(ROW, pa.array(np.arange(tbl.num_rows, dtype=np.int64)))
        self._arrow("__rows", tbl)
        self.con.execute(f"CREATE TABLE {q(self.out)} AS SELECT * FROM __rows")
        self.con.unregister("__rows")

    def set_aside(self, items):
        if items:
            t = pa.table({"_id": pa.array([i for i, _ in items], pa.string()),
                          "reason": pa.array([r for _, r in items], pa.string())})
            self._arrow("__aside", t)
            self.con.execute(f"INSERT INTO {q(self.aside)} SELECT _id, reason, NULL FROM __aside")
            self.con.unregister("__aside")

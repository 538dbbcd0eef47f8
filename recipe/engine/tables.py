"""Moving rows between Python/Arrow and DuckDB tables, in insertion order.

DuckDB keeps insertion order for table scans, and `rowid` is a table's physical row
number, so "the order of a table" is always `ORDER BY rowid`; every helper here keeps it.
"""
from __future__ import annotations

import json
from typing import Iterable

import pyarrow as pa

from ..expr import quote_ident as q

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
CORE = [("_id", pa.string()), ("messages", MESSAGES), ("instruction", pa.string()), ("response", pa.string())]
ASIDE_DDL = "(_id VARCHAR, reason VARCHAR, raw VARCHAR)"
SQL_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
             pa.list_(pa.string()): "VARCHAR[]"}


def infer_type(values: list) -> pa.DataType:
    vals = [v for v in values if v is not None]
    if not vals:
        return pa.string()
    if all(isinstance(v, bool) for v in vals):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return pa.float64()
    if all(isinstance(v, str) for v in vals):
        return pa.string()
    if all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in vals):
        return pa.list_(pa.string())
    return pa.string()  # nested values are kept as JSON text


def fits(t: pa.DataType, v) -> bool:
    if v is None:
        return True
    if t == pa.bool_():
        return isinstance(v, bool)
    if t == pa.int64():
        return isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63
    if t == pa.float64():
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == pa.list_(pa.string()):
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    return True


def coerce(t: pa.DataType, v):
    if v is None:
        return None
    if t == pa.string() and not isinstance(v, str):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    if t == pa.float64():
        return float(v)
    return v


class RowWriter:
    """Appends canonical rows to a new table in chunks; the first chunk sets the schema and
    later chunks widen it (new columns, wider types) as their rows need."""

    def __init__(self, con, table: str, chunk: int = 20000):
        self.con, self.table, self.chunk = con, table, chunk
        self.buf: list[tuple[str, dict]] = []
        self.schema: pa.Schema | None = None
        self.rejected: list[tuple[str, str]] = []
        self.count = 0

    def add(self, rid: str, row: dict) -> None:
        self.buf.append((rid, row))
        if len(self.buf) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.buf and self.schema is not None:
            return
        extras: dict[str, list] = {}
        for _, row in self.buf:
            for k, v in row.items():
                if k not in ("messages", "instruction", "response"):
                    extras.setdefault(k, []).append(v)
        if self.schema is None:
            self.schema = pa.schema(CORE + [(k, infer_type(v)) for k, v in extras.items()])
        else:
            self._widen(extras)
        cols: dict[str, list] = {f.name: [] for f in self.schema}
        for rid, row in self.buf:
            for f in self.schema:
                cols[f.name].append(rid if f.name == "_id" else coerce(f.type, row.get(f.name)))
        tbl = pa.table(cols, schema=self.schema)
        self.con.register("__chunk", tbl)
        if self.count == 0 and not self._exists():
            self.con.execute(f"CREATE TABLE {q(self.table)} AS SELECT * FROM __chunk")
        else:
            self.con.execute(f"INSERT INTO {q(self.table)} BY NAME SELECT * FROM __chunk")
        self.con.unregister("__chunk")
        self.count += tbl.num_rows
        self.buf = []

    def _widen(self, extras: dict[str, list]) -> None:
        """Columns first seen in this chunk are added (earlier rows get null); a column whose
        values no longer fit its type is widened (int to float, anything else to JSON text),
        with the rows already written converted, so no row is lost to a schema guess."""
        for k, vals in extras.items():
            if k not in self.schema.names:
                t = infer_type(vals)
                if self.count or self._exists():
                    self.con.execute(f"ALTER TABLE {q(self.table)} ADD COLUMN {q(k)} {SQL_TYPES[t]}")
                self.schema = self.schema.append(pa.field(k, t))
                continue
            cur = self.schema.field(k).type
            if all(fits(cur, v) for v in vals):
                continue
            new = pa.float64() if cur == pa.int64() and infer_type(vals) in (pa.int64(), pa.float64()) else pa.string()
            if self.count or self._exists():
                using = f"to_json({q(k)})::VARCHAR" if cur == pa.list_(pa.string()) else f"CAST({q(k)} AS {SQL_TYPES[new]})"
                self.con.execute(f"ALTER TABLE {q(self.table)} ALTER {q(k)} SET DATA TYPE {SQL_TYPES[new]} USING {using}")
            self.schema = self.schema.set(self.schema.get_field_index(k), pa.field(k, new))

    def _exists(self) -> bool:
        return bool(self.con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?",
                                     [self.table]).fetchall())

    def close(self) -> None:
        self.flush()


def count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {q(table)}").fetchall()[0][0]


def columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {q(table)}").fetchall()]


def fetch(con, table: str, cols: Iterable[str]) -> pa.Table:
    sel = ", ".join(q(c) for c in cols)
    return con.execute(f"SELECT {sel} FROM {q(table)} ORDER BY rowid").to_arrow_table()


def keep_rows(con, src: str, out: str, aside: str, keep: list[int], reasons: dict[int, str] | str,
              node: str = "") -> None:
    """Create `out` from the rows of `src` at positions `keep` (in that order); every other
    row goes to `aside` with its reason (one string for all, or per position)."""
    import numpy as np
    k = pa.table({"__pos": pa.array(np.asarray(keep, dtype=np.int64)),
                  "__ord": pa.array(np.arange(len(keep), dtype=np.int64))})
    con.register("__keep", k)
    con.execute(f"CREATE TABLE {q(out)} AS SELECT s.* FROM {q(src)} s JOIN __keep k ON s.rowid = k.__pos ORDER BY k.__ord")
    if isinstance(reasons, str):
        con.execute(f"INSERT INTO {q(aside)} SELECT s._id, ?, NULL FROM {q(src)} s "
                    f"WHERE s.rowid NOT IN (SELECT __pos FROM __keep) ORDER BY s.rowid", [reasons])
    else:
        r = pa.table({"__pos": pa.array(list(reasons.keys()), pa.int64()),
                      "__reason": pa.array(list(reasons.values()), pa.string())})
        con.register("__reasons", r)
        con.execute(f"INSERT INTO {q(aside)} SELECT s._id, coalesce(r.__reason, 'not kept'), NULL FROM {q(src)} s "
                    f"LEFT JOIN __reasons r ON s.rowid = r.__pos "
                    f"WHERE s.rowid NOT IN (SELECT __pos FROM __keep) ORDER BY s.rowid")
        con.unregister("__reasons")
    con.unregister("__keep")


def add_columns(con, src: str, out: str, new: pa.Table) -> None:
    """Create `out` = `src` plus (or with replaced) the columns of `new`, row for row."""
    existing = set(columns(con, src))
    names = new.column_names
    replace = [n for n in names if n in existing]
    excl = f" EXCLUDE ({', '.join(q(n) for n in replace)})" if replace else ""
    import numpy as np
    tbl = new.append_column("__pos", pa.array(np.arange(new.num_rows, dtype=np.int64)))
    con.register("__new", tbl)
    sel = ", ".join(f"n.{q(n)}" for n in names)
    con.execute(f"CREATE TABLE {q(out)} AS SELECT s.*{excl}, {sel} FROM {q(src)} s "
                f"JOIN __new n ON s.rowid = n.__pos ORDER BY s.rowid")
    con.unregister("__new")

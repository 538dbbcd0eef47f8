"""Writing a read step's rows into a DuckDB table: canonical columns, widening schemas, and
the `_row` column (0..n-1 in read order) that carries row identity and order."""
from __future__ import annotations

import json

import pyarrow as pa

from ..io.arrow_alpaca import TWO
from ..io.formats import same_name
from .sql import quote_ident as q

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
CORE = [("_id", pa.string()), ("messages", MESSAGES), ("instruction", pa.string()), ("response", pa.string())]
ASIDE_DDL = "(_id VARCHAR, reason VARCHAR, raw VARCHAR)"
# a column of nested values (objects, lists that are not all text), or of values whose types
# conflict, is a JSON column: sinks write each value back as it was (as text it was a string)
JSON = pa.json_()
SQL_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
             pa.list_(pa.string()): "VARCHAR[]", JSON: "JSON"}


def json_names(res) -> list[str]:
    """The JSON columns of a DuckDB result: DuckDB hands them to Arrow as plain text (its
    `arrow_lossless_conversion` would keep them, but turns booleans into `bool8` too)."""
    return [d[0] for d in res.description if str(d[1]) == "JSON"]


def with_json(tbl: pa.Table, names: list[str]) -> pa.Table:
    """`tbl` with the columns `names` typed as JSON (their storage, text, unchanged)."""
    for name in names:
        i = tbl.schema.get_field_index(name)
        col = tbl.column(i)
        tbl = tbl.set_column(i, pa.field(name, JSON), pa.chunked_array(
            [pa.ExtensionArray.from_storage(JSON, c) for c in col.chunks], JSON))
    return tbl


def arrow_of(res) -> pa.Table:
    """A DuckDB result as an Arrow table, JSON columns as JSON."""
    names = json_names(res)
    return with_json(res.to_arrow_table(), names)


def arrow_batches(res, size: int):
    """A DuckDB result as Arrow tables of up to `size` rows, JSON columns as JSON."""
    names = json_names(res)
    reader = res.to_arrow_reader(size) if hasattr(res, "to_arrow_reader") else res.fetch_record_batch(size)
    for b in reader:
        yield with_json(pa.Table.from_batches([b]), names)


def json_text(v) -> str:
    """A value's JSON in a JSON column (keys in the input's order)."""
    return json.dumps(v, ensure_ascii=False)


def infer_type(values: list) -> pa.DataType:
    vals = [v for v in values if v is not None]
    if not vals:
        return pa.string()
    if all(isinstance(v, bool) for v in vals):
        return pa.bool_()
    if any(isinstance(v, int) and not -2**63 <= v < 2**63 for v in vals):
        return JSON  # a whole number beyond 64 bits: exact as JSON (as a float it lost its digits)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return pa.float64()
    if all(isinstance(v, str) for v in vals):
        return pa.string()
    if all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in vals):
        return pa.list_(pa.string())
    # any other mix (an object, text beside numbers, a list beside text): every value as its
    # JSON, so each keeps its own type in the sinks (as text, a 1 came out as "1")
    return JSON


def fits(t: pa.DataType, v) -> bool:
    if v is None or t == JSON:
        return True
    if t == pa.bool_():
        return isinstance(v, bool)
    if t == pa.int64():
        return isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63
    if t == pa.float64():
        return isinstance(v, float) or isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63
    if t == pa.list_(pa.string()):
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    return isinstance(v, str)  # anything else widens a text column to JSON


def coerce(t: pa.DataType, v):
    if v is None:
        return None
    if t == JSON:
        return json_text(v)
    if t == pa.float64():
        return float(v)
    return v


def rows_table(view: str) -> str:
    """The stored rows behind a read step's view (`RowWriter`)."""
    return view + "__rows"


def raw_view(view: str) -> str:
    """The rows of a step's view before conversations are rebuilt (`__d` and the stored,
    possibly null, `messages`), where the step's rows are its read's rows through masks."""
    return view + "__raw"


def rebuilt_sql(raw: str) -> str:
    """A step's rows from its raw relation: `__d` gone, each two-turn conversation rebuilt."""
    return (f"SELECT * EXCLUDE (__d) REPLACE (CASE WHEN __d THEN {TWO_TURNS} ELSE messages END AS messages) "
            f"FROM {q(raw)}")


# a row's conversation when it is its instruction and response, which is most rows
TWO_TURNS = ("[struct_pack(role := 'user', content := instruction), "
             "struct_pack(role := 'assistant', content := response)]")


class RowWriter:
    """Appends canonical rows to a new table in chunks; the first chunk sets the schema and
    later chunks widen it (new columns, wider types) as their rows need.

    The rows are stored in `rows_table(view)` and read through `view`. A conversation that
    is just the row's instruction and response (every Alpaca row) is not stored twice: its
    `messages` is stored as null with `__d` set, and the view rebuilds it (storing it made the
    read's insert and its cache twice as large: 3.4 s and 495 MB for 200k P3 rows, 1.6 s and
    218 MB without)."""

    def __init__(self, con, view: str, chunk: int = 20000, row_group: int = 16_384):
        self.con, self.view, self.chunk, self.row_group = con, view, chunk, row_group
        self.table = rows_table(view)
        self.buf: list[tuple[str, dict]] = []
        self.schema: pa.Schema | None = None
        self.rejected: list[tuple[str, str]] = []
        self.count = 0
        self.unknown: set[str] = set()  # columns with only nulls so far: typed by their first value
        # numbered rows not yet inserted: INSERTs take whole row groups (see `_put`)
        self._carry: pa.Table | None = None
        self._created = False

    def add(self, rid: str, row: dict) -> None:
        self.buf.append((rid, row))
        if len(self.buf) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.buf and self.schema is not None:
            return
        same_name(self.buf, self.schema)
        extras: dict[str, list] = {}
        for _, row in self.buf:
            for k, v in row.items():
                if k not in ("messages", "instruction", "response"):
                    extras.setdefault(k, []).append(v)
        if self.schema is None:
            self.schema = pa.schema(CORE + [(k, infer_type(v)) for k, v in extras.items()])
            self.unknown = {k for k, v in extras.items() if all(x is None for x in v)}
        else:
            self._widen(extras)
        cols: dict[str, list] = {f.name: [] for f in self.schema}
        for rid, row in self.buf:
            for f in self.schema:
                cols[f.name].append(rid if f.name == "_id" else coerce(f.type, row.get(f.name)))
        self._put(pa.table(cols, schema=self.schema), None)
        self.buf = []

    def _put(self, tbl: pa.Table, two) -> None:
        """Number a chunk (the table's columns, in the schema's order) and insert what makes
        whole row groups. An INSERT of 20,000 rows into the on-disk cache (16,384-row row
        groups) leaves a partial row group that DuckDB rewrites when it merges the next one:
        200k rows took 11.4 s and freed half the blocks they wrote; in whole row groups 4.8 s,
        none freed. (One streaming statement took 2.9 s but held 190 MB more at 1M rows.)"""
        tbl = self._numbered(tbl).append_column(TWO, two if two is not None else pa.nulls(tbl.num_rows, pa.bool_()))
        self.count += tbl.num_rows
        self._carry = tbl if self._carry is None else pa.concat_tables([self._carry, tbl])
        full = self._carry.num_rows // self.row_group * self.row_group
        if full:
            self._insert(self._carry.slice(0, full))
            self._carry = self._carry.slice(full)

    def _insert(self, tbl: pa.Table) -> None:
        # one Arrow chunk: DuckDB makes a row group of each chunk's rows, and the checkpoint at
        # close merges partial row groups by rewriting them (1M P3 rows: 2.5 s, the file twice
        # its size while it ran); whole row groups are kept as written
        self.con.register("__chunk", tbl.combine_chunks())
        # a row not known to be two turns is compared (the record reader's rows, chat rows)
        rows = (f"SELECT * REPLACE (CASE WHEN __d THEN NULL ELSE messages END AS messages) FROM "
                f"(SELECT * EXCLUDE ({TWO}), coalesce({TWO}, messages = {TWO_TURNS}, false) AS __d FROM __chunk)")
        if not self._created and not self._exists():
            self.con.execute(f"CREATE TABLE {q(self.table)} AS {rows}")
        else:
            self.con.execute(f"INSERT INTO {q(self.table)} BY NAME {rows}")
        self.con.unregister("__chunk")
        self._created = True

    def end(self) -> None:
        """Insert the rows still held (a partial row group): before the table's schema changes
        and at the end."""
        carry, self._carry = self._carry, None
        if carry is not None and (carry.num_rows or not self._created):
            self._insert(carry)

    def _widen(self, extras: dict[str, list]) -> None:
        """Columns first seen in this chunk are added (earlier rows get null); a column whose
        values no longer fit its type is widened (int to float, anything else to JSON: each value
        as itself), with the rows already written converted, so no row is lost to a schema guess."""
        written = self.count or self._exists()
        for k, vals in extras.items():
            nulls = all(v is None for v in vals)
            if k not in self.schema.names:
                t = infer_type(vals)
                if written:
                    self.end()
                    self.con.execute(f"ALTER TABLE {q(self.table)} ADD COLUMN {q(k)} {SQL_TYPES[t]}")
                self.schema = self.schema.append(pa.field(k, t))
                if nulls:
                    self.unknown.add(k)
                continue
            cur = self.schema.field(k).type
            if k in self.unknown and not nulls:  # only nulls so far: the column takes this chunk's type
                new = infer_type(vals)
                self.unknown.discard(k)
            elif all(fits(cur, v) for v in vals):
                continue
            else:
                got = infer_type(vals)
                new = pa.float64() if cur == pa.int64() and got in (pa.int64(), pa.float64()) else JSON
            if new == cur:
                continue
            if written:
                self._retype(k, cur, new)
            self.schema = self.schema.set(self.schema.get_field_index(k), pa.field(k, new))

    def _retype(self, k: str, cur: pa.DataType, new: pa.DataType) -> None:
        """Change a written column's type: to float by a cast, to JSON by writing each value's
        JSON (a text quoted) from Python's json, as the read writes a row alone (DuckDB's own
        rendering of a list or a float is not that)."""
        self.end()
        t = q(self.table)
        if new == JSON:
            vals = self.con.execute(f"SELECT _row, {q(k)} FROM {t}").fetchall()
            fixed = pa.table({"__r": pa.array([r for r, _ in vals], pa.int64()),
                              "__v": pa.array([None if v is None else json_text(v) for _, v in vals], pa.string())})
            self.con.execute(f"ALTER TABLE {t} ALTER {q(k)} SET DATA TYPE {SQL_TYPES[new]} USING NULL")
            self.con.register("__fixed", fixed)
            self.con.execute(f"UPDATE {t} SET {q(k)} = __fixed.__v FROM __fixed WHERE {t}._row = __fixed.__r")
            self.con.unregister("__fixed")
            return
        self.con.execute(f"ALTER TABLE {t} ALTER {q(k)} SET DATA TYPE {SQL_TYPES[new]} USING CAST({q(k)} AS {SQL_TYPES[new]})")

    def add_arrow(self, tbl: pa.Table) -> None:
        """Append a chunk that is already canonical (`_id`, the conversation columns, then the
        extra columns). Written as it is when its columns fit the table's; otherwise it goes
        through the row path, which widens the table exactly as for rows read one by one."""
        if self.buf:
            self.flush()
        two = None
        if TWO in tbl.column_names:  # rows whose conversation is their two turns, left null
            two, tbl = tbl.column(TWO), tbl.drop_columns([TWO])
        extras = [f for f in tbl.schema if f.name not in ("_id", "messages", "instruction", "response")]
        if self.schema is None and self.count == 0:
            self.unknown = {f.name for f in extras if tbl.column(f.name).null_count == tbl.num_rows}
            self.schema = pa.schema(CORE + [(f.name, f.type) for f in extras])
        elif not (self.schema is not None and all(f.name in self.schema.names and self.schema.field(f.name).type == f.type
                                                  and f.name not in self.unknown for f in extras)):
            texts = [f.name for f in extras if f.type == JSON]  # nested values as JSON text: as values again
            for r, d in zip(tbl.to_pylist(), two.to_pylist() if two is not None else [False] * tbl.num_rows):
                for k in texts:
                    r[k] = None if r[k] is None else json.loads(r[k])
                if d:
                    r["messages"] = [{"role": "user", "content": r["instruction"]},
                                     {"role": "assistant", "content": r["response"]}]
                self.add(r.pop("_id"), r)
            self.flush()
            return
        # the table's columns in its order: one the chunk lacks is null in it
        n = tbl.num_rows
        self._put(pa.table({f.name: tbl.column(f.name) if f.name in tbl.column_names else pa.nulls(n, f.type)
                            for f in self.schema}, schema=self.schema), two)

    def _numbered(self, tbl: pa.Table) -> pa.Table:
        import numpy as np
        return tbl.append_column("_row", pa.array(np.arange(self.count, self.count + tbl.num_rows, dtype=np.int64)))

    def _exists(self) -> bool:
        return bool(self.con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?",
                                     [self.table]).fetchall())

    def close(self) -> None:
        self.flush()
        self.end()
        # created last: a view's `*` is fixed when it is made, after every widening
        self.con.execute(f"CREATE VIEW {q(self.view)} AS {rebuilt_sql(self.table)}")

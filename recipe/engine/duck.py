"""The table interface (recipe/table.py) on DuckDB tables.

Row identity and order are an explicit `_row BIGINT` column, strictly increasing in a
table's order (dense when a step renumbers, sparse after a filter); kernels never see it:
they address rows by position, and this module maps positions to `_row` values.

Every table is written in `_row` order and the connection preserves insertion order, so
scans and filters read in `_row` order without a sort (a sort of a whole table would hold it
in memory: a streamed `ORDER BY` over 200 MB did not fit a 256 MB limit). Rows kept in
order are pasted beside a mask by position (POSITIONAL JOIN); only a keep that re-ranks rows
joins and sorts, and then only the kept rows.
"""
from __future__ import annotations

import threading
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..table import (Output, Table, added_mask, concat_masks, counted_batches, empty_keys, first_of_keys, keyed_block, kept_mask,
                     source_column)
from ..syntax import in_the_turns
from .sql import condition_sql, quote_ident as q, sync_messages_sql, text_sql, to_sql, turn_stages
from .tables import arrow_batches, arrow_of, raw_view, rebuilt_sql, rows_table

ROW = "_row"


def mask_table(view: str) -> str:
    """The stored mask behind a step's view `t_<fp>`."""
    return "m" + view[1:]


_CON_LOCK = threading.RLock()


class DuckTable(Table):
    def __init__(self, con, name: str):
        self.con, self.name = con, name
        self._n: int | None = None

    def columns(self) -> list[str]:
        with _CON_LOCK:
            return [r[0] for r in self.con.execute(f"DESCRIBE {q(self.name)}").fetchall() if r[0] != ROW]

    def count(self) -> int:
        if self._n is None:  # a finished step's rows do not change; a view counts by scanning
            with _CON_LOCK:
                self._n = self.con.execute(f"SELECT count(*) FROM {q(self.name)}").fetchall()[0][0]
        return self._n

    def arrow(self, cols: Sequence[str]) -> pa.Table:
        with _CON_LOCK:
            return arrow_of(self.con.execute(f"SELECT {_sel(cols)} FROM {q(self.name)}"))

    def _cursor(self):
        """A cursor of its own (the kernel may write while it reads; a sink's shards are read on
        threads) in the connection's database; the shared connection is asked under a lock."""
        with _CON_LOCK:
            db = self.con.execute("SELECT current_database()").fetchone()[0]
            cur = self.con.cursor()
        cur.execute(f"USE {q(db)}")
        return cur

    def batches(self, cols: Sequence[str], size: int = 20_000) -> Iterator[pa.Table]:
        yield from self._stream(f"SELECT {_sel(cols)} FROM {q(self.name)}", [], size, at_least_one=True)

    def _stream(self, sql: str, args: list, size: int, at_least_one: bool = False) -> Iterator[pa.Table]:
        """A query's rows through a cursor of its own, `size` at a time (`at_least_one`: an
        empty result still yields one empty table, which carries the columns)."""
        res = self._cursor().execute(sql, args)
        # fetched in batches of at least 65,536 rows and sliced: DuckDB's cost per batch made
        # 8,192-row batches of text take twice as long (676k P3 rows: 1.05 s against 0.59 s)
        for t in arrow_batches(res, max(size, 65_536)):
            for i in range(0, max(t.num_rows, 1 if at_least_one else 0), size):
                yield t.slice(i, size)

    def range_batches(self, cols: Sequence[str], size: int, start: int, stop: int) -> Iterator[pa.Table]:
        # DuckDB keeps a table's and a view's order (preserve_insertion_order): OFFSET skips the
        # earlier rows without handing them to Python
        yield from self._stream(f"SELECT {_sel(cols)} FROM {q(self.name)} LIMIT ? OFFSET ?",
                                [max(stop - start, 0), start], size)

    def row_ids(self) -> np.ndarray:
        """The `_row` value of each position."""
        t = self.con.execute(f"SELECT {ROW} FROM {q(self.name)}").to_arrow_table()
        return t.column(0).to_numpy()


# DuckDB's column types as the language names them (a widened column is VARCHAR; `json`, a column
# of nested values, is text to the translator: sql.to_sql reads it as its JSON text)
_LANG_TYPES = {"VARCHAR": "str", "JSON": "json", "BIGINT": "int", "INTEGER": "int", "SMALLINT": "int",
               "TINYINT": "int", "HUGEINT": "int", "UBIGINT": "int", "UINTEGER": "int", "DOUBLE": "float",
               "FLOAT": "float", "DECIMAL": "float", "BOOLEAN": "bool"}


def table_types(con, name: str) -> dict[str, str]:
    """The language type of each column of a table or view, as it holds now (`any` for
    nested types)."""
    desc = con.execute(f"SELECT * FROM {q(name)} LIMIT 0").description
    return {d[0]: _LANG_TYPES.get(str(d[1]).split("(")[0], "any") for d in desc}


def _sel(cols: Sequence[str]) -> str:
    return ", ".join(q(c) for c in cols) if cols else "NULL AS __none"


def _rank_cols(keep: str, text: str) -> str:
    """The columns `distinct` ranks a group's rows by, besides their order."""
    if keep == "longest":
        return f", length({text}) AS __len"
    if ":" in keep:
        return f", TRY_CAST({q(keep.split(':', 1)[1])} AS DOUBLE) AS __v"
    return ""


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
    def filter(self, src, cond, reason, null_reason=None):
        """The condition, once per row, into a mask; the kept rows are a view over it. A
        tuple of conditions (conjuncts) keeps the rows where all hold; a row set aside gets
        the reason of the first that is false, else of the first that is null."""
        self._make()
        if null_reason is None and not isinstance(cond, tuple):
            sql, binds = condition_sql(cond, self.params, table_types(self.con, src.name))
            self.con.execute(f"CREATE TEMP TABLE __f AS SELECT coalesce({sql}, false) AS __keep, "
                             f"NULL::VARCHAR AS __why FROM {q(src.name)}", binds)
        else:  # each condition evaluated once: null and false are set aside with their own reasons
            conds, reasons, nulls = (cond, reason, null_reason) if isinstance(cond, tuple) else ((cond,), (reason,), (null_reason,))
            types = table_types(self.con, src.name)
            parts = [condition_sql(c, self.params, types) for c in conds]
            cols = ", ".join(f"{sql} AS __c{i}" for i, (sql, _) in enumerate(parts))
            why = " ".join([f"WHEN __c{i} IS FALSE THEN ?::VARCHAR" for i in range(len(parts))]
                           + [f"WHEN __c{i} IS NULL THEN ?::VARCHAR" for i in range(len(parts))])
            keep = " AND ".join(f"__c{i}" for i in range(len(parts)))
            self.con.execute(f"CREATE TEMP TABLE __f AS SELECT coalesce({keep}, false) AS __keep, CASE {why} END AS __why "
                             f"FROM (SELECT {cols} FROM {q(src.name)})",
                             [*reasons, *(n or r for n, r in zip(nulls, reasons)), *(b for _, bs in parts for b in bs)])
            reason = reasons[0]
        self._paste(src, "__f", reason, self.out)
        self.con.execute("DROP TABLE __f")

    def derive(self, src, columns, cast=None):
        """Columns computed by row expressions. Names that are parts of the conversation are
        written into it (`syntax.in_the_turns`): `conversation` where no column has the name, the
        `system` prompt, and `input`/`context` (the part of the last user turn after its
        instruction); those two, and `system` where a column has the name, are columns too."""
        self._make()
        cast = cast or {}
        existing = set(src.columns())
        added, replaced, binds_added, binds_replaced = [], [], [], []
        types = table_types(self.con, src.name)
        turns = {k: v for k, v in columns.items() if in_the_turns(k, existing)}
        if "conversation" in turns:
            columns = {k: v for k, v in columns.items() if k not in ("instruction", "response")}
        # an input is a column too (the writers split the turn with it); a system prompt where one is
        columns = {k: v for k, v in columns.items() if k not in turns or k in ("input", "context")
                   or k == "system" and k in existing}
        for name, e in columns.items():
            sql, b = to_sql(e, self.params, types)
            if name in ("instruction", "response", "input", "context", "system") or cast.get(name) == "text":  # never null
                sql = f"coalesce(CAST({sql} AS VARCHAR), '')"
            elif cast.get(name) == "float":
                sql = f"TRY_CAST({sql} AS DOUBLE)"  # a value that is no number (an open column) is null, not a stopped run
            if name in existing:  # replaced where it stands: a derived column keeps its place
                replaced.append(f"{sql} AS {q(name)}")
                binds_replaced += b
            else:
                added.append(f", {sql} AS {q(name)}")
                binds_added += b
        repl = f" REPLACE ({', '.join(replaced)})" if replaced else ""
        temps, binds = [], binds_replaced + binds_added
        for name, e in turns.items():  # each computed from the input row, as every derived column is
            if name in ("input", "context"):
                temps.append(f"{q(name) if name in existing else 'NULL'} AS __old_{name}")
                continue
            sql, b = to_sql(e, self.params, types, as_list=name == "conversation")
            temps.append(f"{sql if name == 'conversation' else f'CAST({sql} AS VARCHAR)'} AS __{name}")
            binds += b
        query = f"SELECT *{repl}{''.join(added)}{''.join(', ' + t for t in temps)} FROM {q(src.name)}"
        for stage in turn_stages(turns):  # one after another: each reads the turns the last one made
            query = f"SELECT * REPLACE ({stage}) FROM ({query})"
        if temps:
            query = f"SELECT * EXCLUDE ({', '.join(t.rsplit(' AS ', 1)[1] for t in temps)}) FROM ({query})"
        self.con.execute(f"CREATE TABLE {q(self.out)} AS {query}", binds)
        if "conversation" not in turns and ("instruction" in columns or "response" in columns):
            # the conversation is the text writers and operators read: keep it in step
            self.con.execute(f"UPDATE {q(self.out)} SET messages = "
                             f"{sync_messages_sql('instruction' in columns, 'response' in columns)}")

    def _masked(self, src, keep: np.ndarray, why: list | None, default: str, target: str, *,
                extra: pa.Table | None = None, new_row: np.ndarray | None = None, create: bool = True) -> None:
        """Rows of `src` where `keep` is true (in their order) into `target`, with `extra`'s
        columns added (replacing same-named ones) and `_row` set to `new_row` (default: kept);
        the others set aside with `why[i]` (or `default`). A POSITIONAL JOIN pairs the i-th
        row of the table scan with the i-th row of the mask, so nothing is sorted or hashed."""
        n = src.count()
        if len(keep) != n:
            raise RuntimeError(f"{len(keep)} mask values for {n} rows")
        cols = {"__keep": pa.array(np.asarray(keep, dtype=bool)),
                "__why": pa.array(why if why is not None else [None] * n, pa.string())}
        if new_row is not None:
            cols["__nr"] = pa.array(np.asarray(new_row, dtype=np.int64))
        names = extra.column_names if extra is not None else []
        for c in names:
            cols[c] = extra.column(c)
        self._arrow("__m", pa.table(cols))
        self._paste(src, "__m", default, target, names, new_row is not None, create, not bool(np.all(keep)))
        self.con.unregister("__m")

    def _streamed_columns(self, src, new: pa.RecordBatchReader) -> None:
        """`add_columns` of a reader's batches, every row kept: the stored mask is made a batch
        at a time, each inserted before the next is read (the reader's kernel reads its input
        through a cursor of its own: DuckDB scanning a reader that queries DuckDB deadlocked)."""
        m = mask_table(self.out)
        made = False
        for b in counted_batches(new, src.count()):
            t = pa.Table.from_batches([b])
            self.con.register("__b", t.add_column(0, "__keep", pa.array(np.ones(t.num_rows, dtype=bool))))
            try:
                self.con.execute(f"INSERT INTO {q(m)} SELECT * FROM __b" if made else f"CREATE TABLE {q(m)} AS SELECT * FROM __b")
            finally:
                self.con.unregister("__b")
            made = True
        if not made:  # no rows: the columns alone
            empty = pa.Table.from_batches([], new.schema)
            self.con.register("__b", empty.add_column(0, "__keep", pa.array([], pa.bool_())))
            self.con.execute(f"CREATE TABLE {q(m)} AS SELECT * FROM __b")
            self.con.unregister("__b")
        self._paste(src, m, "not kept", self.out, new.schema.names, any_dropped=False, stored=True)

    def _paste(self, src, mask: str, default: str, target: str, names=(), renumber=False, create=True,
               any_dropped=True, stored=False) -> None:
        """`src` pasted row for row beside the relation `mask` (`__keep`, `__why`, optionally
        `__nr` and new columns, as many rows as `src`, in its order). A new `target` is a view
        over `src` and the stored mask: a step that drops rows or adds columns stores what it
        decided, not another copy of its input's text. `stored`: `mask` is that stored mask
        already (its rows all kept)."""
        drop = [ROW] + [c for c in names if c in set(src.columns())]
        sel = "".join(f", m.{q(c)}" for c in names)
        row = f"m.__nr AS {ROW}" if renumber else f"s.{ROW}"
        head = f"SELECT s.* EXCLUDE ({', '.join(q(c) for c in drop)}){sel}, {row} FROM "
        body = f"{head}{q(src.name)} s POSITIONAL JOIN "
        if create:
            kept = ["__keep"] + (["__nr"] if renumber else []) + list(names)
            m = mask_table(target)
            if not stored:
                self.con.execute(f"CREATE TABLE {q(m)} AS SELECT {', '.join(q(c) for c in kept)} FROM {mask}")
            raw = self._raw_of(src.name)
            if raw and not {"messages", "instruction", "response"} & set(names):
                # the masks applied to the read's stored rows, conversations rebuilt after them:
                # a view over the rebuilt rows built every base row's conversation before the
                # masks dropped it (the 1M-row scale run's sink: 0.6 s for its 25k rows)
                self.con.execute(f"CREATE VIEW {q(raw_view(target))} AS {head}{q(raw)} s POSITIONAL JOIN "
                                 f"{q(m)} m WHERE m.__keep")
                self.con.execute(f"CREATE VIEW {q(target)} AS {rebuilt_sql(raw_view(target))}")
            else:
                self.con.execute(f"CREATE VIEW {q(target)} AS {body}{q(m)} m WHERE m.__keep")
        else:
            self.con.execute(f"INSERT INTO {q(target)} BY NAME {body}{mask} m WHERE m.__keep")
        s_ = q(src.name)
        if any_dropped:
            self.con.execute(f"INSERT INTO {q(self.aside)} SELECT s._id, coalesce(m.__why, ?), NULL "
                             f"FROM {s_} s POSITIONAL JOIN {mask} m WHERE NOT m.__keep", [default])

    def _raw_of(self, name: str) -> str | None:
        """The relation of `name`'s rows before conversations are rebuilt: a read's stored rows,
        or a masked step's raw view; None for a step whose rows are stored whole."""
        for cand in (rows_table(name), raw_view(name)):
            if self.con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                                "AND table_catalog = current_database()", [cand]).fetchall():
                return cand
        return None

    def add_columns(self, src, new, drop=None):
        self._make()
        if isinstance(new, pa.RecordBatchReader):
            if drop:
                new = new.read_all()
            else:  # streamed into the stored mask: one scan of the reader, every row kept
                self._streamed_columns(src, new)
                return
        keep, why = added_mask(src, new, drop)
        self._masked(src, keep, why, "not kept", self.out, extra=new)

    def keep(self, src, positions, reasons):
        self._make()
        n = src.count()
        pos, mask, why, default, in_order = kept_mask(n, positions, reasons)
        if in_order:  # in table order: a mask, no sort
            self._masked(src, mask, why, default, self.out, new_row=np.cumsum(mask) - 1)
            return
        # a new order (a ranking): join the kept rows to their ranks and sort those rows only
        k = pa.table({"__r": pa.array(src.row_ids()[pos], pa.int64()), "__ord": pa.array(np.arange(len(pos), dtype=np.int64))})
        self._arrow("__keep", k)
        self.con.execute(f"CREATE TABLE {q(self.out)} AS SELECT s.* EXCLUDE ({ROW}), k.__ord AS {ROW} "
                         f"FROM {q(src.name)} s JOIN __keep k ON s.{ROW} = k.__r ORDER BY k.__ord")
        self.con.unregister("__keep")
        self._arrow("__m", pa.table({"__keep": pa.array(mask), "__why": pa.array(why or [None] * n, pa.string())}))
        self.con.execute(f"INSERT INTO {q(self.aside)} SELECT s._id, coalesce(m.__why, ?), NULL "
                         f"FROM {q(src.name)} s POSITIONAL JOIN __m m WHERE NOT m.__keep", [default])
        self.con.unregister("__m")

    def concat(self, srcs, keep=None, reasons=None):
        """Each input's kept rows, appended in turn; a repeated `_id` (checked on the ids
        alone, in Python) is set aside."""
        self._make()
        self._udfs: list[str] = []
        views = []
        try:  # the conversions are the connection's, not the step's transaction's: always removed
            views = self._widened(srcs)
            union = " UNION ALL BY NAME ".join(f"SELECT * FROM {q(t.name)}" for t in views)
            self.con.execute(f"CREATE TABLE {q(self.out)} AS SELECT * FROM ({union}) LIMIT 0")
            at = 0
            for t, (mask, why, default) in zip(views, concat_masks(srcs, keep, reasons)):
                self._masked(t, mask, why, default, self.out, new_row=at + np.cumsum(mask) - 1, create=False)
                at += int(mask.sum())
        finally:
            for t in views:
                if t not in srcs:
                    self.con.execute(f"DROP VIEW IF EXISTS {q(t.name)}")
            for name in self._udfs:
                self.con.remove_function(name)

    def _widened(self, srcs) -> list:
        """The inputs, each as a view with its columns in the types they unify to (`widen.py`)
        where its own differ: DuckDB's UNION BY NAME casts a list to text as `[a, b]`, and
        text to a list not at all (the step failed mid-run)."""
        import duckdb

        from .tables import JSON
        from .widen import json_values, unified_schema
        schemas, types = [], []  # Arrow's types to unify, DuckDB's to declare a conversion's input
        for t in srcs:
            res = self.con.execute(f"SELECT * FROM {q(t.name)} LIMIT 0")
            types.append({d[0]: str(d[1]) for d in res.description})
            schemas.append(arrow_of(res).schema)
        to = {k.lower(): t for k, t in unified_schema(schemas, skip=(ROW,)).items()}  # SQL names ignore case

        def udf(prefix: str, fn, n: int, col: str) -> str:
            """`fn` (Arrow in, text out) over input `n`'s column `col`, as SQL."""
            name = f"__{prefix}_{n}_{len(self._udfs)}"
            self.con.create_function(name, fn, [duckdb.sqltype(types[n][col])], "VARCHAR",
                                     type="arrow", null_handling="special", side_effects=False)
            self._udfs.append(name)
            return f"{name}({q(col)})"
        views = []
        for n, (t, schema) in enumerate(zip(srcs, schemas)):
            repl = []
            for f in schema:
                want = to.get(f.name.lower())
                if want is None or f.type.equals(want):
                    continue
                if want == JSON:  # each value's JSON (a text quoted), as the read writes a JSON column
                    repl.append(f"CAST({udf('json_value', json_values, n, f.name)} AS JSON) AS {q(f.name)}")
                else:
                    repl.append(f"CAST({q(f.name)} AS {'BIGINT' if pa.types.is_integer(want) else 'DOUBLE'}) "
                                f"AS {q(f.name)}")
            if not repl:
                views.append(t)
                continue
            v = f"__widened_{n}"
            self.con.execute(f"CREATE TEMP VIEW {q(v)} AS SELECT * REPLACE ({', '.join(repl)}) FROM {q(t.name)}")
            views.append(DuckTable(self.con, v))
        return views

    def distinct(self, src, on, keep):
        """Winners per 128-bit hash of the normalised text: texts are normalised and hashed a
        block at a time on worker threads (`keyed_block`), so only (row, key), 24 bytes a row,
        are held; keep="first" picks winners in numpy (`_first_of_keys`), other ranks in a
        window; the winners then become a mask in table order."""
        self._make()
        parts = list(src.map_blocks(keyed_block, [source_column(on), ROW], on))
        self.empty_keys = sum(empty_keys(p.column("__hi").to_numpy(), p.column("__lo").to_numpy()) for p in parts)
        if keep == "first":
            return self._first_of_keys(src, on, parts)
        text = text_sql(on)
        if keep == "longest":
            rank = f"__len DESC, {ROW}"
        else:
            rank = f"__v {'DESC' if keep.startswith('max:') else 'ASC'} NULLS LAST, {ROW}"
        con, s = self.con, q(src.name)
        con.register("__ddk", pa.concat_tables(parts) if parts else pa.table(
            {"__r": pa.array([], pa.int64()), "__hi": pa.array([], pa.uint64()), "__lo": pa.array([], pa.uint64())}))
        r = rank.replace(ROW, "__r")
        keyed = (f"SELECT s.{ROW} AS __r, s._id AS __id, k.__hi, k.__lo{_rank_cols(keep, text)} "
                 f"FROM {s} AS s JOIN __ddk AS k ON s.{ROW} = k.__r")
        con.execute(f"CREATE TEMP TABLE __dd AS SELECT __n = 1 AS __keep, "
                    f"CASE WHEN __n > 1 THEN 'duplicate of ' || __win || ? END AS __why "
                    f"FROM (SELECT __r, first_value(__id) OVER (PARTITION BY __hi, __lo ORDER BY {r}) AS __win, "
                    f"row_number() OVER (PARTITION BY __hi, __lo ORDER BY {r}) AS __n FROM ({keyed})) "
                    f"ORDER BY __r", [f" (exact on {on})"])
        con.unregister("__ddk")
        self._paste(src, "__dd", "", self.out)
        groups = con.execute("SELECT count(*) FROM __dd WHERE __keep").fetchall()[0][0]
        con.execute("DROP TABLE __dd")
        return groups

    def _first_of_keys(self, src, on: str, parts: list) -> int:
        """keep="first" in numpy: each key's first row wins (the window's rank is the row
        order alone); its id names the winner in the others' reasons. 0.6 s of SQL a 1M rows."""
        import pyarrow.compute as pc
        col = (lambda c: np.concatenate([p.column(c).to_numpy() for p in parts]) if parts else np.zeros(0, np.uint64))
        winner = first_of_keys(col("__hi"), col("__lo"))
        n = len(winner)
        if n != src.count():
            raise RuntimeError(f"exact dedupe: {n} keys for {src.count()} rows")
        kept = winner == np.arange(n)
        dropped = np.flatnonzero(~kept)
        ids = src.arrow(["_id"]).column(0)
        why = pc.binary_join_element_wise("duplicate of ", ids.take(pa.array(winner[dropped])),
                                          f" (exact on {on})", "")
        at = np.full(n, -1, dtype=np.int64)
        at[dropped] = np.arange(len(dropped))
        self._arrow("__dd", pa.table({"__keep": pa.array(kept),
                                      "__why": why.take(pa.array(at, mask=at < 0))}))
        self._paste(src, "__dd", "", self.out)
        self.con.unregister("__dd")
        return int(kept.sum())

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

"""What an operator sees while it runs: the connection, its tables, params, models, progress."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import tables


@dataclass
class OpContext:
    con: object                 # duckdb connection (inside the step's transaction)
    out: str                    # table the op must create
    aside: str                  # table (_id, reason, raw) for rows it sets aside
    step: str                   # step name, for messages
    params: dict                # recipe param values (for expressions)
    models: dict                # model name -> declaration {kind, source, options, identity}
    runtime_factory: Callable = None
    progress: Callable = lambda done, total: None
    info: dict = field(default_factory=dict)  # statistics the op wants in the manifest
    seed: int = 0

    @property
    def runtime(self):
        return self.runtime_factory()

    # small conveniences used by most operators
    def count(self, table: str) -> int:
        return tables.count(self.con, table)

    def columns(self, table: str) -> list[str]:
        return tables.columns(self.con, table)

    def fetch(self, table: str, cols) -> "object":
        return tables.fetch(self.con, table, cols)

    def keep(self, src: str, keep: list[int], reasons) -> None:
        tables.keep_rows(self.con, src, self.out, self.aside, keep, reasons)

    def add_columns(self, src: str, new) -> None:
        tables.add_columns(self.con, src, self.out, new)

    def texts(self, table: str, column: str) -> list[str]:
        """A text column as Python strings ("" for null); lists/messages are rendered as text."""
        from ..expr import quote_ident as q
        if column == "conversation":
            rows = self.con.execute(f"SELECT messages FROM {q(table)} ORDER BY rowid").fetchall()
            return ["\n".join(f"{m['role']}: {m['content']}" for m in (r[0] or [])) for r in rows]
        rows = self.con.execute(f"SELECT CAST({q(column)} AS VARCHAR) FROM {q(table)} ORDER BY rowid").fetchall()
        return [r[0] or "" for r in rows]

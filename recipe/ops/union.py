"""union: the rows of several nodes, by column name; a repeated `_id` is kept once."""
from __future__ import annotations

from ..expr import quote_ident as q
from .base import Op


class Union(Op):
    name = "union"
    version = 1
    doc = "Concatenate nodes (columns matched by name, missing ones null); the first row of each `_id` wins."
    multi_input = True

    def run(self, ctx, args, inputs):
        concat_unique(ctx, [q(t) for t in inputs])


def concat_unique(ctx, tables: list[str]) -> None:
    """Concatenate tables (in order) into ctx.out, keeping the first row of each `_id`."""
    parts = " UNION ALL BY NAME ".join(
        f"SELECT *, {i} AS __src, rowid AS __pos FROM {t}" for i, t in enumerate(tables))
    ctx.con.execute(f"CREATE TEMP TABLE __u AS SELECT *, row_number() OVER (PARTITION BY _id ORDER BY __src, __pos) AS __rn "
                        f"FROM ({parts})")
    ctx.con.execute(f"CREATE TABLE {q(ctx.out)} AS SELECT * EXCLUDE (__src, __pos, __rn) FROM __u "
                    f"WHERE __rn = 1 ORDER BY __src, __pos")
    ctx.con.execute(f"INSERT INTO {q(ctx.aside)} SELECT _id, 'duplicate `_id`: already taken from an earlier input', NULL "
                    f"FROM __u WHERE __rn > 1 ORDER BY __src, __pos")
    ctx.con.execute("DROP TABLE __u")


OP = Union()

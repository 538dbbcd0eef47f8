"""The read step: a source's files -> a canonical table, unreadable records set aside."""
from __future__ import annotations

from ..io.readers import iter_rows, list_files
from .tables import RowWriter


def read_source(ctx, source: str, args: dict, log) -> None:
    files = list_files(args["path"])
    writer = RowWriter(ctx.con, ctx.out)
    aside: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    n = 0
    for rid, row, reason, raw in iter_rows(source, files, args.get("format"), args.get("id"), log):
        n += 1
        if n % 5000 == 0:
            ctx.progress(n, None)
        if row is None:
            aside.append((rid, reason, raw))
        elif rid in seen:
            aside.append((rid, f"duplicate id `{rid}`", None))
        else:
            seen.add(rid)
            writer.add(rid, row)
    writer.close()  # creates the (possibly empty) canonical table
    aside += [(rid, reason, None) for rid, reason in writer.rejected]
    if aside:
        ctx.con.executemany(f'INSERT INTO "{ctx.aside}" VALUES (?, ?, ?)', aside)
    ctx.info["format"] = args.get("format") or "auto"
    ctx.info["files"] = len(files)

"""The read step: a source's files -> a canonical table, unreadable records set aside.

A single JSON-lines file of Alpaca rows (the commonest input) takes Arrow's fast path
(`io/arrow_alpaca.py`) chunk by chunk; every other input, and any chunk the fast path
cannot take exactly, is read record by record."""
from __future__ import annotations

import json
from pathlib import Path

from ..io.formats import detect
from ..io.readers import iter_rows, item_row, jsonl_items, list_files
from .sql import quote_ident
from .tables import RowWriter


def read_source(con, out: str, aside_table: str, ctx, source: str, args: dict, log) -> None:
    """Create table `out` from the source's rows, set-aside records into `aside_table`;
    `ctx` (a KernelContext) takes progress and statistics."""
    files = list_files(args["path"])
    writer = RowWriter(con, out)
    aside: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    n = 0

    def take(rid, row, reason, raw):
        nonlocal n
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

    if _fast(files, args, source, log):
        from ..io.arrow_alpaca import chunks
        prefix = f"{source}:"
        for kind, payload, lineno, idx in chunks(files[0], prefix):
            if kind == "arrow":
                writer.add_arrow(payload)  # ids `<source>:<index>` are unique by construction
                n += payload.num_rows
                ctx.progress(n, None)
            else:
                for it in jsonl_items(files[0], payload, lineno, idx):
                    take(*item_row(it, prefix, "alpaca"))
    else:
        for rid, row, reason, raw in iter_rows(source, files, args.get("format"), args.get("id"), log):
            take(rid, row, reason, raw)
    writer.close()  # creates the (possibly empty) canonical table
    aside += [(rid, reason, None) for rid, reason in writer.rejected]
    if aside:
        con.executemany(f"INSERT INTO {quote_ident(aside_table)} VALUES (?, ?, ?)", aside)
    ctx.info["format"] = args.get("format") or "auto"
    ctx.info["files"] = len(files)


def _fast(files: list[Path], args: dict, source: str, log) -> bool:
    """Whether the source is one JSON-lines file of Alpaca rows with default ids."""
    if len(files) != 1 or files[0].suffix.lower() not in (".jsonl", ".ndjson") or args.get("id"):
        return False
    fmt = args.get("format")
    if fmt is not None:
        return fmt == "alpaca"
    with open(files[0], "rb") as fh:  # the line-by-line reader detects from the first record too
        for line in fh:
            if line.strip():
                try:
                    rec = json.loads(line)
                except ValueError:
                    return False
                got, why = detect(rec) if isinstance(rec, dict) else (None, "")
                if got == "alpaca" and not ({"message_id", "role", "text"} <= set(rec)):
                    log(f"{source}: detected format `alpaca` (from {why})")
                    return True
                return False
    return False

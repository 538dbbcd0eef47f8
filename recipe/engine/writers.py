"""Sinks: a step's rows (any engine's `Table`) -> a file under --out, in a row format,
written atomically and streamed a batch at a time."""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

from ..diagnostics import UserError
from ..io.features import batch_schema, records_schema
from ..io.formats import KEPT_TURNS, BadRow, from_row, refreshed_turns
from ..io.sinks import SINK_EXTENSIONS, WRITE_FORMATS, SINK_COMPRESSIONS, sink_extension_problem, sink_kind  # noqa: F401


def safe_sink_path(out_dir: Path, rel: str) -> Path:
    """Sinks write only under --out: no absolute paths, no `..`."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not rel.strip():
        raise UserError(f"sink path `{rel}` must be a relative path inside --out")
    return out_dir / p


def _records(table, batch: int = 10000, json_cols: set | None = None):
    """Rows as dicts; a JSON column's values (nested input values) as the values they are, or,
    with `json_cols` (a set the names are added to), as their JSON text."""
    import pyarrow as pa
    for b in table.batches(table.columns(), batch):
        rows = b.to_pylist()
        for name in [f.name for f in b.schema if isinstance(f.type, pa.JsonType)]:
            if json_cols is not None:
                json_cols.add(name)
                continue
            for r in rows:
                if r[name] is not None:
                    r[name] = json.loads(r[name])
        yield from rows


def _rows_for(fmt: str, table, keep: list[str], rejected: list, json_cols: set | None = None, dropped=None):
    """Records in the sink's format, in table order; rows the format cannot hold go to `rejected`,
    the turn fields it has no place for are counted in `dropped`."""
    for row in _records(table, json_cols=json_cols):
        if fmt == "jsonl":
            _refresh(row)
            yield {k: row[k] for k in ["_id", *keep] if k in row} if keep else row
            continue
        try:
            yield from_row(fmt, row, keep, dropped)
        except BadRow as e:
            rejected.append((row.get("_id"), f"cannot write as {fmt}: {e}"))


def _refresh(row: dict) -> None:
    """The turns a reader kept for their fields, with the texts the messages have now."""
    for col, rk, ck in KEPT_TURNS:
        if row.get(col) is not None and row.get("messages") is not None:
            row[col] = refreshed_turns(row[col], rk, ck, row["messages"])


def _refreshed_batch(b):
    """`_refresh` over an Arrow batch (the canonical Parquet path): only when it has kept turns."""
    import pyarrow as pa
    cols = [c for c, _, _ in KEPT_TURNS if c in b.column_names]
    if not cols or "messages" not in b.column_names:
        return b
    msgs = b.column("messages").to_pylist()
    for c in cols:
        rk, ck = next((r, k) for n, r, k in KEPT_TURNS if n == c)
        vals = [refreshed_turns(v, rk, ck, m) if m is not None else v for v, m in zip(b.column(c).to_pylist(), msgs)]
        b = b.set_column(b.column_names.index(c), c, pa.array(vals, b.schema.field(c).type))
    return b


def write_sink(table, path: Path, fmt: str | None, options: dict, atomic_write,
               nulled: list | None = None, dropped=None, shapes: list | None = None) -> tuple[int, list]:
    """Returns (rows written, [(_id, reason)] for rows the format cannot hold); the ids of
    rows whose NaN or infinite numbers a JSON sink wrote as null go to `nulled`, the turn
    fields the format has no place for are counted in `dropped` (a Counter: field -> rows),
    the Arrow schemas of what a JSON or Parquet file holds to `shapes` (a batch's each, or
    None where it has none: `io/features.py` makes the dataset card's features of them).
    The extension chooses the container (JSON lines, a JSON array, parquet, CSV/TSV), the
    format the shape of each record; `columns` picks the columns of jsonl rows, and the
    extra columns carried by the other formats."""
    fmt = fmt or "jsonl"
    if fmt not in WRITE_FORMATS:
        raise UserError(f"cannot write format `{fmt}`; formats: {', '.join(WRITE_FORMATS)}")
    problem = sink_extension_problem(str(path), fmt)
    if problem:
        raise UserError(problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = list(options.get("columns") or [])
    suffix, packed = sink_kind(path)
    rejected: list[tuple[str, str]] = []
    if fmt == "tag_counts":
        return _tag_counts(table, path, options.get("column", "tags"), atomic_write), rejected
    shapes = shapes if shapes is not None else []
    if suffix == ".parquet":
        return _parquet(table, path, fmt, keep, rejected, dropped, shapes), rejected
    n = 0
    if suffix in (".csv", ".tsv"):  # CSV holds text: the Hub's loader types it apart
        shapes.append(None)
        import csv
        fields: dict[str, None] = {}  # pass 1: the header (every field seen, first-seen order)
        for rec in _rows_for(fmt, table, keep, []):
            fields.update(dict.fromkeys(rec))
        if not fields and fmt == "jsonl":  # no rows: the header still names the columns
            fields = dict.fromkeys(c for c in (["_id", *keep] if keep else table.columns()) if c in table.columns())
        with text_file(path, packed) as fh:  # pass 2: the rows, streamed
            w = csv.DictWriter(fh, fieldnames=list(fields), delimiter="," if suffix == ".csv" else "\t",
                               lineterminator="\n")
            w.writeheader()
            for rec in _rows_for(fmt, table, keep, rejected, dropped=dropped):
                w.writerow({k: _csv_value(v) for k, v in rec.items()})
                n += 1
        return n, rejected
    with text_file(path, packed) as fh:  # streamed: memory holds one batch of rows, not the file
        if suffix in (".jsonl", ".json") and fmt == "jsonl":
            return _json_lines(table, keep, fh, nulled if nulled is not None else [], array=suffix == ".json",
                               shapes=shapes), rejected
        if suffix == ".json":
            fh.write("[")
        recs = []
        for rec in _rows_for(fmt, table, keep, rejected, dropped=dropped):
            line = _json_line(rec, nulled if nulled is not None else [])
            if suffix == ".json":
                fh.write(("\n" if n == 0 else ",\n") + line)
            else:
                fh.write(line + "\n")
            n += 1
            recs.append(rec)
            if len(recs) == 10_000:
                shapes.append(records_schema(recs))
                recs = []
        if recs:
            shapes.append(records_schema(recs))
        if suffix == ".json":
            fh.write("\n]\n" if n else "]\n")
    return n, rejected


def _json_lines(table, keep: list[str], fh, nulled: list, batch: int = 10_000, array: bool = False,
                shapes: list | None = None) -> int:
    """Canonical rows as JSON lines (with `array`, a JSON array of one row a line), a batch at a
    time: built by Arrow (`io/json_text.py`) where the batch's columns allow, else row by row;
    the same bytes either way. Everything goes to the text file's byte stream: a flush of the
    text layer would reach a compressor as a sync flush, and the compressed bytes would depend
    on which batches took which path."""
    from ..io.json_text import json_lines, text_bytes
    have = table.columns()
    cols = [c for c in dict.fromkeys(["_id", *keep]) if c in have] if keep else have
    out = fh.buffer
    n = 0
    if array:
        out.write(b"[")
    for b in table.batches(cols, batch):
        # kept turns are refreshed from the messages row by row (`_refresh`)
        made = None if any(c in b.column_names for c, _, _ in KEPT_TURNS) else json_lines(b)
        if made is not None:
            lines, bad = made
            if bad:  # NaN or infinite numbers, written as null: the rows are named, as `_json_line` does
                ids = b.column("_id").to_pylist() if "_id" in b.column_names else [None] * b.num_rows
                nulled += [ids[i] for i in bad]
            if shapes is not None:
                shapes.append(batch_schema(b))
            data = text_bytes(lines)
            if array and len(data):  # a JSON text holds no raw newline: each one ends a row
                data = (b"\n" if n == 0 else b",\n") + bytes(data[:-1]).replace(b"\n", b",\n")
            out.write(data)
            n += b.num_rows
            continue
        recs = list(_rows_for("jsonl", _One(b), keep, []))
        for rec in recs:
            line = _json_line(rec, nulled)
            out.write(((("\n" if n == 0 else ",\n") + line) if array else line + "\n").encode("utf-8"))
            n += 1
        if shapes is not None:
            shapes.append(records_schema(recs))
    if array:
        out.write(b"\n]\n" if n else b"]\n")
    return n


class _One:
    """One batch as the table `_rows_for` reads."""

    def __init__(self, b):
        self.b = b

    def columns(self) -> list[str]:
        return self.b.column_names

    def batches(self, cols, size):
        yield self.b.select(cols)


def _csv_value(v):
    """A CSV cell: nested values as their JSON; true/false as JSON, DuckDB and Arrow write them
    (Python's csv module wrote `True`)."""
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


@contextmanager
def text_file(path: Path, packed: str | None):
    """A text file written atomically, compressed as a whole by its last extension (`.gz`,
    `.bz2`, `.xz`, `.zst`) when it has one. The bytes depend on the rows alone: gzip's header
    gets no file name or time, so two runs (and both engines) write the same file."""
    import io
    from ..faults import atomic_file
    if packed is None:
        with atomic_file(path) as fh:
            yield fh
        return
    with atomic_file(path, "wb") as raw:
        inner = _Unclosed(raw)  # closing the compressor must leave the file to atomic_file
        if packed == ".gz":
            import gzip
            z = gzip.GzipFile(filename="", mode="wb", fileobj=inner, mtime=0)
        elif packed == ".bz2":
            import bz2
            z = bz2.BZ2File(inner, "wb")
        elif packed == ".xz":
            import lzma
            z = lzma.LZMAFile(inner, "wb")
        else:
            import pyarrow as pa
            z = pa.CompressedOutputStream(pa.PythonFile(inner, mode="w"), SINK_COMPRESSIONS[packed])
        fh = io.TextIOWrapper(z if isinstance(z, io.BufferedIOBase) else io.BufferedWriter(z),
                              encoding="utf-8", newline="")
        try:
            yield fh
        except BaseException:
            inner.fh = None  # the run failed: atomic_file drops the file; nothing more is written
            raise
        fh.close()  # the compressor's end of stream, then atomic_file's fsync and rename


class _Unclosed:
    """A file's write end for a compressor: its close (which compressors call) leaves the
    file open."""

    def __init__(self, fh):
        self.fh = fh
        self.closed = False

    def write(self, b) -> int:
        return self.fh.write(b) if self.fh is not None else len(b)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def close(self) -> None:
        self.closed = True


def _json_line(rec: dict, nulled: list) -> str:
    """A record as JSON. NaN and infinities are not JSON (json.dumps wrote `NaN`, which Arrow's
    and Hugging Face's JSON readers refuse): such a number is written as null and the row's id
    noted."""
    try:
        return json.dumps(rec, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        nulled.append(rec.get("_id"))
        return json.dumps(finite(rec), ensure_ascii=False, default=str, allow_nan=False)


def finite(v):
    """`v` with every NaN or infinite float (in dicts and lists too) replaced by None."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    return v


def _parquet(table, path: Path, fmt: str, keep: list[str], rejected: list, dropped=None, shapes=None) -> int:
    """Streamed a batch at a time. Rows in another format than `jsonl` are records whose
    fields vary, so a first pass finds the schema that holds them all."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ..faults import atomic_file
    from .tables import with_json

    def batches(rej):
        if fmt == "jsonl" and not keep:
            for b in table.batches(table.columns(), 10_000):
                yield _refreshed_batch(b).cast(_element_named(b.schema))
            return
        # a JSON column's values stay their JSON text, typed JSON again below: decoded, values of
        # several shapes (an object, a list, a text) make no Arrow column and stopped the run
        buf, json_cols = [], set()

        def typed(recs):
            t = pa.Table.from_pylist(recs)
            return with_json(t, [n for n in t.column_names if n in json_cols and pa.types.is_string(t.schema.field(n).type)])
        for rec in _rows_for(fmt, table, keep, rej, json_cols, dropped if rej is rejected else None):
            buf.append(rec)
            if len(buf) == 10_000:
                yield typed(buf)
                buf = []
        if buf:
            yield typed(buf)

    schema = None
    if not (fmt == "jsonl" and not keep):
        for b in batches([]):
            schema = b.schema if schema is None else pa.unify_schemas([schema, b.schema], promote_options="permissive")
    n = 0
    with atomic_file(path, "wb") as fh:
        writer = None
        for b in batches(rejected):
            if schema is not None:
                b = pa.Table.from_pylist(b.to_pylist(), schema=schema) if b.schema != schema else b
            if writer is None:
                writer = pq.ParquetWriter(fh, b.schema)
            writer.write_table(b)
            n += b.num_rows
        if writer is None:  # no rows: an empty file (with the table's columns, for jsonl)
            writer = pq.ParquetWriter(fh, schema or (_element_named(table.arrow(table.columns()).schema)
                                                     if fmt == "jsonl" and not keep else pa.schema([])))
        if shapes is not None:
            shapes.append(writer.schema)
        writer.close()
    return n


def _element_named(schema):
    """`schema` with every list's item field named `element` (Parquet's name for it): DuckDB
    names it `l`, a table read back from Parquet `element`, and the file kept the name it was
    given, so the same rows made different bytes on the two engines."""
    import pyarrow as pa

    def fix(t):
        if pa.types.is_list(t):
            return pa.list_(pa.field("element", fix(t.value_type), t.value_field.nullable))
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, fix(f.type), f.nullable, f.metadata) for f in t])
        return t
    return pa.schema([pa.field(f.name, fix(f.type), f.nullable, f.metadata) for f in schema], metadata=schema.metadata)


def _tag_counts(table, path: Path, col: str, atomic_write) -> int:
    """A tag vocabulary report: rows, distinct tags, mean tags per row, and rows per tag."""
    from collections import Counter
    counts: Counter = Counter()
    n = tagged = total = 0
    for b in table.batches([col]):
        for tags in b.column(0).to_pylist():
            n += 1
            if tags is not None:
                tagged += 1
                total += len(tags)
                counts.update(tags)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    doc = {"rows": n, "distinct_tags": len(ranked), "mean_tags_per_row": round(total / tagged if tagged else 0.0, 4),
           "tags": [{"tag": t, "rows": c} for t, c in ranked]}
    atomic_write(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return len(ranked)

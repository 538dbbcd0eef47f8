"""Streaming readers: files -> canonical rows in chunks, bad records set aside with reasons.

Supported: jsonl/ndjson, json (an array, or one Super-NaturalInstructions task object),
parquet, csv/tsv, Arrow (a Hugging Face `save_to_disk` folder: io/hf_disk.py); a directory
or a glob of them. Every record gets a stable `_id`
(`<source>:<index>`, or the value of the `id=` column when given and unique).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import io
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..diagnostics import UserError
from .formats import FORMATS, BadRow, canonical, detect, is_oasst_message, oasst_branches, oasst_trees, same_name
from .values import Twice, lone_surrogate, odd_type, plain_value, unique_keys

EXTS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
        ".csv": "csv", ".tsv": "tsv", ".arrow": "arrow"}
# text files may come compressed (`data.jsonl.gz`), as dataset dumps often are; Parquet
# compresses inside the file
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
BOM = b"\xef\xbb\xbf"


def kind_suffix(path: Path) -> str:
    """The file type's extension, under a compression suffix: `a.jsonl.gz` -> `.jsonl`."""
    s = path.suffix.lower()
    return Path(path.stem).suffix.lower() if s in COMPRESSIONS else s


def is_compressed(path: Path) -> bool:
    return path.suffix.lower() in COMPRESSIONS


def _readable(path: Path) -> bool:
    from .hf_disk import is_metadata
    kind = kind_suffix(path)
    return kind in EXTS and not (is_compressed(path) and kind in (".parquet", ".arrow")) and not is_metadata(path)


UTF32_LE = b"\xff\xfe\x00\x00"


def open_bytes(path: Path):
    """A data file as bytes, decompressed, past a UTF-8 byte-order mark (as Windows tools
    write one) so that the first record parses."""
    import bz2
    import gzip
    import lzma
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": _zstd_open}.get(path.suffix.lower())
    fh = opener(path, "rb") if opener else open(path, "rb")
    try:
        head = fh.peek(4)[:4]
        if head[:3] == BOM:
            fh.read(3)
    except (OSError, EOFError, ValueError) as e:  # not what its name says (a .gz that is not gzip)
        fh.close()
        raise UserError(f"{path}: cannot read it as {path.suffix} ({e})")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # every line would be set aside as invalid UTF-8
        fh.close()
        wide = "32" if head == UTF32_LE else "16"
        raise UserError(f"{path}: the file is UTF-{wide} encoded "
                        "(it starts with that byte-order mark); recipe reads UTF-8: convert it first, e.g. "
                        f"`iconv -f UTF-{wide} -t UTF-8 {path.name} > {path.stem}.utf8{path.suffix}`")
    return fh


def _zstd_open(path: Path, mode: str):
    """A Zstandard file (`data.jsonl.zst`, as large corpora ship) through pyarrow's codec:
    Python 3.11's standard library has none."""
    import io

    import pyarrow as pa
    return io.BufferedReader(pa.input_stream(str(path), compression="zstd"))


MAX_RECORD_BYTES = 16 * 1024 * 1024  # larger records are set aside, not parsed
RAW_KEEP = 500  # characters of an unreadable line kept in set_aside.jsonl


@dataclass
class Item:
    """One record of an input file, or why it could not be read."""
    index: int
    where: str              # file:line for messages
    record: object = None
    error: str | None = None
    raw: str | None = None
    fmt: str | None = None  # the format the file's structure gave (a Super-NaturalInstructions task file)


def list_files(path: str) -> list[Path]:
    """The files a source path names, or a clear error before anything runs."""
    p = Path(path)
    if any(ch in path for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(path, recursive=True) if Path(f).is_file() and _readable(Path(f)))
        if not files:
            raise UserError(f"no readable file matches {path} ({', '.join(sorted(EXTS))}, optionally .gz/.bz2/.xz/.zst)")
        return files
    if not p.exists():
        raise UserError(f"input not found: {path}")
    if p.is_dir():
        from .hf_disk import saved_dataset_files
        saved = saved_dataset_files(p)  # a Hugging Face save_to_disk folder: its files in its order
        if saved is not None:
            return saved
        files = sorted(f for f in p.rglob("*") if f.is_file() and _readable(f))
        if not files:
            raise UserError(f"{path} is a directory with no readable files ({', '.join(sorted(EXTS))})")
        return files
    if not _readable(p):
        raise UserError(f"{path}: unknown file type `{''.join(p.suffixes[-2:]) if is_compressed(p) else p.suffix}`; "
                        f"use one of {', '.join(sorted(EXTS))} (text files optionally .gz, .bz2, .xz or .zst)")
    if p.stat().st_size == 0:
        raise UserError(f"input is empty: {path}")
    return [p]


def _no_nan(name):
    raise ValueError(f"non-standard JSON constant {name}")


_STRICT = json.JSONDecoder(parse_constant=_no_nan, object_pairs_hook=unique_keys)
_LOOSE = json.JSONDecoder(object_pairs_hook=unique_keys)


def _loads(text: str, nan: bool = False):
    """`json.loads`; NaN and Infinity refused unless `nan`; a field given twice with two
    values refused (`values.unique_keys`); nesting deeper than Python's recursion allows is a
    ValueError like any malformed JSON (its RecursionError stopped `check` and the run with a
    traceback)."""
    try:
        return (_LOOSE if nan else _STRICT).decode(text)
    except RecursionError:
        raise ValueError("nested deeper than the JSON reader follows") from None


def _iter_jsonl(path: Path) -> Iterator[Item]:
    with open_bytes(path) as fh:
        yield from jsonl_items(path, fh, 1, 0)


def jsonl_items(path: Path, lines, first_lineno: int, first_idx: int) -> Iterator[Item]:
    """Items of JSON lines (`lines` from line number `first_lineno`, the first non-blank one
    being item `first_idx`); blank lines are skipped and do not count."""
    idx = first_idx
    for lineno, raw in enumerate(lines, first_lineno):
        if not raw.strip():
            continue
        where = f"{path.name}:{lineno}"
        if len(raw) > MAX_RECORD_BYTES:
            yield Item(idx, where, error=f"{where}: record larger than {MAX_RECORD_BYTES} bytes",
                       raw=raw[:RAW_KEEP].decode("utf-8", "replace"))
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield Item(idx, where, error=f"{where}: invalid UTF-8 at byte {e.start}",
                           raw=raw[:RAW_KEEP].decode("utf-8", "replace"))
            else:
                try:
                    yield Item(idx, where, record=_loads(text))
                except ValueError as e:
                    yield Item(idx, where, error=f"{where}: malformed JSON ({_short(e)})",
                               raw=text.rstrip("\n")[:RAW_KEEP])
        idx += 1


def _short(e: Exception) -> str:
    s = str(e)
    return s.split(":")[0] if isinstance(e, json.JSONDecodeError) else s


def _iter_json(path: Path) -> Iterator[Item]:
    """An array streams (io/json_array.py); any other document is read whole."""
    try:
        yield from array_items(path)
        return
    except ValueError as e:
        if str(e) != "not a JSON array":
            raise
    yield from _iter_json_whole(path)


def array_items(path: Path, resume: tuple[int, int, int] | None = None) -> Iterator[Item]:
    """The elements of the JSON array `path` as Items; `resume` = (byte offset, line, index)
    of an element to start from (offsets past a byte-order mark, as `open_bytes` reads)."""
    from .json_array import BadUtf8, elements
    with open_bytes(path) as fh:
        if resume:
            fh.seek(fh.tell() + resume[0])
        try:
            for i, (kind, value, raw, line) in enumerate(elements(fh, MAX_RECORD_BYTES, resume and resume[:2]),
                                                         resume[2] if resume else 0):
                if kind == "ok":
                    yield Item(i, f"{path.name}[{i}]", record=value)
                else:
                    where = f"{path.name}:{line}"
                    yield Item(i, where, error=f"{where}: {value}", raw=raw[:RAW_KEEP])
        except BadUtf8 as e:
            raise UserError(f"{path}: invalid UTF-8 at byte {e.offset}")


def strict_doc(path: Path):
    """A whole JSON file's document, or None where `_iter_json_whole` would refuse, repair or
    recover it (it says why then)."""
    try:
        with open_bytes(path) as fh:
            return _loads(fh.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, Twice):
        return None


def _iter_json_whole(path: Path) -> Iterator[Item]:
    with open_bytes(path) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: invalid UTF-8 at byte {e.start}")
    try:
        doc = _loads(text)
    except Twice as e:  # a whole document (not an array: those stream) whose fields are in doubt
        raise UserError(f"{path}: {e}") from None
    except ValueError as e:
        if "non-standard JSON constant" not in str(e):
            yield from _iter_json_recover(path, text)
            return
        # NaN/Infinity somewhere (often in metadata): parse anyway; rows that carry one in a
        # field are set aside by the per-row checks
        try:
            doc = _loads(text, nan=True)
        except ValueError:
            yield from _iter_json_recover(path, text)
            return
    if isinstance(doc, dict) and "Instances" in doc:  # a Super-NaturalInstructions task file
        yield from _ni_items(path, doc)
        return
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise UserError(f"{path}: expected a JSON array of records, found {type(doc).__name__}")
    for i, rec in enumerate(doc):
        yield Item(i, f"{path.name}[{i}]", record=rec)


def _iter_json_recover(path: Path, text: str) -> Iterator[Item]:
    """A JSON array with broken elements: decode element by element, skip past damage.
    NaN and Infinity decode (as the whole-file and streamed readers take them): the row's
    own checks set aside a record that carries one, with the field's name."""
    dec = _LOOSE
    pos = text.find("[")
    if pos < 0:
        raise UserError(f"{path}: not a JSON array and not valid JSON")
    pos += 1
    idx = 0
    n = len(text)
    while pos < n:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "]":
            break
        line = text.count("\n", 0, pos) + 1
        try:
            try:
                rec, end = dec.raw_decode(text, pos)
            except RecursionError:
                raise ValueError("nested deeper than the JSON reader follows") from None
            yield Item(idx, f"{path.name}:{line}", record=rec)
            pos = end
        except ValueError as e:
            # resynchronise at the next line that starts a new object
            nxt = text.find("\n", pos)
            while nxt >= 0 and not text[nxt + 1:nxt + 200].lstrip(" \t").startswith("{"):
                nxt = text.find("\n", nxt + 1)
            stop = nxt if nxt >= 0 else n
            yield Item(idx, f"{path.name}:{line}", error=f"{path.name}:{line}: malformed JSON ({_short(e)})",
                       raw=text[pos:stop].strip()[:RAW_KEEP])
            pos = stop
        idx += 1


# a task file's fields kept on each of its rows (lists of text): what SuperNI's own splits filter
# by (English tasks, categories), as columns
NI_TASK_FIELDS = (("Categories", "categories"), ("Domains", "domains"), ("Reasoning", "reasoning"),
                  ("Source", "source"), ("Input_language", "input_language"), ("Output_language", "output_language"),
                  ("Instruction_language", "instruction_language"))


def _ni_items(path: Path, doc: dict) -> Iterator[Item]:
    """A Natural Instructions task file's instances as Alpaca records: the definition is the
    instruction, the first of an instance's outputs the answer (all of them in `outputs` where
    there are several), and the task's categories, domains, languages and positive examples
    columns of every row (they were dropped until session 40)."""
    definition = doc.get("Definition")
    definition = " ".join(definition) if isinstance(definition, list) else str(definition or "")
    task = {col: doc[k] for k, col in NI_TASK_FIELDS
            if isinstance(doc.get(k), list) and all(isinstance(x, str) for x in doc[k])}
    shots = [{k: e[k] if isinstance(e.get(k), str) else None for k in ("input", "output", "explanation")}
             for e in doc.get("Positive Examples") or [] if isinstance(e, dict)]
    if shots:
        task["positive_examples"] = shots
    for i, inst in enumerate(doc.get("Instances") or []):
        if not isinstance(inst, dict):
            yield Item(i, f"{path.name}[{i}]", error="instance is not an object")
            continue
        outs = inst.get("output")
        out = outs[0] if isinstance(outs, list) and outs else outs
        rec = {"instruction": definition, "input": inst.get("input"), "output": out,
               "task": path.stem, "definition": definition, **task}
        if isinstance(outs, list) and len(outs) > 1:
            rec["outputs"] = outs
        if "id" in inst:
            rec["instance_id"] = inst["id"]
        yield Item(i, f"{path.name}[{i}]", record=rec, fmt="ni")


def delimiter(path: Path) -> str:
    """A TSV file's tab; a CSV file's comma, or its semicolon when its first line has
    semicolons and no comma (as spreadsheets write CSV where the comma is the decimal mark:
    such a file was one column named `instruction;output`, and an error)."""
    if kind_suffix(path) == ".tsv":
        return "\t"
    try:
        with open_bytes(path) as fh:
            first = fh.readline(1 << 16)
    except OSError:
        return ","
    return ";" if b";" in first and b"," not in first else ","


def first_bad_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 is: `at byte N (line L)` of the (decompressed) file."""
    import codecs
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    at, lines = 0, 1
    with open_bytes(path) as fh:
        while chunk := fh.read(1 << 20):
            held = len(dec.getstate()[0])  # bytes of a character the last chunk cut, not yet decoded
            try:
                dec.decode(chunk)
            except UnicodeDecodeError as e:
                line = lines + e.object[:e.start].count(b"\n")
                return f"at byte {at - held + e.start} (line {line})"
            at += len(chunk)
            lines += chunk.count(b"\n")
    return "somewhere in the file"


def header_names(names: list[str]) -> list[str]:
    """A header row's names, each once: an unnamed column (pandas' index, a trailing
    delimiter) is `column_<position>`, and a name the header repeats is `<name>_2`, `_3`...
    for its later columns. As a dict, the record kept the last column of a repeated name
    and silently lost the others."""
    out: list[str] = []
    taken = set(n for n in names if n)
    for i, n in enumerate(names, 1):
        if not n or n in out:
            base, k = (n, 2) if n else (f"column_{i}", 1)
            cand = base if not n else f"{base}_{k}"
            while cand in taken or cand in out:
                k += 1
                cand = f"{base}_{k}"
            n = cand
        out.append(n)
    return out


class CsvRecords:
    """A CSV/TSV file's records as Items, in order. `skip(n)` passes over n records at the csv
    module's C speed: the Arrow fast path reads only the blocks it refuses through here."""

    def __init__(self, path: Path, delim: str, names: list[str] | None = None):
        """`names`: the fields of a file without a header row (its first line is a record)."""
        self.path, self.delim, self.index, self.names = path, delim, 0, names
        # a byte-order mark (as spreadsheets write) is not part of the first column's name
        self.fh = io.TextIOWrapper(open_bytes(path), encoding="utf-8", errors="strict", newline="")
        # fields as long as a JSON record may be (the csv module's own limit is 128 KiB)
        csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))
        self.reader = csv.DictReader(self.fh, fieldnames=names, delimiter=delim)
        if names is None:
            with self._errors():
                if self.reader.fieldnames is not None:
                    self.reader.fieldnames = header_names(self.reader.fieldnames)

    @contextlib.contextmanager
    def _errors(self):
        """The csv module's errors as the user's: which file, what is wrong."""
        try:
            yield
        except UnicodeDecodeError:
            # the error's offset is within the text layer's current chunk: find the file's own
            raise UserError(f"{self.path}: invalid UTF-8 {first_bad_utf8(self.path)}")
        except csv.Error as e:
            raise UserError(f"{self.path}: {e}")

    def skip(self, n: int) -> None:
        with self._errors():
            self.reader.fieldnames  # noqa: B018 (reads the header)
            while n > 0:
                row = next(self.reader.reader, None)
                if row is None:
                    return
                if row:  # a blank line is not a record (DictReader skips it too)
                    n, self.index = n - 1, self.index + 1

    def items(self, n: int | None = None) -> Iterator[Item]:
        """The next `n` records (None: all the rest)."""
        name, reader = self.path.name, self.reader
        with self._errors():
            for rec in itertools.islice(reader, n):
                where = f"{name}:{reader.line_num}"
                if None in rec:
                    header = f"the {len(self.names)} names in `columns`" if self.names else "the header"
                    yield Item(self.index, where, error=f"{where}: more fields than {header}",
                               raw=self.delim.join(str(v) for v in rec.values() if not isinstance(v, list))[:RAW_KEEP])
                else:
                    yield Item(self.index, where, record=_lists_decoded(dict(rec)))
                self.index += 1

    def close(self) -> None:
        self.fh.close()


# CSV holds no lists: the CSV sink writes a row's conversation fields as JSON text, and a
# field a format needs as a list is read back as the list it was (other text stays text)
LIST_FIELDS = ("messages", "conversations", "history", "instances", "turns")


def _lists_decoded(rec: dict) -> dict:
    for k in LIST_FIELDS:
        v = rec.get(k)
        if isinstance(v, str) and v.startswith("["):
            try:
                got = json.loads(v)
            except (ValueError, RecursionError):  # not a list, or nested past what json follows
                continue
            if isinstance(got, list):
                rec[k] = got
    return rec


def iter_csv(path: Path, delim: str, names: list[str] | None = None) -> Iterator[Item]:
    recs = CsvRecords(path, delim, names)
    try:
        yield from recs.items()
    finally:
        recs.close()


def open_parquet(path: Path):
    import pyarrow.parquet as pq
    try:
        return pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable parquet file ({e})")


def _iter_parquet(path: Path) -> Iterator[Item]:
    pf = open_parquet(path)
    i = 0
    for batch in pf.iter_batches(batch_size=8192):
        yield from parquet_items(batch, path, i)
        i += batch.num_rows


def _iter_arrow(path: Path) -> Iterator[Item]:
    from .hf_disk import arrow_batches
    i = 0
    for batch in arrow_batches(path):
        yield from parquet_items(batch, path, i)
        i += batch.num_rows


def parquet_items(batch, path: Path, first: int) -> list[Item]:
    """Rows of a Parquet batch as Items (row `first` on). Parquet strings are not checked for
    UTF-8 when read: a row holding invalid bytes is set aside, not a crash of the whole read.
    Values JSON has no type for are made plain (`plain_value`)."""
    try:
        recs = batch.to_pylist()
    except UnicodeDecodeError:
        recs = None
    if recs is not None and any(odd_type(f.type) for f in batch.schema):
        recs = [plain_value(r) for r in recs]
    if recs is not None:
        return [Item(i, f"{path.name}[{i}]", record=rec) for i, rec in enumerate(recs, first)]
    out = []
    for j in range(batch.num_rows):
        i, where = first + j, f"{path.name}[{first + j}]"
        try:
            out.append(Item(i, where, record=plain_value(batch.slice(j, 1).to_pylist()[0])))
        except UnicodeDecodeError as e:
            out.append(Item(i, where, error=f"{where}: invalid UTF-8 in a text field ({e.reason})"))
    return out


def _check_columns_fit(path: Path, columns: list[str] | None) -> str:
    """The file's kind; an error when `columns` is given for a file that is not CSV/TSV."""
    kind = EXTS[kind_suffix(path)]
    if columns and kind not in ("csv", "tsv"):
        raise UserError(f"{path}: `columns` names the fields of a CSV/TSV file without a header row; "
                        f"this is a {kind} file")
    return kind


def iter_items(path: Path, columns: list[str] | None = None) -> Iterator[Item]:
    """A file's records; `columns` names the fields of a CSV/TSV file without a header row."""
    kind = _check_columns_fit(path, columns)
    if kind == "jsonl":
        return _iter_jsonl(path)
    if kind == "json":
        return _iter_json(path)
    if kind in ("csv", "tsv"):
        return iter_csv(path, delimiter(path), columns)
    if kind == "arrow":
        return _iter_arrow(path)
    return _iter_parquet(path)


def _bad_floats(rec: dict) -> str | None:
    for k, v in rec.items():
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return f"field `{k}` is {v}"
    return lone_surrogate(rec)


def _fold_oasst(items: list) -> tuple[list, dict[int, str]]:
    """Items of an OASST message file with each root's replies nested into it (as in the
    tree export), and which items were folded into which root."""
    recs = [(i, it) for i, it in enumerate(items) if not it.error and isinstance(it.record, dict)]
    roots, owner = oasst_trees([it.record for _, it in recs])
    for j, tree in roots.items():
        i, it = recs[j]
        items[i] = dataclasses.replace(it, record=tree)
    return items, {recs[j][1].index: root for j, root in owner.items()}


def iter_rows(source: str, files: list[Path], fmt: str | None, id_col: str | None = None,
              log=print, multi: bool | None = None, columns: list[str] | None = None,
              branches: str | None = None) -> Iterator[tuple[str, dict | None, str | None, str | None]]:
    """Yield (`_id`, canonical row or None, reason, raw) for every record of every file;
    `multi`: the files are some of a source's several (ids then name the file); `columns`:
    the field names of CSV/TSV files without a header row; `branches="all"`: an OASST tree is
    a row for each path to a last reply (`<id>.0` the best path, `.1`, ...), not its best path."""
    multi = len(files) > 1 if multi is None else multi
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown format `{fmt}`; formats: {', '.join(FORMATS)}")
    for f in files:
        detected = fmt  # detected per file: a folder may mix formats
        prefix = f"{source}:{f.name}:" if multi else f"{source}:"
        items = iter(iter_items(f, columns))
        first = next(items, None)
        folded: dict[int, str] = {}  # item index -> root message id, for OASST replies
        trees = others = 0  # OASST trees, and the conversations in them beside the best
        if first is not None and detected in (None, "oasst") and is_oasst_message(first.record):
            # OASST messages, one per line: replies join their conversation's root first
            items, folded = _fold_oasst([first, *items])
        elif first is not None:
            items = itertools.chain([first], items)  # streamed: only OASST message files are held
        for it in items:
            if detected is None and not it.error and isinstance(it.record, (dict, str)):
                if it.fmt:  # an NI task file's instances are Alpaca records: the file's keys tell, theirs do not
                    detected, why = it.fmt, "keys `Definition`, `Instances`"
                elif isinstance(it.record, dict):
                    detected, why = detect(it.record)
                else:
                    detected, why = "instruction_only", "records that are JSON strings: one prompt each"
                if detected is None:
                    raise UserError(f"{f}: cannot tell the format from {why}; pass format=... "
                                    f"(one of {', '.join(FORMATS)})")
                log(f"{source}: detected format `{detected}` (from {why})" + (f" in {f.name}" if multi else ""))
            if it.index in folded:
                yield prefix + str(it.index), None, (f"{it.where}: an OASST reply, part of the conversation that "
                                                     f"starts at message {folded[it.index]}"), None
                continue
            if detected == "oasst" and not it.error and isinstance(it.record, dict):
                paths = oasst_branches(it.record)
                if branches == "all":
                    for k, rec in enumerate(paths):
                        rid, row, why, raw = item_row(dataclasses.replace(it, record=rec), prefix, detected, id_col)
                        yield f"{rid}.{k}", row, why, raw
                    continue
                trees, others = trees + 1, others + len(paths) - 1
            yield item_row(it, prefix, detected, id_col)
        if others:  # said: the other conversations are not rows, and an option reads them
            log(f"{source}: {trees:,} OASST trees read as their top-ranked conversations; they hold {others:,} more "
                f"(`read(..., branches=\"all\")` reads every one)" + (f" in {f.name}" if multi else ""))


def item_row(it: Item, prefix: str, fmt: str | None, id_col: str | None = None):
    """(`_id`, canonical row or None, reason, raw) for one item of a file in format `fmt`."""
    rid = prefix + str(it.index)
    if it.error:
        return rid, None, it.error, it.raw
    rec = it.record
    if isinstance(rec, str) and fmt == "instruction_only":  # a prompt list: one JSON string a line
        rec = {"instruction": rec}
    if not isinstance(rec, dict):
        return rid, None, f"{it.where}: not a JSON object", json.dumps(rec, ensure_ascii=False)[:RAW_KEEP]
    bad = _bad_floats(rec)
    if bad:
        return rid, None, f"{it.where}: {bad}", None
    try:
        row = canonical(fmt if fmt != "ni" else "alpaca", rec)
    except BadRow as e:
        return rid, None, f"{it.where}: {e}", None
    if id_col:
        v = rec.get(id_col)
        if v is None or isinstance(v, (dict, list)):
            return rid, None, f"{it.where}: id column `{id_col}` missing or not a scalar", None
        rid = str(v)
    return rid, row, None, None


def source_splits(path: str) -> list[str]:
    """The dataset splits a source's files mix (io/hf_disk.mixed_splits); empty when one."""
    from .hf_disk import mixed_splits
    try:
        return mixed_splits(list_files(path))
    except (UserError, OSError):
        return []


SNIFF_ROWS = 200  # rows `check` reads from a source's first file for its column types
SNIFF_ROWS_LATER, SNIFF_FILES = 20, 1000  # and from each later file, in its first files


def sniff_columns(path: str, fmt: str | None, columns: list[str] | None = None
                  ) -> tuple[dict[str, str] | None, str | None, str | None]:
    """({column: type} from the first rows of each file, for compile-time checks; or None), why
    the input cannot be read at all (None when it can: every file's format is detected), and,
    when every row read was set aside, how many and the first one's reason. A column's type is
    its non-null values' common type: int and float make float, other mixes (or only nulls) make
    `any`."""
    from ..types import ANY, CANONICAL_TYPES, FLOAT, INT, of_value
    seen: dict[str, set] | None = None
    spelled: dict[str, str] = {}
    bad, first_bad = 0, None
    try:
        files = list_files(path)
        for f in files:
            _check_columns_fit(f, columns)
        # the first file's first rows, then the first few of every other file (up to a bound):
        # a folder's files may differ in format and columns, and each is detected on its own
        for i, f in enumerate(files[:SNIFF_FILES]):
            for n, (_id, row, why, _raw) in enumerate(iter_rows("sniff", [f], fmt, log=lambda *_: None, columns=columns)):
                if n >= (SNIFF_ROWS if i == 0 else SNIFF_ROWS_LATER):
                    break
                if row is None:
                    bad, first_bad = bad + 1, first_bad or why
                    continue
                seen = seen if seen is not None else {}
                same_name([(None, row)], None, spelled)  # as the read names them (one name in any case)
                for k, v in row.items():
                    seen.setdefault(k, set())
                    if v is not None:
                        seen[k].add(of_value(v))
    except UserError as e:
        return None, str(e), None
    except OSError as e:
        return None, f"cannot read {path}: {e.strerror}", None
    if seen is None:
        return None, None, (f"every row `check` read ({bad}) is set aside; the first: {first_bad}" if bad else None)

    def common(ts: set) -> str:
        if len(ts) == 1:
            return next(iter(ts))
        return FLOAT if ts == {INT, FLOAT} else ANY
    return {**{k: common(ts) for k, ts in seen.items()}, **CANONICAL_TYPES}, None, None

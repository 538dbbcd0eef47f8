"""`recipe compare OLD NEW`: what a change did to the data, from two finished runs' output
folders: for each sink both wrote, the rows removed, added and changed, with why a removed
row left (the step that set it aside in the new run, from its `set_aside.jsonl`) and why an
added one was not there before; and each step's rows out, side by side. `recipe plan
--against` says which steps a change re-runs; this says what they then did to the rows.

Rows are matched by `_id` where both files carry it (canonical JSON lines, the default sink),
else by their whole content (formats such as Alpaca's leave the ids out), counted as a
multiset. Memory: each side's row keys and content hashes, and the shown rows' texts."""
from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .diagnostics import UserError
from .io.readers import kind_suffix, open_bytes
from .ui import n_rows

SHOWN = 5  # rows shown of each kind, unless asked for more
DUPLICATE_OF = re.compile(r"duplicate of (\S+?)[ ,;)]")  # dedupe's reasons name the row kept


@dataclass
class SinkChange:
    file: str
    old_rows: int
    new_rows: int
    by_id: bool  # matched by `_id` (else by content)
    same: int = 0
    reordered: bool = False  # the rows both hold come in another order
    removed: list = field(default_factory=list)   # (key, text), every one
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)   # (key, text, fields that differ)
    removed_why: Counter = field(default_factory=Counter)  # the new run's step that set them aside
    added_why: Counter = field(default_factory=Counter)    # the old run's step that had set them aside
    reasons: dict = field(default_factory=dict)  # a shown row's key -> "step: reason"
    kept: dict = field(default_factory=dict)  # a shown removed duplicate's key -> (the row kept, where they part)

    def as_json(self, show: int) -> dict:
        return {"file": self.file, "old_rows": self.old_rows, "new_rows": self.new_rows,
                "matched_by": "_id" if self.by_id else "content", "same": self.same, "reordered": self.reordered,
                "removed": len(self.removed), "added": len(self.added), "changed": len(self.changed),
                "removed_by": dict(self.removed_why.most_common()), "added_back_from": dict(self.added_why.most_common()),
                "examples": {"removed": [{"key": k, "text": t} | ({"why": self.reasons[k]} if k in self.reasons else {})
                                         | ({"kept": {"key": self.kept[k][0], "differs": self.kept[k][1]}} if k in self.kept else {})
                                         for k, t in self.removed[:show]],
                             "added": [{"key": k, "text": t} | ({"why_not_before": self.reasons[k]} if k in self.reasons else {})
                                       for k, t in self.added[:show]],
                             "changed": [{"key": k, "text": t, "fields": f} for k, t, f in self.changed[:show]]}}


def compare(old: Path, new: Path, show: int = SHOWN) -> tuple[list[SinkChange], list[dict], list[str]]:
    """(each sink both runs wrote, compared; each step's rows out in both; the sinks only one
    run wrote, said). The first `show` rows of each kind get their reasons."""
    mo, mn = _manifest(old), _manifest(new)
    so, sn = {s["file"]: s for s in mo["sinks"]}, {s["file"]: s for s in mn["sinks"]}
    notes = [f"{f}: written by the old run only" for f in so if f not in sn]
    notes += [f"{f}: written by the new run only" for f in sn if f not in so]
    changes = []
    texts, olds = [], []  # each sink's rows by id: a removed duplicate and the row it copied
    for f in [f for f in sn if f in so]:
        rows, before = list(_rows(new, sn[f])), list(_rows(old, so[f]))
        changes.append(_sink(f, before, rows))
        by_id = changes[-1].by_id
        texts.append({r["_id"]: r for r in rows} if by_id else {})
        olds.append({r["_id"]: r for r in before} if by_id else {})
    _reasons(new, [c.removed for c in changes], [c.removed_why for c in changes], [c.reasons for c in changes], show)
    _reasons(old, [c.added for c in changes], [c.added_why for c in changes], [c.reasons for c in changes], show)
    for c, by_id, old_rows in zip(changes, texts, olds):
        for k, _ in c.removed[:show]:
            twin = DUPLICATE_OF.search(c.reasons.get(k, ""))
            if twin and twin.group(1) in by_id and k in old_rows:
                c.kept[k] = (twin.group(1), _where_they_differ(_full_text(old_rows[k]), _full_text(by_id[twin.group(1)])))
    steps = _steps(mo, mn)
    return changes, steps, notes


def _manifest(out: Path) -> dict:
    f = out / "manifest.json"
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{out} holds no manifest.json: give the --out folder of a finished run") from None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {f}: {e}") from None


def _files(out: Path, sink: dict) -> list[Path]:
    """The sink's files in `out` (its shards, in order), wherever the run was started from."""
    names = [Path(x["path"]).name for x in sink["files"]] if sink.get("files") else [Path(sink["file"]).name]
    folder = out / Path(sink["file"]).parent if not sink.get("files") or Path(sink["file"]).suffix else out / sink["file"]
    found = [folder / n for n in names]
    missing = [p for p in found if not p.exists()]
    if missing:
        raise UserError(f"{missing[0]} is missing: the run's manifest lists it as `{sink['file']}`")
    return found


def _rows(out: Path, sink: dict) -> Iterator[dict]:
    for p in _files(out, sink):
        kind = kind_suffix(p)
        try:
            if kind in (".jsonl", ".ndjson"):
                with open_bytes(p) as fh:
                    for line in fh:
                        if line.strip():
                            yield json.loads(line)
            elif kind == ".json":
                with open_bytes(p) as fh:
                    yield from json.load(fh)
            elif kind == ".parquet":
                import pyarrow.parquet as pq
                for batch in pq.ParquetFile(p).iter_batches(65_536):
                    yield from batch.to_pylist()
            elif kind in (".csv", ".tsv"):
                import io
                with open_bytes(p) as fh:
                    yield from csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline=""),
                                              delimiter="\t" if kind == ".tsv" else ",")
            else:
                raise UserError(f"{p}: cannot compare a `{kind}` file")
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read {p}: {e}") from None


def _content(row: dict) -> str:
    return hashlib.sha256(json.dumps({k: v for k, v in row.items() if k != "_id"}, sort_keys=True,
                                     ensure_ascii=False, default=str).encode()).hexdigest()


def _short(t: str, n: int = 160) -> str:
    t = " ".join(t.split())
    return t if len(t) <= n else t[:n - 3] + "..."


def _text(row: dict) -> str:
    """A row's first user turn (or instruction, or first text field), on one line, cut."""
    t = " ".join(_full_text(row).split())
    return t if len(t) <= 90 else t[:87] + "..."


def _full_text(row: dict) -> str:
    t = row.get("instruction")
    if not isinstance(t, str):
        turns = row.get("messages") or row.get("conversations") or []
        t = next((x.get("content") or x.get("value") for x in turns if isinstance(x, dict)
                  and (x.get("role") or x.get("from")) in ("user", "human")), None) if isinstance(turns, list) else None
    if not isinstance(t, str):
        t = next((v for v in row.values() if isinstance(v, str)), "")
    return t


def _where_they_differ(a: str, b: str) -> str:
    """Where two near-duplicate texts first part, with a little of each from there."""
    a, b = " ".join(a.split()), " ".join(b.split())
    if a == b:
        return "the same text"
    i = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    lo = max(0, i - 15)
    cut = (lambda t: ("..." if lo else "") + t[lo:i + 45] + ("..." if len(t) > i + 45 else ""))
    return f"they part at character {i + 1:,}: {cut(a)!r} / kept {cut(b)!r}"


def _sink(file: str, old: list[dict], new: list[dict]) -> SinkChange:
    c = SinkChange(file, len(old), len(new), bool(old or new) and all("_id" in r for r in old + new))
    if c.by_id:
        before = {r["_id"]: r for r in old}
        after = {r["_id"]: r for r in new}
        for r in old:
            if r["_id"] not in after:
                c.removed.append((r["_id"], _text(r)))
        for r in new:
            o = before.get(r["_id"])
            if o is None:
                c.added.append((r["_id"], _text(r)))
            elif _content(o) == _content(r):
                c.same += 1
            else:
                fields = sorted(k for k in set(o) | set(r) if o.get(k) != r.get(k))
                c.changed.append((r["_id"], _text(r), fields))
        c.reordered = [r["_id"] for r in old if r["_id"] in after] != [r["_id"] for r in new if r["_id"] in before]
        return c
    # no ids: rows matched by content, a row written twice counting twice
    left = Counter(_content(r) for r in old)
    for r in new:
        h = _content(r)
        if left[h] > 0:
            left[h] -= 1
            c.same += 1
        else:
            c.added.append((None, _text(r)))
    for r in old:
        h = _content(r)
        if left[h] > 0:
            left[h] -= 1
            c.removed.append((None, _text(r)))
    return c


def _reasons(out: Path, keyed: list[list], counts: list[Counter], reasons: list[dict], show: int) -> None:
    """Count, for rows of `keyed` (key, ...) with an `_id`, the step of the run in `out` that
    set each aside (from its set_aside.jsonl, streamed); those it did not: "not in its
    input". The first `show` rows of each list get the reason itself in `reasons`."""
    wanted: dict[str, list[int]] = {}
    shown: set[str] = set()
    for i, rows in enumerate(keyed):
        for j, (k, *_) in enumerate(rows):
            if k is not None:
                wanted.setdefault(k, []).append(i)
                if j < show:
                    shown.add(k)
    if not wanted:
        return
    seen = set()
    f = out / "set_aside.jsonl"
    if f.exists():
        with open(f, "rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                k = rec.get("_id")
                if k in wanted and k not in seen:
                    seen.add(k)
                    for i in wanted[k]:
                        counts[i][rec.get("node", "?")] += 1
                        if k in shown:
                            reasons[i][k] = f"{rec.get('node', '?')}: {rec.get('reason', '')}"
    for k, idx in wanted.items():
        if k not in seen:
            for i in idx:
                counts[i]["(not read: not in that run's input)"] += 1


def _steps(mo: dict, mn: dict) -> list[dict]:
    """Each step's rows out in both runs (steps of one run only too), in the new run's order."""
    old = {n["name"]: n for n in mo.get("nodes", [])}
    new = {n["name"]: n for n in mn.get("nodes", [])}
    names = list(new) + [n for n in old if n not in new]
    return [{"step": s, "old": old[s]["rows_out"] if s in old else None, "new": new[s]["rows_out"] if s in new else None}
            for s in names]


def as_text(changes: list[SinkChange], steps: list[dict], notes: list[str], show: int = SHOWN,
            markdown: bool = False) -> str:
    """The comparison for a terminal, or as Markdown for a pull-request comment (each sink's
    rows in a `diff` block: removed red, added green)."""
    out = []
    for c in changes:
        head = (f"{c.file}: {n_rows(c.old_rows)} -> {n_rows(c.new_rows)}: {len(c.removed):,} removed, "
                f"{len(c.added):,} added, {len(c.changed):,} changed, {c.same:,} the same"
                + ("" if c.by_id else " (matched by content: the file holds no `_id`)")
                + ("; the rows both hold come in another order" if c.reordered else ""))
        why = []
        if c.removed_why:
            why.append("removed, set aside by: " + ", ".join(f"{k} {v:,}" for k, v in c.removed_why.most_common()))
        if c.added_why:
            why.append("added, set aside before by: " + ", ".join(f"{k} {v:,}" for k, v in c.added_why.most_common()))
        rows = []
        for sign, label, got in (("-", "removed", c.removed), ("+", "added", c.added)):
            for k, t in got[:show]:
                rows.append(f"{sign} {k + ': ' if k else ''}{t}")
                if k in c.reasons:
                    rows.append(f"    {'why: ' if sign == '-' else 'before: '}{_short(c.reasons[k])}")
                if k in c.kept:
                    rows.append(f"    against {c.kept[k][0]}: {c.kept[k][1]}")
            if len(got) > show:
                rows.append(f"  ... {len(got) - show:,} more {label}")
        rows += [f"~ {k}: {t} ({', '.join(fields)} changed)" for k, t, fields in c.changed[:show]]
        if len(c.changed) > show:
            rows.append(f"  ... {len(c.changed) - show:,} more changed")
        if markdown:
            out += [f"### `{c.file}`", "", head.split(": ", 1)[1], ""] + [f"- {w}" for w in why] + (
                [""] if why else []) + (["```diff", *rows, "```", ""] if rows else [])
        else:
            out += [head] + [f"  {w}" for w in why] + [f"  {r}" for r in rows]
    moved = [s for s in steps if s["old"] != s["new"]]
    if moved:
        out.append("### Steps whose rows out differ" if markdown else "steps whose rows out differ:")
        if markdown:
            out += ["", "| step | rows out before | after |", "|---|---|---|"]
        for s in moved:
            old = "-" if s["old"] is None else f"{s['old']:,}"
            new = "-" if s["new"] is None else f"{s['new']:,}"
            out.append(f"| `{s['step']}` | {old} | {new} |" if markdown else f"  {s['step']}: {old} -> {new}")
    out += [("- " if markdown else "") + n for n in notes]
    return "\n".join(out) + "\n"

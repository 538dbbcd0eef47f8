"""`recipe compare OLD NEW`: what a change did to the data, from two finished runs' output
folders: for each sink both wrote, the rows removed, added and changed, with why a removed
row left (the step that set it aside in the new run, from its `set_aside.jsonl`) and why an
added one was not there before; and each step's rows out, side by side. `recipe plan
--against` says which steps a change re-runs; this says what they then did to the rows.

Rows are matched by `_id` where both files carry it (canonical JSON lines, the default sink),
else by their whole content (formats such as Alpaca's leave the ids out), counted as a
multiset. Memory: each side's row keys and content hashes (a 1M-row sink: about 200 MB a
side), and the shown rows; each file is read twice."""
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
from .ui import expectation_text, expectation_values, n_rows

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
    # every removed, added and changed row's key (`_id`; None when matched by content), in file order
    removed_keys: list = field(default_factory=list)
    added_keys: list = field(default_factory=list)
    changed_keys: list = field(default_factory=list)
    # the shown ones (the first `show` of each): (key, text), and (key, text, fields that differ)
    removed: list = field(default_factory=list)
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    removed_why: Counter = field(default_factory=Counter)  # the new run's step that set them aside
    added_why: Counter = field(default_factory=Counter)    # the old run's step that had set them aside
    reasons: dict = field(default_factory=dict)  # a shown row's key -> "step: reason"
    kept: dict = field(default_factory=dict)  # a shown removed duplicate's key -> (the row kept, where they part)

    def as_json(self, show: int) -> dict:
        return {"file": self.file, "old_rows": self.old_rows, "new_rows": self.new_rows,
                "matched_by": "_id" if self.by_id else "content", "same": self.same, "reordered": self.reordered,
                "removed": len(self.removed_keys), "added": len(self.added_keys), "changed": len(self.changed_keys),
                "removed_by": dict(self.removed_why.most_common()), "added_back_from": dict(self.added_why.most_common()),
                "examples": {"removed": [{"key": k, "text": t} | ({"why": self.reasons[k]} if k in self.reasons else {})
                                         | ({"kept": {"key": self.kept[k][0], "differs": self.kept[k][1]}} if k in self.kept else {})
                                         for k, t in self.removed[:show]],
                             "added": [{"key": k, "text": t} | ({"why_not_before": self.reasons[k]} if k in self.reasons else {})
                                       for k, t in self.added[:show]],
                             "changed": [{"key": k, "text": t, "fields": f} for k, t, f in self.changed[:show]]}}


def compare(old: Path, new: Path, show: int = SHOWN) -> tuple[list[SinkChange], list[dict], list[str]]:
    """(each sink both runs wrote, compared; each step's rows out in both; the sinks only one
    run wrote, said). Two passes over each file: keys and content hashes, then the shown
    rows (the first `show` of each kind, with their reasons, and the rows kept in their place)."""
    mo, mn = _manifest(old), _manifest(new)
    so, sn = {s["file"]: s for s in mo["sinks"]}, {s["file"]: s for s in mn["sinks"]}
    notes = [f"{f}: written by the old run only" for f in so if f not in sn]
    notes += [f"{f}: written by the new run only" for f in sn if f not in so]
    files = [f for f in sn if f in so]
    changes = [_sink(f, _index(old, so[f]), _index(new, sn[f]), show) for f in files]
    _reasons(new, [c.removed_keys for c in changes], [c.removed_why for c in changes], [c.reasons for c in changes], show)
    _reasons(old, [c.added_keys for c in changes], [c.added_why for c in changes], [c.reasons for c in changes], show)
    for f, c in zip(files, changes):
        _shown(c, old, so[f], new, sn[f], show)
    return changes, _steps(mo, mn), notes + _expectations(mo, mn)


def _expectations(mo: dict, mn: dict) -> list[str]:
    """The recipe's expectations whose verdict moved between the runs (met -> not met, or
    back), and those only one run had, as lines."""
    old = {expectation_text(e): e for e in mo.get("expectations", [])}
    new = {expectation_text(e): e for e in mn.get("expectations", [])}
    out = []
    for t, e in new.items():
        verdict = "met" if e["ok"] else "NOT MET"
        if t not in old:
            out.append(f"{t}: {verdict} (new: {expectation_values(e)})")
        elif old[t]["ok"] != e["ok"]:
            out.append(f"{t}: {'met' if old[t]['ok'] else 'NOT MET'} -> {verdict} ({expectation_values(e)})")
    out += [f"{t}: dropped (was {'met' if e['ok'] else 'NOT MET'})" for t, e in old.items() if t not in new]
    return out


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


def _content(row: dict) -> bytes:
    return hashlib.blake2b(json.dumps({k: v for k, v in row.items() if k != "_id"}, sort_keys=True,
                                      ensure_ascii=False, default=str).encode(), digest_size=16).digest()


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


def _index(out: Path, sink: dict) -> list[tuple]:
    """(`_id` or None, content hash) of each row of a sink's files, in order."""
    return [(r.get("_id"), _content(r)) for r in _rows(out, sink)]


def _sink(file: str, old: list[tuple], new: list[tuple], show: int) -> SinkChange:
    c = SinkChange(file, len(old), len(new), bool(old or new) and all(k is not None for k, _ in old + new))
    if c.by_id:
        before, after = dict(old), dict(new)
        c.removed_keys = [k for k, _ in old if k not in after]
        for k, h in new:
            if k not in before:
                c.added_keys.append(k)
            elif before[k] == h:
                c.same += 1
            else:
                c.changed_keys.append(k)
        c.reordered = [k for k, _ in old if k in after] != [k for k, _ in new if k in before]
        return c
    # no ids: rows matched by content, a row written twice counting twice
    left = Counter(h for _, h in old)
    for _, h in new:
        if left[h] > 0:
            left[h] -= 1
            c.same += 1
        else:
            c.added_keys.append(None)
            c.added.append(h) if len(c.added) < show else None
    for _, h in old:
        if left[h] > 0:
            left[h] -= 1
            c.removed_keys.append(None)
            c.removed.append(h) if len(c.removed) < show else None
    return c


def _shown(c: SinkChange, old: Path, old_sink: dict, new: Path, new_sink: dict, show: int) -> None:
    """The shown rows' texts (a second pass over each side's files, holding only those rows),
    the fields of the shown changed rows, and a shown removed duplicate against the row kept."""
    if c.by_id:
        twins = {m.group(1) for k in c.removed_keys[:show] if (m := DUPLICATE_OF.search(c.reasons.get(k, "")))}
        want_old = set(c.removed_keys[:show]) | set(c.changed_keys[:show])
        want_new = set(c.added_keys[:show]) | set(c.changed_keys[:show]) | twins
        got_old = {r["_id"]: r for r in _rows(old, old_sink) if r.get("_id") in want_old}
        got_new = {r["_id"]: r for r in _rows(new, new_sink) if r.get("_id") in want_new}
        c.removed = [(k, _text(got_old[k])) for k in c.removed_keys[:show]]
        c.added = [(k, _text(got_new[k])) for k in c.added_keys[:show]]
        c.changed = [(k, _text(got_new[k]), sorted(f for f in set(got_old[k]) | set(got_new[k])
                                                  if got_old[k].get(f) != got_new[k].get(f)))
                     for k in c.changed_keys[:show]]
        for k in c.removed_keys[:show]:
            twin = DUPLICATE_OF.search(c.reasons.get(k, ""))
            if twin and twin.group(1) in got_new:
                c.kept[k] = (twin.group(1), _where_they_differ(_full_text(got_old[k]), _full_text(got_new[twin.group(1)])))
        return
    # by content: the first rows with each shown hash (as many as were shown of it)
    for attr, out, sink in (("removed", old, old_sink), ("added", new, new_sink)):
        wanted = Counter(getattr(c, attr))
        texts = []
        for r in _rows(out, sink):
            h = _content(r)
            if wanted[h] > 0:
                wanted[h] -= 1
                texts.append((None, _text(r)))
                if len(texts) == len(getattr(c, attr)):
                    break
        setattr(c, attr, texts)


def _reasons(out: Path, keyed: list[list], counts: list[Counter], reasons: list[dict], show: int) -> None:
    """Count, for the keys of `keyed` (`_id`s; None for rows matched by content), the step of the run in `out` that
    set each aside (from its set_aside.jsonl, streamed); those it did not: "not in its
    input". The first `show` rows of each list get the reason itself in `reasons`."""
    wanted: dict[str, list[int]] = {}
    shown: set[str] = set()
    for i, keys in enumerate(keyed):
        for j, k in enumerate(keys):
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
        head = (f"{c.file}: {n_rows(c.old_rows)} -> {n_rows(c.new_rows)}: {len(c.removed_keys):,} removed, "
                f"{len(c.added_keys):,} added, {len(c.changed_keys):,} changed, {c.same:,} the same"
                + ("" if c.by_id else " (matched by content: the file holds no `_id`)")
                + ("; the rows both hold come in another order" if c.reordered else ""))
        why = []
        if c.removed_why:
            why.append("removed, set aside by: " + ", ".join(f"{k} {v:,}" for k, v in c.removed_why.most_common()))
        if c.added_why:
            why.append("added, set aside before by: " + ", ".join(f"{k} {v:,}" for k, v in c.added_why.most_common()))
        rows = []
        for sign, label, got, total in (("-", "removed", c.removed, c.removed_keys), ("+", "added", c.added, c.added_keys)):
            for k, t in got[:show]:
                rows.append(f"{sign} {k + ': ' if k else ''}{t}")
                if k in c.reasons:
                    rows.append(f"    {'why: ' if sign == '-' else 'before: '}{_short(c.reasons[k])}")
                if k in c.kept:
                    rows.append(f"    against {c.kept[k][0]}: {c.kept[k][1]}")
            if len(total) > show:
                rows.append(f"  ... {len(total) - show:,} more {label}")
        rows += [f"~ {k}: {t} ({', '.join(fields)} changed)" for k, t, fields in c.changed[:show]]
        if len(c.changed_keys) > show:
            rows.append(f"  ... {len(c.changed_keys) - show:,} more changed")
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

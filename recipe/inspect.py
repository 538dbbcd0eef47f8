"""`recipe inspect PATH`: what a data file holds, before a recipe is written for it.

The file is read as a recipe's source is (the same detection, the same rows set aside), then
one streamed pass over the read's rows (the engine's `Table`, a block at a time) counts what a
curator decides on first: the columns, empty texts and lengths, turns, how many rows exact
dedupe would set aside (the same normalised-text key it uses), and the first words of the
instructions (the verb analysis of the Self-Instruct and Alpaca papers, in one line).
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .io.features import unified
from .ui import n_rows

TEXTS = ("instruction", "response")
OWN = ("_id", "_row", "messages", "instruction", "response")  # the read's own columns
# the names a raw record's prompt and answer go by, most telling first (`instruction` is kept
# as `instruction_in_input` beside the read's own, empty one)
ASKS = ("instruction", "instruction_in_input", "prompt", "question", "query", "input", "inputs", "source", "text")
ANSWERS = ("response", "response_in_input", "output", "answer", "completion", "target", "outputs", "targets",
           "label", "solution")
QUANTILES = (5, 50, 95)
BLOCK = 20_000
# a reason's own place ("file.jsonl:17: ", "file.json[3]: ") apart, so that reasons group
_WHERE = re.compile(r"^(?P<where>.+?(?::\d+|\[\d+\])): ")
# and what names one row's particulars (a column number, a message id): reasons that differ
# only there are one group, shown with them as "…" (an OASST message file's replies each named
# their conversation's root, and 365 of them were 365 groups of one)
_PARTICULAR = re.compile(r"[\w-]*\d[\w-]*|(?<=message )[\w-]+")


def read_options(data_format: str | None, id_column: str | None, columns: list[str] | None) -> str:
    """`read(...)`'s options after its path, as recipe text: `, format="...", id="...",
    columns=[...]` (those given; columns: a CSV/TSV file without a header row)."""
    from .ir import Lit
    from .syntax import to_text
    opts = "".join(f", {k}={to_text(Lit(v))}" for k, v in (("format", data_format), ("id", id_column)) if v)
    if columns:
        opts += ", columns=[" + ", ".join(to_text(Lit(c)) for c in columns) + "]"
    return opts


def inspect(path: str, data_format: str | None = None, id_column: str | None = None,
            cache_dir: str | None = None, head: int | None = None, columns: list[str] | None = None,
            near: float | None = None, languages: bool = False, pii: bool = False, repairs: bool = False) -> dict:
    """The facts `render` prints; `cache_dir` keeps the read for a later inspect or run
    (default: a temporary one, removed); `near`: also count the instructions MinHash dedupe
    would set aside at that Jaccard threshold (its defaults otherwise); `languages`, `pii`,
    `repairs`: what `language(model=builtin:lid176)`, `redact(kinds=every kind)` and
    `normalize()` would find in every turn."""
    from .api import load
    opts = read_options(data_format, id_column, columns)
    from .diagnostics import RecipeError, UserError
    r = load(f'recipe inspect\nsource data = read("data.jsonl"{opts})\n')
    # what `check` warns of in the file (a Hub folder of several splits, a CSV that may lack
    # its header row), the recipe's own "writes nothing" apart
    said = [d for d in r.diagnose(sources={"data": path}).diagnostics if not d.is_error and d.code != "W0602"]
    tmp = Path(tempfile.mkdtemp(prefix="recipe-inspect-"))
    try:
        try:
            res = r.run(sources={"data": path}, out=tmp / "out", cache_dir=cache_dir or tmp / "cache", keep=("data",),
                        head=head)
        except RecipeError as e:  # the read's own diagnostics point into a recipe the user never wrote
            errors = [d for d in e.diagnostics if d.is_error]
            raise UserError("\n".join(f"{d.message}" + "".join(f"\n  hint: {h}" for h in d.hints) for d in errors)
                            + "\n  (here read's format= is --data-format, id= is --id, columns=[...] is --columns a,b,...)") from None
        node = res.manifest["nodes"][0]
        from .engine.store import Store
        store = Store(res.cache_dir)
        try:
            fp = node["fingerprint"]
            table = store.table_of(fp)
            raw = str((node.get("stats") or {}).get("format") or "").startswith("raw")
            facts = _facts(table, store.aside_batches(fp), raw)
            if near is not None:
                facts["near_duplicates"] = _near(table, facts, near, raw)
            if (languages or pii or repairs) and "messages" in table.columns():
                facts |= _content(table, languages, pii, repairs)
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stats = node.get("stats") or {}
    warnings = [d.message + "".join(f" ({h})" for h in d.hints) for d in said]
    if stats.get("warning"):
        warnings.append(stats["warning"])
    return {"path": path, "format": stats.get("format"), "files": stats.get("files"), "rows": node["rows_out"],
            "other_branches": stats.get("other branches", 0),
            **facts, "warnings": warnings}


def _facts(table, aside, raw: bool = False) -> dict:
    """`raw`: the rows have no conversation yet (format raw), so the texts described are the
    record's own text columns, not the empty instruction and response."""
    from .algorithms.shingles import normalised_keys, units
    cols = table.columns()
    shown = [c for c in cols if c != "_row"]
    nulls = Counter()
    texts = TEXTS
    if raw:
        first = next(iter(table.batches(shown, 1)), None)
        texts = [f.name for f in (first.schema if first is not None else [])
                 if f.name not in OWN and _kind(f.type) == "text"]
    lengths = {c: [] for c in texts if c in cols}
    words = {c: [] for c in lengths}
    empty = Counter()
    keys = {c: [] for c in lengths}
    turns: Counter = Counter()
    starts: Counter = Counter()
    escaped: Counter = Counter()
    n = 0
    kinds: dict[str, str] = {}
    valued: dict[str, list] = {}  # JSON columns: the type of their values, batch by batch
    for b in table.batches(shown, BLOCK):
        n += b.num_rows
        kinds = kinds or {f.name: _kind(f.type) for f in b.schema}
        for f in b.schema:
            if isinstance(f.type, pa.BaseExtensionType):
                valued.setdefault(f.name, []).append(_json_values_type(b.column(f.name)))
        for c in shown:
            nulls[c] += b.column(c).null_count
        for c in lengths:
            col = pc.fill_null(b.column(c).combine_chunks().cast(pa.large_string()), "")
            lengths[c].append(pc.utf8_length(col).to_numpy(zero_copy_only=False))
            blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0)
            words[c].append(units(col, "word")[1])  # as `words()` counts them, by a compiled pass
            empty[c] += int(pc.sum(blank).as_py() or 0)
            keys[c].append(np.stack(normalised_keys(col), axis=1))
        if "messages" in cols:
            turns.update(pc.list_value_length(b.column("messages")).fill_null(0).to_pylist())
        for c in shown:  # "\n" as two characters and no line break: escaped, as TSV files keep them
            if c != "_id" and kinds.get(c) == "text":
                col = pc.fill_null(b.column(c).combine_chunks(), "")
                hit = pc.and_(pc.match_substring(col, "\\n"), pc.invert(pc.match_substring(col, "\n")))
                escaped[c] += int(pc.sum(hit).as_py() or 0)
        if "instruction" in cols:
            first = pc.extract_regex(pc.fill_null(b.column("instruction").combine_chunks(), ""),
                                     r"^[^\pL\pN]*(?P<w>[\pL\pN]+)")
            counts = pc.value_counts(pc.utf8_lower(first.field("w")))  # a word once per batch, not per row
            starts.update({w: n for w, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())
                           if w})
    for c, types in valued.items():  # one shape in every row: said, as a reader would type it
        t = unified(s and pa.schema([pa.field(c, s)]) for s in types)
        if t is not None and not pa.types.is_null(t.field(c).type):
            kinds[c] = _kind(t.field(c).type)
    out = {"columns": [{"name": c, "type": kinds.get(c, "?"), "non_null": n - nulls[c]} for c in shown],
           "texts": {}, "turns": dict(sorted(turns.items())),
           "first_words": [[w, k] for w, k in starts.most_common(10)],
           "escaped_line_breaks": {c: k for c, k in escaped.items() if k}}
    for c in lengths:
        ln = np.concatenate(lengths[c]) if lengths[c] else np.zeros(0, np.int64)
        wd = np.concatenate(words[c]) if words[c] else np.zeros(0, np.int64)
        out["texts"][c] = {"empty": empty[c], "chars": _spread(ln), "words_median": int(np.median(wd)) if len(wd) else 0,
                           "exact_duplicates": _repeats(keys[c])}
    if not raw and len(keys) == 2:
        both = [np.concatenate([a, b], axis=1) for a, b in zip(*keys.values())]
        out["exact_duplicates_of_both"] = _repeats(both)
    out["set_aside"] = _reasons(aside)
    return out


def _near(table, facts: dict, threshold: float, raw: bool) -> dict:
    """Rows MinHash dedupe (its defaults) would set aside at `threshold`: on the instruction
    (a raw row's prompt column), and on the whole conversation when some rows have several
    turns; and how many of the instruction's near-duplicates (exact copies apart) are answered
    otherwise than the row each resembles (questions on one long passage, or instances under one
    long task definition, look alike to MinHash)."""
    from .algorithms.shingles import normalised_keys
    ask, answer = conversation_columns(facts) if raw else ("instruction", "response")
    out: dict = {"threshold": threshold}
    if not ask or ask not in table.columns():
        return out
    ons = [ask] + (["conversation"] if not raw and any(int(k) > 2 for k in facts.get("turns") or {}) else [])

    def keys(col):  # exact dedupe's keys, a row each
        return np.concatenate([np.stack(normalised_keys(t), axis=1) for t in table.text_arrays(col, BLOCK)])
    for on in ons:
        labels, _ = table.minhash_labels(on, threshold, 5, "char", 256, 0)
        out[on] = int(len(labels) - len(np.unique(labels)))
        if on == "conversation":  # the exact step on it sets these aside first (`_facts` counts the instruction's)
            out["conversation_exact"] = _repeats([keys(on)])
        elif answer and out[on]:
            asked, answers = keys(ask), keys(answer)
            dup = np.flatnonzero(labels != np.arange(len(labels)))
            near_only = dup[(asked[dup] != asked[labels[dup]]).any(axis=1)]  # exact copies apart
            out["answered_otherwise"] = int((answers[near_only] != answers[labels[near_only]]).any(axis=1).sum())
    return out


def _content(table, languages: bool, pii: bool, repairs: bool) -> dict:
    """What the text-reading operators would find, counted as they count (tests compare)."""
    from collections import Counter
    from .ops._turns import rewrite
    out = {}
    if languages:
        from .ops.language import _texts
        from .runtime import ModelRuntime
        found = ModelRuntime().identify("builtin:lid176", _texts(table, "conversation"))
        langs = Counter(f[0] for f in found if f)
        out["languages"] = {"model": "builtin:lid176", "counts": dict(langs.most_common(10)), "other": sum(langs.values())
                            - sum(c for _, c in langs.most_common(10)), "none": sum(1 for f in found if not f),
                            "below_0.8": sum(1 for f in found if f and f[1] < 0.8)}
    if pii:
        from .algorithms.pii import KINDS, Redactor
        found = [f for _, part in rewrite(table, "conversation", Redactor(KINDS).redact) for f in part]
        out["personal_data"] = {"found": dict(sorted(Counter(k for f in found for k, _ in f).items())),
                                "rows": sum(1 for f in found if f)}
    if repairs:
        from .algorithms.text_clean import Cleaner
        done = [d for _, part in rewrite(table, "conversation", Cleaner().clean) for d in part]
        out["repairs"] = dict(sorted(Counter(k for d in done for k in set(d)).items()))
    return out


def conversation_columns(facts: dict) -> tuple[str | None, str | None]:
    """For raw rows: the text columns most likely to be the instruction and its answer (by
    name, else the first two of prose by position), for `derive(instruction = ..., response = ...)`."""
    names = [c for c in facts.get("texts") or {}  # those an expression can name
             if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c) and c not in ("and", "or", "not", "true", "false", "null")]
    low = {c.lower(): c for c in names}
    ask = next((low[n] for n in ASKS if n in low), None)
    answer = next((low[n] for n in ANSWERS if n in low and low[n] != ask), None)
    # by position: no ids, and a prompt of prose (ids, model names and labels are one word;
    # FastChat's answer files gave `derive(instruction=answer_id, response=model_id)`); an
    # answer may be one word (a label, a number)
    rest = [c for c in names if c not in (ask, answer) and not re.search(r"(^|_)(id|uuid)$", c, re.I)]
    ask = ask or next((c for c in rest if (facts["texts"][c].get("words_median") or 0) >= 2), None)
    if ask and not answer:  # an answer by position only beside a prompt
        answer = next((c for c in rest if c != ask), None)
    return ask, answer


def input_column(facts: dict, ask: str | None, answer: str | None) -> str | None:
    """For raw rows: an Alpaca `input` (or Dolly `context`) beside the instruction, which
    `derive(input = input)` joins to the user turn as the Alpaca reader does."""
    return next((c for c in ("input", "context") if c in (facts.get("texts") or {}) and ask and c not in (ask, answer)),
                None)


def _json_values_type(col) -> pa.DataType | None:
    """The type Arrow gives a JSON column's values (nested input values are stored as JSON
    text), None when they share none."""
    try:
        return pa.array([None if v is None else json.loads(v) for v in col.to_pylist()]).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None


def _kind(t: pa.DataType) -> str:
    """A column's type in the words the docs use."""
    if isinstance(t, pa.BaseExtensionType):
        return "mixed (JSON)"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        v = t.value_type
        if pa.types.is_struct(v) and {f.name for f in v} == {"role", "content"}:
            return "conversation"
        return f"list of {_kind(v)}"
    if pa.types.is_struct(t):
        return f"object ({', '.join(f.name for f in t)})" if t.num_fields else "object"
    return str(t)


def _spread(ln: np.ndarray) -> dict:
    if not len(ln):
        return {}
    return {**{f"p{q}": int(np.percentile(ln, q, method="lower")) for q in QUANTILES}, "max": int(ln.max())}


def _repeats(parts: list[np.ndarray]) -> int:
    """Rows whose key an earlier row has: what exact dedupe sets aside."""
    if not parts:
        return 0
    k = np.ascontiguousarray(np.concatenate(parts))
    return int(len(k) - len(np.unique(k.view(np.dtype((np.void, k.dtype.itemsize * k.shape[1]))))))


def _reasons(aside) -> list[dict]:
    """Set-aside rows grouped by reason (its place and particulars apart), most common first,
    each with its first place."""
    groups: dict[str, dict] = {}
    for b in aside:
        for why in b.column("reason").to_pylist():
            m = _WHERE.match(why or "")
            text = why[m.end():] if m else (why or "")
            g = groups.setdefault(_PARTICULAR.sub("…", text),
                                  {"reason": text, "rows": 0, "first": m.group("where") if m else None})
            if g["reason"] != text:  # the group's texts differ in their particulars
                g["reason"] = _PARTICULAR.sub("…", text)
            g["rows"] += 1
    return sorted(groups.values(), key=lambda g: -g["rows"])


def render(f: dict) -> str:
    """The facts as the terminal shows them."""
    aside = sum(g["rows"] for g in f["set_aside"])
    files = f" in {f['files']} files" if (f.get("files") or 1) > 1 else ""
    lines = [f"{f['path']}: {n_rows(f['rows'])} (format {f['format']}{files})"
             + (f", {aside:,} set aside:" if aside else ", none set aside")]
    for g in f["set_aside"][:8]:
        lines.append(f"  {g['rows']:>7,}  {g['reason']}" + (f"  (first: {g['first']})" if g["first"] else ""))
    if len(f["set_aside"]) > 8:
        lines.append(f"  ... {len(f['set_aside']) - 8} other reasons")
    lines += [f"warning: {w}" for w in f.get("warnings", [])]
    if not f["rows"]:
        return "\n".join(lines)
    cols = [c["name"] + f" ({c['type']}" + (f", {c['non_null']:,} not null" if c["non_null"] < f["rows"] else "") + ")"
            for c in f["columns"]]
    lines.append("columns: " + ", ".join(cols))
    if f["texts"]:
        w = max(12, *(len(c) for c in f["texts"]))
        lines.append(f"{'':<{w}} {'empty':>7} {'chars p5':>9} {'median':>7} {'p95':>7} {'max':>8} {'words median':>13}"
                     f" {'exact duplicates':>17}")
        for c, t in f["texts"].items():
            ch = t["chars"] or {"p5": 0, "p50": 0, "p95": 0, "max": 0}
            lines.append(f"{c:<{w}} {t['empty']:>7,} {ch['p5']:>9,} {ch['p50']:>7,} {ch['p95']:>7,} {ch['max']:>8,} "
                         f"{t['words_median']:>13,} {t['exact_duplicates']:>17,}")
        lines.append("  (exact duplicates: the rows `dedupe(method=\"exact\", on=...)` sets aside, case and spaces "
                     "normalised" + (f"; on both instruction and response: {f['exact_duplicates_of_both']:,})"
                                     if "exact_duplicates_of_both" in f else ")"))
    if str(f.get("format") or "").startswith("raw"):
        ask, answer = conversation_columns(f)
        if ask:
            joined = input_column(f, ask, answer)
            lines.append(f"no conversation yet (format raw): `derive(instruction = {ask}"
                         + (f", response = {answer}" if answer else "") + ")` makes one"
                         + (f", then `derive({joined} = {joined})` joins its {joined} to the user turn" if joined else "")
                         + ("" if answer else ", and `respond(model=...)` its answers"))
        else:
            lines.append("no conversation yet (format raw), and no column of prose reads as a prompt: "
                         "`derive(instruction = ..., response = ...)` or `derive(conversation = LIST)` makes one")
    if "near_duplicates" in f:
        nd = f["near_duplicates"]
        for on in [c for c in nd if c not in ("threshold", "answered_otherwise", "conversation_exact")]:
            other = nd.get("answered_otherwise") if on != "conversation" else None
            lines.append(f"near-duplicate {'conversations' if on == 'conversation' else 'instructions'}: {nd[on]:,} rows "
                         f"`dedupe(method=\"minhash\", on={on}, threshold={nd['threshold']})` sets aside (character "
                         f"5-grams, 256 permutations)" + (f"; {other:,} of them not exact copies and answered "
                                                          f"otherwise than the row each resembles" if other else ""))
    if "languages" in f:
        lg = f["languages"]
        total = sum(lg["counts"].values()) + lg["other"] + lg["none"]
        lines.append("languages (builtin:lid176, every turn's text): " + ", ".join(
            f"{k} {v:,} ({100 * v / total:.1f}%)" for k, v in lg["counts"].items())
            + (f", {lg['other']:,} in others" if lg["other"] else "") + (f", {lg['none']:,} without text" if lg["none"] else "")
            + f"; {lg['below_0.8']:,} identified below 0.8")
    if "personal_data" in f:
        pd = f["personal_data"]
        lines.append("personal data (`redact` with every kind): " + (", ".join(f"{k} {v:,}" for k, v in pd["found"].items())
                                                                 + f", in {n_rows(pd['rows'])}" if pd["found"] else "none"))
    if "repairs" in f:
        lines.append("repairs `normalize()` makes: " + (", ".join(f"{k} in {n_rows(v)}" for k, v in f["repairs"].items())
                                                       or "none"))
    if f.get("escaped_line_breaks"):
        lines.append("line breaks written as `\\n` (two characters, in texts with no line break): "
                     + ", ".join(f"{c} {n_rows(k)}" for c, k in f["escaped_line_breaks"].items()))
    if f.get("other_branches"):
        lines.append(f"OASST trees: each read as its top-ranked conversation; their other branches hold "
                     f"{f['other_branches']:,} more (`read(..., branches=\"all\")` reads every one)")
    if f["turns"]:
        lines.append("turns: " + ", ".join(f"{k} in {n_rows(v)}" for k, v in f["turns"].items()))
    if f["first_words"] and f["rows"]:
        lines.append("instructions start with: " + ", ".join(f"{w} {k:,} ({100 * k / f['rows']:.1f}%)"
                                                           for w, k in f["first_words"]))
    return "\n".join(lines)

"""`recipe new FILE --source DATA`: a starter recipe written from what `recipe inspect` finds in
the data, each step with a comment saying why it is there (what the data holds that the step
deals with), checked before it is written and in canonical form, for a person to edit.

What it chooses: the detected format, named; `normalize()` when texts need its repairs;
`redact()` when they hold e-mail addresses, public IPs or keys (phone and card numbers, often a
task's own data, only named); rows without an answer set aside
(or, when no row has one, a `respond` step that answers them, with the built-in model); exact
duplicates and near-duplicates of the instructions (of the whole conversation when rows have
several turns) set aside; every turn in one language when the data mixes languages; the result
written as JSON lines.
"""
from __future__ import annotations

import os
from pathlib import Path

from .diagnostics import UserError



def recipe_path(data: str, home: str) -> str:
    """The data's path as a recipe file in folder `home` should hold it (both absolute):
    relative, so a project moves whole, unless the two share nothing below the root
    (`../../work/data.jsonl` from /tmp/x reads worse than the path itself)."""
    shared = os.path.commonpath([data, home])
    return data if shared == os.path.dirname(shared) else os.path.relpath(data, home)

def starter_text(name: str, data: str, facts: dict, languages: dict | None = None, shown: str | None = None,
                 head: int | None = None, id_column: str | None = None, columns: list[str] | None = None) -> str:
    """The recipe's text for data described by `facts` (`inspect`), reading `data` (a path as the
    recipe file should hold it; `shown`: as the user gave it) with read's `id=` and `columns=` when given."""
    fmt = facts["format"].split(" (")[0]
    rows = facts["rows"]
    texts = facts.get("texts", {})
    # raw rows have no conversation yet: a `derive` makes one from the columns that look like it
    from .inspect import conversation_columns
    ask, answer = conversation_columns(facts) if fmt == "raw" else ("instruction", "response")
    resp = texts.get(answer, {}) if answer else {"empty": facts["rows"]}
    inst = texts.get(ask, {}) if ask else {}
    turns = {int(k): v for k, v in (facts.get("turns") or {}).items()}
    multi = sum(v for k, v in turns.items() if k > 2)
    on = "conversation" if multi else "instruction"
    from .ui import n_rows
    seen_rows = f"its first {rows:,} rows" if head and rows >= head else n_rows(rows)
    lines = [f"# A starter recipe for {shown or data}: {seen_rows} read by `recipe new` ({facts['format']}).",
             "# Each step says what it is for; remove what you do not need, then `recipe plan` it.",
             f"recipe {name}", ""]
    answered = rows - resp.get("empty", 0)
    # a language step when other languages are more than a trace (code and names fool lid.176 now
    # and then: Code Alpaca's snippets came out `es`, `de`, `yi`); the header names them otherwise
    others = sum(languages.values()) - max(languages.values()) if languages else 0
    lid = bool(languages and others >= max(1, 0.02 * rows))
    if languages and len(languages) > 1 and not lid:
        lines.insert(2, "# Languages in the rows read: " + _counts(languages) + " (too few others for a "
                        "`language` step; add one to keep a single language).")
    # raw rows with no column of prose: nothing to make a conversation of, so nothing to clean yet
    # (it deduplicated empty instructions and answered them with the model)
    shapeless = fmt == "raw" and not ask
    if not answered and not shapeless:
        lines.append('model lm = causal_lm("builtin:smollm2")  # answers the rows: give a stronger model here')
    if lid:
        lines.append('model lid = language_id("builtin:lid176")')
    if (not answered and not shapeless) or lid:
        lines.append("")
    from .inspect import read_options
    lines += [f"source raw = read({_quoted(data)}{read_options(fmt, id_column, columns)})", "", "clean = raw"]
    if facts.get("other_branches"):  # OASST: the best path of each tree, unless every one is wanted
        lines[-3] += (f'  # each tree\'s top-ranked conversation; `branches="all"` reads every one '
                      f'({facts["other_branches"]:,} more in the rows read)')
    if shapeless:
        own = [c["name"] for c in facts.get("columns", []) if not c["name"].startswith("_")
               and c["name"] not in ("messages", "instruction", "response")]
        lines[-1] += (f"  # format raw: no column reads as a prompt ({', '.join(own)}): "
                      f"`derive(instruction = ..., response = ...)` or `derive(conversation = LIST)` makes the "
                      f"conversation, then the steps that clean it")
        lines += ["", f'write clean to "{name}.jsonl"', ""]
        return "\n".join(lines)
    if fmt == "raw" and ask:
        from .inspect import input_column
        joined = input_column(facts, ask, answer)
        others = [c for c in texts if c not in (ask, answer, joined)]
        lines.append(f"  | derive(instruction = {ask}" + (f", response = {answer}" if answer else "")
                     + ")  # format raw: the conversation from its columns"
                     + (f" (its other text: {', '.join(others)})" if others else ""))
        if joined:
            lines.append(f"  | derive({joined} = {joined})  # joined to the user turn after the instruction, "
                         f"as Alpaca's reader joins it (an alpaca sink splits it back out)")
    escaped = {c: k for c, k in (facts.get("escaped_line_breaks") or {}).items() if k >= ESCAPED_SHARE * rows}
    # TSV files keep a line break as `\n`: the model would learn the two characters; before
    # normalize, which then tidies the lines
    if escaped and fmt != "raw":
        lines.append("  | derive(" + ", ".join(f'{c} = regexp_replace({c}, "\\\\\\\\n", "\\n")' for c in escaped)
                     + ")  # line breaks written as `\\n` (two characters): " + ", ".join(f"{c} {k:,}" for c, k in escaped.items())
                     + " of the rows read")
    fixes = facts.get("repairs") or {}
    if fixes:
        what = {"unicode": "broken Unicode (mojibake, HTML entities, control characters)",
                "whitespace": "untidy whitespace"}
        lines.append("  | normalize()  # rows read with " + ", ".join(
            f"{what.get(k, k)}: {v:,}" for k, v in sorted(fixes.items())))
    cot = reasoning_column(facts, resp) if fmt != "raw" else None
    if cot:  # FLAN's CoT sets, GSM8K with its solutions: the answer alone teaches no reasoning
        lines.append(f'  # | derive(response = concat({cot}, " So the answer is ", response, "."))  # the answers are '
                     f'short (half at most {resp["chars"]["p50"]:,} characters) and `{cot}` explains them: remove the '
                     f'first `#` to answer with the reasoning first, as FLAN\'s chain-of-thought templates do')
    found = (facts.get("personal_data") or {}).get("found") or {}
    usual = {k: v for k, v in found.items() if k in ("email", "ip", "key")}
    # phone and card numbers are often a task's own data ("validate this phone number"): named, not redacted
    rare = ", ".join(_many(v, k) for k, v in sorted(found.items()) if k not in usual)
    if usual:
        lines.append("  | redact()  # found in the rows read: " + ", ".join(_many(v, k) for k, v in sorted(usual.items()))
                     + (f"; and {rare} (kinds=[\"phone\", \"credit_card\"] would replace them too)" if rare else ""))
    elif rare:
        lines.insert(2, f"# Found in the rows read: {rare}; `redact(kinds=[\"phone\", \"credit_card\"])` would replace them.")
    if answered and resp.get("empty"):
        n = resp["empty"]
        lines.append(f"  | filter(length(response) > 0)  # {n:,} {'row has' if n == 1 else 'rows have'} no answer")
    if lid:
        top = max(languages, key=languages.get)
        lines.append(f'  | language(model=lid, keep=[{_quoted(top)}])  # languages found: {_counts(languages)}')
    dup = (inst.get("exact_duplicates") if on == "instruction"
           else (facts.get("near_duplicates") or {}).get("conversation_exact"))
    lines.append(f"  | dedupe(method=\"exact\", on={on})  # the same {_what(on)} twice"
                 + (f": {dup:,} in the rows read" if dup else ": none in the rows read" if dup is not None else ""))
    lines.append(_near_step(on, facts, ask, rows, dup or 0))
    if not answered:
        cols = {c["name"]: c["type"] for c in facts.get("columns", [])}
        if cols.get("turns") == "list of text":  # MT-Bench's layout: every user turn, answered in order
            lines.append("  | respond(model=lm, turns=turns, max_new_tokens=512)  # no row has an answer: the model "
                         "answers each of `turns`")
        else:
            lines.append("  | respond(model=lm, max_new_tokens=512)  # no row has an answer: the model writes them")
    lines += ["", f'write clean to "{name}.jsonl"', "",
              "# what the output must be, checked after each run (one not met: exit code 3, the outputs written):",
              f"# expect clean: rows() >= {max(1, rows // 2)} and share(length(response) > 0) == 1", ""]
    return "\n".join(lines)


# the share of rows whose line breaks are written as `\n` from which a starter unescapes them
# (Code Alpaca's inputs hold a few on purpose: file contents shown in a string, 38 of 4,535)
ESCAPED_SHARE = 0.2
# columns that hold the reasoning behind a short answer (FLAN's CoT files, math sets' solutions)
REASONING = ("rationale", "explanation", "reasoning", "solution", "chain_of_thought", "cot", "thought", "thoughts")


def reasoning_column(facts: dict, resp: dict) -> str | None:
    """A text column named for reasoning beside answers that are mostly a word or a number."""
    chars = resp.get("chars") or {}
    if not chars or chars.get("p50", 0) > 20:
        return None
    cols = {c["name"].lower(): c["name"] for c in facts.get("columns", []) if c["type"] == "text"}
    return next((cols[n] for n in REASONING if n in cols), None)


# a near-duplicate step that would set aside more than this share of the rows read is written
# commented out: in data that is mostly near-duplicates by design (UIT's 32 transfers of one task,
# 6,400 rows) the rows that look alike are often different questions on one long passage (the
# step kept 43 of them), and a starter should not lose most of the data unasked
NEAR_SHARE = 0.5
NEAR = 0.8


def _near_step(on: str, facts: dict, ask: str | None, rows: int, exact: int) -> str:
    """The MinHash dedupe line, with what it would set aside in the rows read after the exact
    step's `exact` (inspect's count: on the conversation, or on the instruction, a raw row's
    prompt column)."""
    step = f'dedupe(method="minhash", on={on}, threshold={NEAR})'
    what = "near-duplicates (Jaccard of 5-character shingles)"
    nd = facts.get("near_duplicates") or {}
    n = nd.get("conversation" if on == "conversation" else ask)
    if n is None:
        return f"  | {step}  # {what}"
    n, left = max(0, n - exact), rows - exact  # exact copies are near-duplicates too
    if n <= NEAR_SHARE * left:
        return f"  | {step}  # {what}: " + (f"{n:,} more in the rows read" if n else "none in the rows read")
    other = nd.get("answered_otherwise") if on != "conversation" else None
    return (f"  # | {step}  # left out: it would set aside {n:,} of the {left:,} rows left ({100 * n / left:.0f}%)"
            + (f", {other:,} of them answered otherwise than the row each resembles (rows that share a long "
               f"text, a passage or a task's definition, look alike)" if other else "")
            + "; remove the first `#` if they are copies")


_PII = {"email": "e-mail addresses", "ip": "public IP addresses", "key": "keys", "phone": "phone numbers",
        "credit_card": "card numbers"}


def _quoted(text: str) -> str:
    """A string literal of the language (a path with a quote or a backslash in it stays one)."""
    from .ir import Lit
    from .syntax import to_text
    return to_text(Lit(text))


def _many(n: int, kind: str) -> str:
    name = _PII[kind]
    return f"{n:,} {name if n != 1 else name[:-2] if name.endswith('sses') else name[:-1]}"


def _counts(languages: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(languages.items(), key=lambda kv: -kv[1])[:4])


def _what(on: str) -> str:
    return "conversation" if on == "conversation" else "instruction"


def write_starter(out: str, data: str, head: int | None = 2000, force: bool = False,
                  data_format: str | None = None, id_column: str | None = None,
                  columns: list[str] | None = None) -> str:
    """Write the starter recipe for `data` to `out` (refusing to replace a file unless `force`),
    after `check` passes it; returns the text written. `data_format`, `id_column` and `columns`
    are read's `format=`, `id=` and `columns=`, for data whose format cannot be detected."""
    from .api import load
    from .frontend import parse_any
    from .frontend.printer import to_text
    from .inspect import inspect
    target = Path(out)
    if target.suffix not in (".recipe",):
        raise UserError(f"{out}: a recipe file ends in .recipe")
    if target.exists() and not force:
        raise UserError(f"{out} exists: pick another name, or pass --force to replace it")
    facts = inspect(data, data_format, id_column, head=head, columns=columns, near=NEAR, languages=True, pii=True,
                    repairs=True)
    languages = (facts.get("languages") or {}).get("counts")
    rel = recipe_path(str(Path(data).resolve()), str(target.resolve().parent))
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in target.stem) or "starter"
    if name[0].isdigit():
        name = "r_" + name
    text = to_text(parse_any(starter_text(name, rel, facts, languages, data, head, id_column, columns), str(target)))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        errors = [d for d in load(str(tmp)).check().diagnostics if d.is_error]
    finally:
        tmp.unlink(missing_ok=True)
    if errors:  # a bug here, not the user's: say so rather than write a recipe that fails
        raise UserError(f"the starter recipe for {data} does not pass `check` ({errors[0].message}); "
                        f"please report it")
    target.write_text(text, encoding="utf-8")
    return text

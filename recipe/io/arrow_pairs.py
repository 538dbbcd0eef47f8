"""The Arrow fast path for the other one-turn formats: Dolly (`instruction`, `context` or
`input`, `response`), `prompt_completion` and `question_answer` (GSM8K), prompts without an
answer (`instruction_only`: eval sets, prompt lists for `respond`), and for `raw` records
(every field a column, no conversation yet). As `arrow_alpaca` does for Alpaca rows, Arrow's
parser and Arrow compute build the canonical columns a chunk at a time; a chunk with anything
the record reader treats its own way (a missing or blank prompt, a field that is not text, both
`context` and `input`, nested extra values) goes to the record reader, and differential tests
keep both in step.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_alpaca import MESSAGES, blank, ids, parse_lines, plain_extras, two_turns
from .formats import ANSWER_KEYS, PROMPT_KEYS

# format -> (prompt field, answer field), as formats.to_messages reads them
FIELDS = {"dolly": ("instruction", "response"), "prompt_completion": ("prompt", "completion"),
          "question_answer": ("question", "answer")}


def canon_for(fmt: str):
    """The `canon(lines, prefix, start)` of `arrow_alpaca.chunks` for a one-turn format."""
    return partial(_canonical, fmt)


def _canonical(fmt: str, lines, prefix: str, start: int) -> pa.Table | None:
    t = parse_lines(lines)
    if t is None:
        return None
    return (raw_table if fmt == "raw" else prompt_table if fmt == "instruction_only" else pair_table)(t, fmt, prefix, start)


def _texts(t: pa.Table, name: str, required: bool) -> pa.Array | None:
    """A field as text for every row ("" where null or absent and not `required`), or None
    when the record reader must judge a row (missing, null, not text)."""
    if name not in t.column_names:
        return None if required else pa.array([""] * t.num_rows, pa.string())
    col = t.column(name)
    if col.type not in (pa.string(), pa.null()) or (required and col.null_count):
        return None
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.fill_null(col.cast(pa.string()), "")


def raw_table(t: pa.Table, fmt: str, prefix: str, start: int) -> pa.Table | None:
    """The canonical table of `raw` records: an empty conversation, every field a column."""
    n = t.num_rows
    empty = pa.array([""] * n, pa.string())
    extras = plain_extras(t, set(), {"instruction": empty, "response": empty})
    if extras is None:
        return None
    messages = pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)),
                                        pa.array([], MESSAGES.value_type), type=MESSAGES)
    return pa.table(dict([("_id", ids(prefix, start, n)), ("messages", messages), ("instruction", empty),
                          ("response", empty)] + extras))


def pair_table(t: pa.Table, fmt: str, prefix: str, start: int) -> pa.Table | None:
    """The canonical table of `fmt` records `t` (rows `start`...), or None when some record
    needs the record reader's rules."""
    ask, answer_field = FIELDS[fmt]
    prompt, answer = _texts(t, ask, True), _texts(t, answer_field, True)
    if prompt is None or answer is None or pc.any(blank(prompt)).as_py():
        return None  # missing, null or blank: the record reader names the field
    consumed = {ask, answer_field}
    user = prompt
    if fmt == "dolly":
        if "context" in t.column_names and "input" in t.column_names:
            return None  # which one a row reads depends on the keys it has: null and absent look alike here
        ctx = _texts(t, "context" if "context" in t.column_names else "input", False)
        if ctx is None:
            return None
        has = pc.invert(blank(ctx))
        if pc.any(has).as_py():
            user = pc.if_else(has, pc.binary_join_element_wise(prompt, ctx, "\n\n"), prompt)
    extras = plain_extras(t, consumed, {"instruction": user, "response": answer})
    return two_turns(prefix, start, user, answer, extras) if extras is not None else None


def prompt_table(t: pa.Table, fmt: str, prefix: str, start: int) -> pa.Table | None:
    """The canonical table of prompts without an answer: one user turn each, from the first of
    `formats.PROMPT_KEYS` the chunk has (a row without it, or with its text null or blank,
    goes to the record reader, which picks a key per record); a chunk with a field that says
    its rows are answers (`formats.not_a_prompt`) or a `turns` list does too."""
    key = next((k for k in PROMPT_KEYS if k in t.column_names), None)
    if key in (None, "turns") or any(k in t.column_names for k in (*ANSWER_KEYS, "role")):
        return None
    prompt = _texts(t, key, True)
    if prompt is None or pc.any(blank(prompt)).as_py():
        return None
    n = t.num_rows
    empty = pa.array([""] * n, pa.string())
    extras = plain_extras(t, {key}, {"instruction": prompt, "response": empty})
    if extras is None:
        return None
    turns = pa.StructArray.from_arrays([pa.array(["user"] * n, pa.string()), prompt], ["role", "content"])
    messages = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), turns).cast(MESSAGES)
    return pa.table(dict([("_id", ids(prefix, start, n)), ("messages", messages), ("instruction", prompt),
                          ("response", empty)] + extras))

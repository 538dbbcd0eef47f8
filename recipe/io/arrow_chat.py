"""The Arrow fast path for conversations in JSON lines: ShareGPT (`conversations` of
`from`/`value` turns) and OpenAI (`messages` of `role`/`content` turns). Arrow's parser and
Arrow compute build the canonical columns 20,000 lines at a time (`arrow_alpaca.chunks`); a
chunk with anything the record reader treats its own way (a turn without text, an unknown or
non-ASCII role, no user turn or a blank first one, LIMA's plain-string turns, nested extra
values, a turn with a field of its own) goes to the record reader, and a differential test keeps both in step.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_alpaca import BLANK, MESSAGES, ids, parse_lines, plain_extras
from .formats import CHAT_KEYS, ROLE_MAP

KEYS = {"sharegpt": ("conversations", "from", "value"), "openai": ("messages", "role", "content")}
_ROLE_KEYS = pa.array(list(ROLE_MAP))
_ROLE_VALUES = pa.array(list(ROLE_MAP.values()))


def canon_for(fmt: str):
    """The `canon(lines, prefix, start)` of `arrow_alpaca.chunks` for a chat format."""
    return partial(_canonical, fmt)


def _canonical(fmt: str, lines, prefix: str, start: int) -> pa.Table | None:
    t = parse_lines(lines)
    return chat_table(t, fmt, prefix, start) if t is not None else None


def chat_table(t: pa.Table, fmt: str, prefix: str, start: int) -> pa.Table | None:
    """The canonical table of `fmt` records `t` (rows `start`...), or None when some record
    needs the record reader's rules."""
    key, rk, ck = KEYS[fmt]
    if key not in t.column_names:  # under another name (LMSYS-Chat's `conversation`): as `chat_field` finds it
        key = next((k for k in CHAT_KEYS if k in t.column_names and _turns_of(t.schema.field(k).type, rk, ck)), None)
        if key is None:
            return None
    turns = t.column(key).combine_chunks()
    typ = turns.type
    if not pa.types.is_list(typ) or not pa.types.is_struct(typ.value_type):
        return None  # LIMA's strings, or not a list: the record reader's rules
    fields = {typ.value_type.field(i).name: typ.value_type.field(i).type for i in range(typ.value_type.num_fields)}
    if fields.get(rk) != pa.string() or fields.get(ck) != pa.string() or turns.null_count:
        return None
    flat = turns.flatten()
    if flat.null_count:
        return None
    if any(pc.struct_field(flat, f).null_count < len(flat) for f in fields if f not in (rk, ck)):
        return None  # a turn's own field (`name`, `weight`): the record reader keeps the turns
    roles, contents = pc.struct_field(flat, rk), pc.struct_field(flat, ck)
    if roles.null_count or contents.null_count or not pc.all(pc.string_is_ascii(roles)).as_py():
        return None  # str.lower() and Arrow's lower agree on ASCII
    at = pc.index_in(pc.utf8_lower(roles), value_set=_ROLE_KEYS)
    if at.null_count:
        return None  # an unknown role: the record reader names it
    mapped = _ROLE_VALUES.take(at)
    n = t.num_rows
    parent = pc.list_parent_indices(turns).to_numpy()
    user = _first(parent, _is(mapped, "user"), n)
    if (user < 0).any():
        return None  # a conversation without a user turn is set aside by the record reader
    instruction = contents.take(pa.array(user))
    if pc.any(pc.match_substring_regex(instruction, BLANK)).as_py():
        return None
    # the first assistant turn after the row's first user turn (flat positions: a row's turns
    # are contiguous and in order)
    answer_at = _first(parent, _is(mapped, "assistant") & (np.arange(len(parent)) > user[parent]), n)
    response = pc.if_else(pa.array(answer_at >= 0), contents.take(pa.array(np.maximum(answer_at, 0))), "")
    extras = plain_extras(t, {key}, {"instruction": instruction, "response": response})  # as to_messages reads them
    if extras is None:
        return None
    offsets = pc.subtract(turns.offsets, turns.offsets[0])
    messages = pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays([mapped, contents], ["role", "content"]))
    cols = [("_id", ids(prefix, start, n)), ("messages", messages.cast(MESSAGES)), ("instruction", instruction),
            ("response", response)] + extras
    return pa.table(dict(cols))


def _turns_of(typ: pa.DataType, rk: str, ck: str) -> bool:
    """Whether a column of type `typ` holds lists of turns with fields `rk` and `ck`."""
    if not pa.types.is_list(typ) or not pa.types.is_struct(typ.value_type):
        return False
    names = {typ.value_type.field(i).name for i in range(typ.value_type.num_fields)}
    return {rk, ck} <= names


def _is(roles: pa.Array, role: str) -> np.ndarray:
    return pc.equal(roles, role).to_numpy(zero_copy_only=False)


def _first(parent: np.ndarray, hit: np.ndarray, n: int) -> np.ndarray:
    """For each of `n` rows, the position of its first turn where `hit`, or -1."""
    out = np.full(n, -1, dtype=np.int64)
    pos = np.flatnonzero(hit)
    rows, first = np.unique(parent[pos], return_index=True)
    out[rows] = pos[first]
    return out

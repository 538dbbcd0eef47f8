"""Row formats: detect them and convert a raw record to the canonical row and back.

Canonical row: `messages` (list of {role, content}), `instruction` (first user turn),
`response` (the first assistant turn after it, "" when the row has none yet), and every column the
format does not consume, kept as-is. A record that cannot be converted raises `BadRow`
with the reason that goes to `set_aside.jsonl`.
"""
from __future__ import annotations

import json

ROLE_MAP = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
            "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "model": "assistant",
            "system": "system"}
TOOL_ROLES = ("tool", "function", "ipython", "function_call", "observation")  # OpenAI, Llama 3, glaive/ToolBench ShareGPT


def text_parts(content, turn: int):
    """A message's content as text: a string as it is; OpenAI's list of content parts, all
    `{"type": "text", "text": ...}`, concatenated as the API and chat templates read them; a
    part of another kind (an image, audio, a file) is refused with its type; anything else
    is returned for the caller to refuse."""
    if not isinstance(content, list) or not content:
        return content
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(kind, str):
            raise BadRow(f"turn {turn} holds a `{kind}` part: only text is supported")
        else:
            return None
    return "".join(texts)


FORMATS = ("alpaca", "sharegpt", "openai", "dolly", "prompt_completion", "question_answer", "ni", "oasst",
           "self_instruct", "instruction_only", "raw")


class BadRow(Exception):
    """A record that cannot become a canonical row; the message is the reason."""


# names a whole conversation goes by in other datasets (LMSYS-Chat's `conversation`,
# UltraChat's `data` of alternating texts): read as ShareGPT's or OpenAI's turns by their shape
CHAT_KEYS = ("conversation", "data", "dialog", "dialogue", "chat")


def chat_field(rec: dict) -> tuple[str, str] | None:
    """(format, field) for a record whose conversation is under another name than its format's
    own: a list of `role`/`content` turns is OpenAI's, of `from`/`value` turns ShareGPT's, and
    a list of two or more texts LIMA's alternating turns (ShareGPT's reader takes them)."""
    for k in CHAT_KEYS:
        v = rec.get(k)
        if not isinstance(v, list) or not v:
            continue
        if all(isinstance(t, dict) and "role" in t and "content" in t for t in v):
            return "openai", k
        if all(isinstance(t, dict) and "from" in t and "value" in t for t in v):
            return "sharegpt", k
        if len(v) >= 2 and all(isinstance(t, str) for t in v) or _exchanges(v):
            return "sharegpt", k
    return None


def _exchanges(turns) -> bool:
    """Whether turns are Capybara's exchanges: `input` (the user's) and `output` (the answer)."""
    return (isinstance(turns, list) and bool(turns)
            and all(isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str)
                    and set(t) <= {"input", "output"} for t in turns))


def detect(rec: dict) -> tuple[str | None, str]:
    """(format, why) from one record's keys."""
    keys = set(rec)
    if "conversations" in keys:
        return "sharegpt", "key `conversations`"
    if "messages" in keys:
        return "openai", "key `messages`"
    if "Definition" in keys and "Instances" in keys:
        return "ni", "keys `Definition`, `Instances`"
    if "instruction" in keys and "output" in keys:
        return "alpaca", "keys `instruction`, `output`"
    if "instruction" in keys and "response" in keys:
        return "dolly", "keys `instruction`, `response`"
    if "prompt" in keys and "completion" in keys:
        return "prompt_completion", "keys `prompt`, `completion`"
    if "question" in keys and "answer" in keys:
        return "question_answer", "keys `question`, `answer`"
    if "message_tree_id" in keys and "prompt" in keys:
        return "oasst", "keys `message_tree_id`, `prompt` (an OASST message tree)"
    if "instruction" in keys and "instances" in keys:
        return "self_instruct", "keys `instruction`, `instances`"
    if is_oasst_message(rec):
        ids = oasst_keys(rec)
        return "oasst", f"keys `{ids[0]}`, `role`, `text` (OASST messages)"
    for k in ("instruction", "Instruction", "question", "prompt", "turns", "text"):
        if k in keys:
            answer = not_a_prompt(rec)
            if answer:  # a bare `text` beside these is an answer or a chat message, not a prompt
                return None, f"key `{k}` beside {answer}, which look like answers or messages, not prompts"
            return "instruction_only", f"key `{k}` and no response field"
    if found := chat_field(rec):  # after the keys that name a prompt outright
        fmt, k = found
        return fmt, f"key `{k}` holding " + ("`role`/`content` turns" if fmt == "openai" else
                                             "`input`/`output` exchanges" if _exchanges(rec[k]) else
                                             "`from`/`value` turns" if isinstance(rec[k][0], dict) else
                                             "alternating user and assistant texts")
    return None, "keys " + ", ".join(f"`{k}`" for k in sorted(keys)[:8])


ANSWER_KEYS = ("answer_id", "model_id", "choices", "completion_id")
# an instruction-only record's prompt: the first of these it has
PROMPT_KEYS = ("instruction", "Instruction", "question", "prompt", "turns", "text")


def not_a_prompt(rec: dict) -> str | None:
    """Why a record with no response field is not an instruction-only prompt (it is a model's
    answer, or one chat message by someone other than the user), or None."""
    found = [f"`{k}`" for k in ANSWER_KEYS if k in rec]
    role = rec.get("role")
    if isinstance(role, str) and ROLE_MAP.get(role.lower(), "user") != "user" and role.lower() != "prompter":
        found.append(f"`role` = {role!r}")
    return ", ".join(found) or None


def _text(rec: dict, key: str, required: bool = True, allow_empty: bool = True) -> str:
    if key not in rec or rec[key] is None:
        if required:
            # a file of several formats (datasets concatenated) is read in the one its first
            # rows have: a record of another is said to be one
            other, why = detect(rec) if key not in rec else (None, "")
            raise BadRow(f"missing field `{key}`" + (f" (the record looks like {other}: {why})" if other else ""))
        return ""
    v = rec[key]
    if not isinstance(v, str):
        raise BadRow(f"field `{key}` is {type(v).__name__}, expected text")
    if not allow_empty and not v.strip():
        raise BadRow(f"empty `{key}`")
    return v


def _join(a: str, b: str) -> str:
    return f"{a}\n\n{b}" if b and b.strip() else a


def to_messages(fmt: str, rec: dict) -> tuple[list[dict], set[str]]:
    """Raw record -> (messages, keys consumed)."""
    if fmt == "alpaca":
        inst = _text(rec, "instruction", allow_empty=False)
        inp = _text(rec, "input", required=False)
        out = _text(rec, "output")
        msgs = []
        sys = rec.get("system")
        if isinstance(sys, str) and sys.strip():
            msgs.append({"role": "system", "content": sys})
        hist = rec.get("history") or []
        if not isinstance(hist, list):
            raise BadRow("field `history` is not a list of [instruction, response] pairs")
        for pair in hist:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise BadRow("field `history` is not a list of [instruction, response] pairs")
            msgs += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
        msgs += [{"role": "user", "content": _join(inst, inp)}, {"role": "assistant", "content": out}]
        # `input` stays as a column so the alpaca writer can split the turn back losslessly
        return msgs, {"instruction", "output", "history", "system"}
    if fmt == "dolly":
        inst = _text(rec, "instruction", allow_empty=False)
        # Dolly names the input `context`; instruction/input/response rows (self-instruct's
        # model predictions, Alpaca variants) name it `input`: without it the turn lacks its input
        ctx = _text(rec, "context" if "context" in rec else "input", required=False)
        return ([{"role": "user", "content": _join(inst, ctx)},
                 {"role": "assistant", "content": _text(rec, "response")}], {"instruction", "response"})
    if fmt == "prompt_completion":
        return ([{"role": "user", "content": _text(rec, "prompt", allow_empty=False)},
                 {"role": "assistant", "content": _text(rec, "completion")}], {"prompt", "completion"})
    if fmt == "question_answer":  # GSM8K and most QA sets
        return ([{"role": "user", "content": _text(rec, "question", allow_empty=False)},
                 {"role": "assistant", "content": _text(rec, "answer")}], {"question", "answer"})
    if fmt == "oasst":
        if "prompt" in rec:  # the tree export: {message_tree_id, tree_state, prompt: root message}
            return _oasst_path(rec.get("prompt")), {"prompt"}  # the tree id and state stay columns
        ids = oasst_keys(rec) or ("message_id", "parent_id")
        if rec.get(ids[1]) is not None:  # readers fold replies of a message export into their roots
            raise BadRow("an OASST reply whose conversation start is not in this file")
        return _oasst_path(rec), OASST_MESSAGE_KEYS | {ids[1]}  # a root message with its replies nested
    if fmt == "self_instruct":
        inst = _text(rec, "instruction", allow_empty=False)
        insts = rec.get("instances")
        if not isinstance(insts, list) or not insts or not isinstance(insts[0], dict):
            raise BadRow("field `instances` is not a list of {input, output}")
        first = insts[0]
        inp = _text(first, "input", required=False)
        # the input stays a column, as Alpaca's does: writers split it back out of the user turn,
        # and `self_instruct` prompts with the instruction alone, as the paper did
        rec.setdefault("input", inp)
        # the row is the first instance; a task with more keeps `instances` as a column, so the
        # others reach the sinks instead of vanishing (the 175 published seeds have one each)
        used = {"instruction", "instances"} if len(insts) == 1 else {"instruction"}
        return ([{"role": "user", "content": _join(inst, inp)},
                 {"role": "assistant", "content": _text(first, "output")}], used)
    if fmt == "instruction_only":  # eval sets and prompt lists: no answer yet
        key = next((k for k in PROMPT_KEYS if k in rec), None)
        if key == "turns":
            turns = rec["turns"]
            if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
                raise BadRow("field `turns` is not a list of text")
            return [{"role": "user", "content": turns[0]}], set()  # later turns stay in `turns`
        answer = not_a_prompt(rec)
        if answer:
            raise BadRow(f"not a prompt: {answer}")
        return [{"role": "user", "content": _text(rec, key or "instruction", allow_empty=False)}], {key}
    if fmt in ("sharegpt", "openai"):
        key, rk, ck = ("conversations", "from", "value") if fmt == "sharegpt" else ("messages", "role", "content")
        if key not in rec and (found := chat_field(rec)) and found[0] == fmt:
            key = found[1]
        turns = rec.get(key)
        if fmt == "sharegpt" and (isinstance(turns, str) or (
                isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns))):
            # LIMA's form: plain strings, user and assistant turns alternating (one string: a prompt)
            turns = [turns] if isinstance(turns, str) else turns
            return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)], {key}
        if fmt == "sharegpt" and _exchanges(turns):  # Capybara's: each exchange a user turn and its answer
            pairs = (("user", "input"), ("assistant", "output"))
            return [{"role": r, "content": t[f]} for t in turns for r, f in pairs], {key}
        if not isinstance(turns, list):
            raise BadRow(f"field `{key}` is missing or not a list")
        msgs = []
        for i, t in enumerate(turns):
            if isinstance(t, dict) and isinstance(t.get(rk), str) and (t.get("tool_calls") or t.get("function_call")
                                                                        or t[rk].lower() in TOOL_ROLES):
                raise BadRow(f"turn {i} of `{key}` is a tool call or a tool's result: conversations with tool use "
                             "are not supported yet")
            content = text_parts(t.get(ck), i) if isinstance(t, dict) else None
            if not isinstance(t, dict) or not isinstance(t.get(rk), str) or not isinstance(content, str):
                raise BadRow(f"turn {i} of `{key}` lacks text `{rk}`/`{ck}`")
            role = ROLE_MAP.get(t[rk].lower())
            if role is None:
                raise BadRow(f"turn {i} has unknown role `{t[rk]}`")
            msgs.append({"role": role, "content": content})
        # a turn's other fields (OpenAI's `name`, a ShareGPT `weight` that masks the loss) have no
        # place in the canonical messages: the turns as they came stay a column (`messages_in_input`,
        # `conversations`) and the chat writers put those fields back (`turn_fields`)
        kept = any(isinstance(t, dict) and any(k not in (rk, ck) and v is not None for k, v in t.items())
                   for t in turns)
        return msgs, (set() if kept else {key})
    raise BadRow(f"unknown format `{fmt}`")


# what a message's conversation is built from; its other fields (lang, message_id, ...) stay columns
OASST_MESSAGE_KEYS = {"text", "role", "replies", "parent_id"}


# (message id, parent id) keys: OASST's message export; the backend's seed conversations
OASST_ID_KEYS = (("message_id", "parent_id"), ("user_message_id", "parent_message_id"))


def oasst_keys(rec) -> tuple[str, str] | None:
    """The (message id, parent id) keys of one OASST message, or None if it is not one."""
    if not isinstance(rec, dict) or "prompt" in rec or not {"role", "text"} <= set(rec):
        return None
    return next((k for k in OASST_ID_KEYS if k[0] in rec and k[1] in rec)
                or (k for k in OASST_ID_KEYS if k[0] in rec), None)


def is_oasst_message(rec) -> bool:
    """One message of OASST's message export (not the tree export, which wraps it in `prompt`)."""
    return oasst_keys(rec) is not None


def oasst_trees(messages: list[dict]) -> tuple[dict[int, dict], dict[int, str]]:
    """Flat OASST messages (one per line or array item, linked by `parent_id` or the backend's
    `parent_message_id`) -> (for each root's position in `messages`, the root with its replies
    nested as the tree export has them; for each reply's position, the id of its root).
    Replies already nested stay as they are."""
    mid, pid = (oasst_keys(messages[0]) if messages else None) or OASST_ID_KEYS[0]
    by_id = {m.get(mid): m for m in messages}
    children: dict = {}
    for m in messages:
        if m.get(pid) is not None:
            children.setdefault(m[pid], []).append(m)

    def nest(m, depth=0):
        kids = [nest(c, depth + 1) for c in children.get(m.get(mid), [])] if depth < 200 else []
        return {**m, "replies": (m.get("replies") or []) + kids} if kids else m

    def root_of(m):
        seen = 0
        while m.get(pid) is not None and m[pid] in by_id and seen < 200:
            m, seen = by_id[m[pid]], seen + 1
        return m if m.get(pid) is None else None

    roots, owner = {}, {}
    for i, m in enumerate(messages):
        if m.get(pid) is None:
            roots[i] = nest(m)
        elif (r := root_of(m)) is not None:
            owner[i] = str(r.get(mid))
    return roots, owner


def _oasst_path(msg) -> list[dict]:
    """The best path through an OASST message tree: at each step the reply ranked first
    (rank 0, else the first not deleted), ending at the last answer: a prompt nobody answered
    after it is no part of an example (until session 40 39 of the 100 English trees here
    ended with one)."""
    msgs = []
    depth = 0
    while isinstance(msg, dict) and depth < 200:
        text, role = msg.get("text"), msg.get("role")
        if not isinstance(text, str) or role not in ("prompter", "assistant"):
            raise BadRow("an OASST message lacks `text` or `role`")
        msgs.append({"role": "user" if role == "prompter" else "assistant", "content": text})
        replies = [r for r in (msg.get("replies") or []) if isinstance(r, dict) and not r.get("deleted")]
        ranked = sorted(replies, key=lambda r: (r.get("rank") is None, r.get("rank") or 0))
        msg = ranked[0] if ranked else None
        depth += 1
    if not msgs:
        raise BadRow("an OASST tree without a prompt")
    return msgs[:-1] if len(msgs) > 1 and msgs[-1]["role"] == "user" else msgs


def oasst_branches(rec: dict) -> list[dict]:
    """An OASST record (the tree export, or a root message with its replies nested) once for
    each path from its prompt to a last reply, as the record with only that path's replies, in
    rank order (the first is the best path `_oasst_path` takes): every conversation of the
    tree, as OpenAssistant's own SFT data used them. A path that ends with a prompt nobody
    answered ends at the answer before it (and is not repeated when several such prompts
    follow one answer). A record of another shape comes back as it is, for `canonical` to say
    what is wrong with it."""
    tree = "prompt" in rec
    root = rec.get("prompt") if tree else rec
    if not isinstance(root, dict):
        return [rec]
    paths, seen = [], set()
    for path in _paths(root):
        if len(path) > 1 and path[-1].get("role") == "prompter":
            path = path[:-1]
        key = tuple(id(m) for m in path)
        if key not in seen:
            seen.add(key)
            node = {**path[-1], "replies": []}
            for m in reversed(path[:-1]):
                node = {**m, "replies": [node]}
            paths.append({**rec, "prompt": node} if tree else node)
    return paths


def _paths(msg: dict, depth: int = 0) -> list[list[dict]]:
    replies = [r for r in (msg.get("replies") or []) if isinstance(r, dict) and not r.get("deleted")]
    if not replies or depth >= 200:
        return [[msg]]
    ranked = sorted(replies, key=lambda r: (r.get("rank") is None, r.get("rank") or 0))
    return [[msg, *p] for r in ranked for p in _paths(r, depth + 1)]


# names recipe gives columns of its own: an input field so named that the format does not read
# into the conversation is kept as `<name>_in_input` (it was dropped without a word)
OWN_NAMES = frozenset({"_id", "_row", "messages", "instruction", "response"})


def column_name(field: str) -> str:
    """The column an input field becomes when the format does not read it: its own name, or
    `<name without leading underscores>_in_input` for a name recipe uses itself (`OWN_NAMES`
    in any case: column names are case-insensitive in SQL, so WizardLM's `Instruction` was
    DuckDB's `Instruction_1` in the output and `instruction` in expressions; and `__...`, the
    engine's working names)."""
    if field.lower() in OWN_NAMES or field.startswith("__"):
        return field.lstrip("_") + "_in_input"
    return field


def canonical(fmt: str, rec: dict) -> dict:
    """Raw record -> canonical row (without `_id`)."""
    if not isinstance(rec, dict):
        raise BadRow(f"not a JSON object ({type(rec).__name__})")
    if fmt == "raw":  # task data for templates: every field a column, no conversation yet
        return _with_fields({"messages": [], "instruction": "", "response": ""}, rec, set())
    msgs, used = to_messages(fmt, rec)
    first = next((i for i, m in enumerate(msgs) if m["role"] == "user"), None)
    if first is None or not msgs[first]["content"].strip():
        raise BadRow("empty instruction")
    # the answer to the instruction: an assistant turn before it (a greeting, a chat log that
    # starts mid-way) answers something else
    answer = next((m["content"] for m in msgs[first + 1:] if m["role"] == "assistant"), "")
    return _with_fields({"messages": msgs, "instruction": msgs[first]["content"], "response": answer}, rec, used)


def _with_fields(row: dict, rec: dict, used: set) -> dict:
    """`row` with the record's fields that the format did not read, each as a column
    (`column_name`, or `column_<position>` for a field named ""; where the record already has
    a field of that name, in any case, the first
    free `<name>_2`, `_3`, ...: a file recipe wrote from one that had `_id` has both, and
    `Text` beside `text` is one SQL name). A field that holds what the row's own column of that
    name holds (`instruction` beside the `messages` it came from, as recipe writes canonical
    rows) is that column, not kept twice."""
    plain = {k.lower() for k in rec if k and column_name(k) == k}
    taken = {k.lower() for k in row}
    for pos, (k, v) in enumerate(rec.items(), 1):
        if k in used or (k in row and (row[k] == v or v is None)):
            continue  # a null holds nothing else (Arrow's reader cannot tell it from a missing field)
        # a field named "" is named by its place, as a CSV header's unnamed column (DuckDB named it `v4`)
        base = name = column_name(k) if k else f"column_{pos}"
        n = 1
        while name.lower() in taken or (name != k and name.lower() in plain):
            n += 1
            name = f"{base}_{n}"
        row[name] = v
        taken.add(name.lower())
    return row


def same_name(rows: list, schema=None, spelled: dict | None = None) -> None:
    """Rename, in place, each (id, row) field whose name is a column's (or an earlier row's
    field's) in another case to that first spelling: SQL names ignore case, so `Label` in one
    file and `label` in another are one column (DuckDB stopped the read: "Column with name label
    already exists"). `spelled` (lower-cased name -> spelling) carries the names across calls."""
    spell = spelled if spelled is not None else {}  # `schema`: an Arrow schema whose names come first
    for n in (schema.names if schema is not None else ()):
        spell.setdefault(n.lower(), n)
    for _, row in rows:
        odd = [k for k in row if spell.setdefault(k.lower(), k) != k]
        for k in odd:  # a row's own fields never share a name in any case (`formats._with_fields`)
            row[spell[k.lower()]] = row.pop(k)


# ---- canonical -> format (writers) -----------------------------------------------------

# where the reader keeps a chat's turns that carried fields of their own (`to_messages`)
KEPT_TURNS = (("messages_in_input", "role", "content"), ("conversations", "from", "value"))


def map_kept(value, fn, bad=None):
    """Kept turns (a list of turn objects, or its JSON text) through `fn(turns)`, given back as
    they came: JSON text where they were text, the very same value where `fn` returns its input
    unchanged, None where `fn` returns None; `bad(value)` where they are no list."""
    text = isinstance(value, str)
    try:
        turns = json.loads(value) if text else value
    except ValueError:
        turns = None
    if not isinstance(turns, list):
        return bad(value) if bad else None
    out = fn(turns)
    if out is None or out is turns:
        return value if out is turns else None
    return json.dumps(out, ensure_ascii=False) if text else out


def refreshed_turns(value, rk: str, ck: str, msgs: list[dict]):
    """A kept-turns value with each turn's text that of its message now, for the canonical
    sinks, which write the column as it is: after an edit (`derive(response=...)`) it held the
    old text beside the new `messages`. Unchanged (the same object) when every text already
    agrees; None when the turns no longer match the messages (fused or dropped since), since no
    turn's old text may be written as if current."""
    def fresh(turns):
        if len(turns) != len(msgs) or not all(
                isinstance(t, dict) and isinstance(t.get(rk), str) and ROLE_MAP.get(t[rk].lower()) == m["role"]
                for t, m in zip(turns, msgs)):
            return None
        if all(t.get(ck) == m["content"] for t, m in zip(turns, msgs)):
            return turns
        return [{**t, ck: m["content"]} for t, m in zip(turns, msgs)]
    return None if value is None else map_kept(value, fresh, bad=lambda v: v if isinstance(v, str) else None)


def turn_fields(row: dict, msgs: list[dict]) -> list[dict]:
    """Each message's own fields besides role and text (OpenAI's `name`, ShareGPT's `weight`)
    from the turns the reader kept, when those turns are still these messages' turns (as many,
    the same roles: a rewritten text is still its speaker's, and its weight still masks it);
    else none (turns fused or dropped: which field belongs where is unknown)."""
    for col, rk, ck in KEPT_TURNS:
        turns = row.get(col)
        if isinstance(turns, str):  # a JSON column as its text (the Parquet writer reads them so)
            try:
                turns = json.loads(turns)
            except ValueError:
                continue
        if not isinstance(turns, list) or len(turns) != len(msgs):
            continue
        if all(isinstance(t, dict) and isinstance(t.get(rk), str) and ROLE_MAP.get(t[rk].lower()) == m["role"]
               for t, m in zip(turns, msgs)):
            return [{k: v for k, v in t.items() if k not in (rk, ck, "role", "content", "from", "value")
                     and v is not None} for t in turns]
    return [{} for _ in msgs]


def _split_input(row: dict, text: str) -> tuple[str, str]:
    """(instruction, input) of a user turn the reader joined (`_join`) from the row's
    `input` or `context` column; (text, "") when it was not joined from them."""
    for key in ("input", "context"):
        inp = row.get(key)
        if isinstance(inp, str) and inp.strip() and text.endswith("\n\n" + inp):
            return text[: -len(inp) - 2], inp
    return text, ""


# columns whose content a format sink writes in its own shape: the conversation and what the
# reader joined into it (Alpaca's input, Dolly's context, a system prompt, history, kept turns)
IN_THE_TURNS = ("messages", "instruction", "response", "input", "context", "system", "history",
                *(c for c, _, _ in KEPT_TURNS))


def left_out(fmt: str, columns: list[str], keep) -> list[str]:
    """The columns a sink of format `fmt` does not write (only those `keep`, its `columns=`,
    names are carried): none for canonical rows; the engine's own (`_id`, `_row`, `__...`) apart
    (an input's `_source` or `_meta` is the data's, and named)."""
    if fmt in (None, "jsonl", "tag_counts") or keep:
        return []
    return [c for c in columns if c not in ("_id", "_row") and not c.startswith("__") and c not in IN_THE_TURNS]


def from_row(fmt: str, row: dict, keep: list[str] = (), dropped=None) -> dict:
    """Canonical row -> a record of `fmt`; raises BadRow where the format cannot hold it.
    `dropped` (a Counter), when given, counts the turns' own fields (OpenAI's `name`,
    ShareGPT's `weight`) that alpaca, Dolly and prompt/completion have no place for."""
    msgs = [m for m in row.get("messages") or []]
    system = [m["content"] for m in msgs if m["role"] == "system"]
    turns = [m for m in msgs if m["role"] != "system"]
    extra = {k: row[k] for k in keep if k in row}
    if fmt in ("openai", "jsonl"):
        return {"messages": [{**m, **f} for m, f in zip(msgs, turn_fields(row, msgs))], **extra}
    if fmt == "sharegpt":
        back = {"user": "human", "assistant": "gpt", "system": "system"}
        return {"conversations": [{"from": back[m["role"]], "value": m["content"], **f}
                                  for m, f in zip(msgs, turn_fields(row, msgs))], **extra}
    if dropped is not None:
        dropped.update(sorted({k for f in turn_fields(row, msgs) for k in f}))
    pairs, i = [], 0
    while i < len(turns):
        if turns[i]["role"] != "user":
            raise BadRow(f"turn {i} is not a user turn; {fmt} needs user/assistant pairs")
        ans = turns[i + 1]["content"] if i + 1 < len(turns) and turns[i + 1]["role"] == "assistant" else ""
        pairs.append((turns[i]["content"], ans))
        i += 2
    if not pairs:
        raise BadRow(f"no user turn to write as {fmt}")
    last_q, last_a = pairs[-1]
    if len(system) > 1 or (system and msgs[0]["role"] != "system"):
        where = f"{len(system)} system messages" if len(system) > 1 else "a system message after the first turn"
        raise BadRow(f"{where}; {fmt} holds one, first: write sharegpt or openai to keep them")
    # the input the reader joined to the instruction (`input`, Dolly's `context`) is split off
    # again, so a file written in its own format keeps its shape
    inst, inp = _split_input(row, last_q)
    if fmt == "alpaca":
        rec = {"instruction": inst, "input": inp, "output": last_a}
        if system:  # LLaMA-Factory's order: instruction, input, output, system, history
            rec["system"] = system[0]
        if len(pairs) > 1:
            rec["history"] = [list(p) for p in pairs[:-1]]
        return {**rec, **extra}
    if len(pairs) > 1:
        raise BadRow(f"{len(pairs)} turns cannot be written as single-turn {fmt}")
    if system:  # nowhere to put it: said, not dropped (alpaca, sharegpt and openai hold it)
        shown = system[0] if len(system[0]) <= 60 else system[0][:57] + "..."
        raise BadRow(f"{fmt} has no place for the system message ({shown!r}): write alpaca, sharegpt or openai "
                     f"to keep it")
    if fmt == "dolly":
        return {"instruction": inst, "context": inp, "response": last_a, **extra}
    if fmt == "prompt_completion":
        return {"prompt": last_q, "completion": last_a, **extra}
    raise BadRow(f"cannot write format `{fmt}`")

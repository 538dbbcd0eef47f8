"""Row expressions translated to DuckDB SQL, by construction; and the engine's other SQL
fragments (a conversation's text, the exact-dedupe key, `messages` kept in step).

The translator emits only fixed keywords, whitelisted function names, quoted identifiers
of checked columns, and `?` placeholders; every literal and param value travels as a bound
parameter, so no user text is ever pasted into SQL.
"""
from __future__ import annotations

from ..ir import Binary, Call, Column, Lit, ParamRef, Unary
from ..syntax import FUNCTIONS, WS_RE2, expr_columns, field_path
from ..types import BOOL, FLOAT, INT, SIGNATURES, STR, expr_type, numeric, of_value

_ARITH = ("+", "-", "*", "/", "%")

# whitespace as Python's `\s` (what `str.split` and text normalisation mean by it; RE2's own
# `\s` is ASCII and lacks \v) and its complement, for words() and trim()
WS = WS_RE2 + "+"
NOT_WS = "[^" + WS_RE2[1:] + "+"
# the fixed SQL string literals the translation emits (no user text is among them)
FIXED_LITERALS = ("'0x'", f"'{NOT_WS}'", f"'^{WS}|{WS}$'", "''", "'g'", "'\\PL+'", "'\\P{Nd}+'", "'\\'", "'\\\\'")

_NULL_SQL = {"str": "VARCHAR", "int": "BIGINT", "num": "DOUBLE", "float": "DOUBLE", "bool": "BOOLEAN", "list": "VARCHAR[]"}

_BINARY_SQL = {"+": "+", "-": "-", "*": "*", "/": "/", "%": "%", "==": "=", "!=": "<>",
               "<": "<", "<=": "<=", ">": ">", ">=": ">=", "and": "AND", "or": "OR"}

class ExprError(Exception):
    """An expression that passed the checks but cannot be translated (a bug if ever raised)."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def to_sql(e, params: dict, column_types: dict[str, str] | None = None, as_list: bool = False) -> tuple[str, list]:
    """Translate an expression to (SQL text with `?` placeholders, bound values); `as_list`:
    as a list of text, read as a function's list argument is (`derive(conversation = ...)`).
    `column_types`: the language types of the table's columns as the run found them. A
    column that `check` saw as numbers in a source's first rows holds text when a later row
    held text (the read widens it): where a number is needed it is read as its numbers,
    null where a value is not one, so such a row is set aside rather than the run stopped."""
    # `conversation` where no column has that name: every turn as `role: content` lines
    talk = "conversation" not in (column_types or {})
    prompt = "system" not in (column_types or {})  # `system`: the system prompt, where no column has the name
    if (isinstance(e, Column) and field_path(e.name, column_types or {}) is None and not (talk and e.name == "conversation")
            and not (prompt and e.name == "system") and not as_list):
        return quote_ident(e.name), []  # a column as it is (a JSON column copied stays JSON)
    binds: list = []
    # a JSON column (engine/duck.table_types: `json`) is read as text, a text value as itself and
    # any other as its JSON (`go`): DuckDB compared it with a text by parsing the text as JSON
    # (`meta == "x"` stopped the run)
    json_cols = {n for n, t in (column_types or {}).items() if t == "json"}
    types = {n: STR if t == "json" else t for n, t in (column_types or {}).items()}
    # `meta.lang`: a field of a nested value, read as a JSON column's value is (text as itself,
    # anything else as its JSON; null where the row has no such field)
    fields = {c.name: got for c in expr_columns(e) if (got := field_path(c.name, column_types or {}))}
    types.update(dict.fromkeys(fields, STR))
    if talk:
        types["conversation"] = STR
    if prompt:
        types["system"] = STR
    text_cols = {n for n, t in types.items() if t == STR}
    param_types = {k: of_value(v) for k, v in params.items()}

    def num(x) -> str:
        sql = go(x)
        return f"TRY_CAST({sql} AS DOUBLE)" if isinstance(x, Column) and x.name in text_cols else sql

    def logical(x) -> str:
        """An operand of not/and/or not known to be a boolean (a text or JSON column, an open
        one, `coalesce` of one) is read as one, null where a value is not (its cast stopped the run)."""
        sql = go(x)
        return sql if expr_type(x, types, param_types)[0] == BOOL else f"TRY_CAST({sql} AS BOOLEAN)"

    def compared(x, other) -> str:
        """A comparison's side: a text column compared with a number is read as numbers."""
        if isinstance(x, Column) and x.name in text_cols and numeric(expr_type(other, types, param_types)[0]):
            return num(x)
        return go(x)

    def bind(v) -> str:
        binds.append(v)
        # DuckDB binds a Python int as INTEGER, which overflows at 2^31 in arithmetic
        if isinstance(v, int) and not isinstance(v, bool):
            return "CAST(? AS BIGINT)"
        if isinstance(v, float):
            return "CAST(? AS DOUBLE)"
        return "?"

    def twice(x, translate) -> str:
        """`x` translated for use twice in the SQL (its bound values repeat in order)."""
        start = len(binds)
        sql = translate(x)
        binds.extend(binds[start:])
        return sql

    def field_doc(name: str) -> str:
        """`doc, path` of a dotted name's field; a number in it is a list's item, 1 the first."""
        base, keys = fields[name]
        doc = quote_ident(base) if base in json_cols else f"to_json({quote_ident(base)})"
        # `.0` is no item (`check` says so): the key "0", not JSON's `[-1]`, the last item
        path = "$" + "".join(f"[{int(k) - 1}]" if k.isdigit() and int(k) else "." + quote_ident(k) for k in keys)
        return f"{doc}, {bind(path)}"

    def listed(x) -> str:
        """A list argument: a dotted name's field read as JSON (its list), else `_listed`."""
        if isinstance(x, Column) and x.name in fields:
            return f"TRY_CAST(json_extract({field_doc(x.name)}) AS VARCHAR[])"
        return _listed(x, go(x), json_cols, types)

    def go(x) -> str:
        if isinstance(x, Lit):
            if x.value is None:
                return "NULL"
            return bind(x.value)
        if isinstance(x, ParamRef):
            if x.name not in params:
                raise ExprError(f"param {x.name} has no value")
            return bind(params[x.name])
        if isinstance(x, Column):
            if talk and x.name == "conversation":
                return CONVERSATION
            if prompt and x.name == "system":
                return SYSTEM_PROMPT
            if x.name in fields:
                return f"json_extract_string({field_doc(x.name)})"
            if x.name in json_cols:  # a text value as itself (not its quoted JSON), others as their JSON text
                c = quote_ident(x.name)
                return f"(CASE WHEN json_type({c}) = 'VARCHAR' THEN {c} ->> '$' ELSE CAST({c} AS VARCHAR) END)"
            return quote_ident(x.name)
        if isinstance(x, Unary):
            if x.op == "not":
                return f"(NOT {logical(x.operand)})"
            return f"TRY(- {num(x.operand)})" if x.op == "-" else f"(+ {num(x.operand)})"
        if isinstance(x, Binary):
            op = _BINARY_SQL.get(x.op)
            if op is None:
                raise ExprError(f"operator {x.op}")
            if x.op in _ARITH:
                left, right = num(x.left), num(x.right)
            elif x.op in ("and", "or"):
                left, right = logical(x.left), logical(x.right)
            else:
                left, right = compared(x.left, x.right), compared(x.right, x.left)
            if x.op in ("/", "%"):  # a zero divisor gives NULL, not an error (or a NaN) that stops the run
                return f"({left} {op} NULLIF({right}, 0))"
            if x.op in ("+", "-", "*"):  # a result beyond 64 bits gives NULL too, not an error mid-run
                return f"TRY({left} {op} {right})"
            return f"({left} {op} {right})"
        if isinstance(x, Call):
            f = FUNCTIONS.get(x.fn)
            if f is None or not (f.min_args <= len(x.args) <= f.max_args):
                raise ExprError(f"function {x.fn}")
            if f.sql in ("ln", "sqrt"):  # outside the domain: NULL, as for a zero divisor
                a = twice(x.args[0], num)  # appears twice below: once in the test, once as the argument
                return f"(CASE WHEN {a} {'>' if f.sql == 'ln' else '>='} 0 THEN {f.sql}({a}) END)"
            lists = _LIST_ARGS.get(x.fn, ())  # in argument order: the bound values follow the text
            args = [listed(a) if i in lists else num(a) if i == 0 and f.sql in ("abs", "round") else go(a)
                    for i, a in enumerate(x.args)]
            # a bare `null` argument has no type, and DuckDB cannot pick an overload for it
            # (contains(NULL, NULL)): it gets the type the function takes there
            want = SIGNATURES.get(x.fn, ((), ""))[0]
            for i, a in enumerate(x.args):
                if isinstance(a, Lit) and a.value is None:
                    w = want[min(i, len(want) - 1)] if want else "any"
                    w = want[-2] if w == "..." else w
                    if w in _NULL_SQL:
                        args[i] = f"CAST(NULL AS {_NULL_SQL[w]})"
            if f.sql == "round":  # round(BIGINT, BIGINT) does not bind; the docs promise a float
                # digits past a double's range change nothing (or round to 0), as in Python; unclamped,
                # 10^10 digits stopped the run in the cast to INTEGER
                digits = f", CAST(greatest(-400, least(400, {args[1]})) AS INTEGER)" if len(args) > 1 else ""
                return f"round(CAST({args[0]} AS DOUBLE){digits})"
            if f.sql == "__words":
                return f"len(regexp_extract_all({args[0]}, '{NOT_WS}'))"
            if f.sql == "__trim":  # DuckDB's trim() removes spaces only; the docs promise whitespace
                return f"regexp_replace({args[0]}, '^{WS}|{WS}$', '', 'g')"
            if f.sql == "regexp_replace":  # every match, as the docs (and Python's re.sub) say
                # a replacement computed per row is text: its backslashes name no groups (RE2
                # would drop the text from a bad escape on, and `check` cannot see a row's)
                rep = (args[2] if isinstance(x.args[2], (Lit, ParamRef))
                       else f"replace({args[2]}, {FIXED_LITERALS[-2]}, {FIXED_LITERALS[-1]})")
                return f"regexp_replace({args[0]}, {args[1]}, {rep}, 'g')"
            if f.sql == "regexp_extract":  # group 0, the whole match, unless one is named
                group = f"CAST({args[2]} AS INTEGER)" if len(args) > 2 else "0"  # a literal binds as BIGINT
                return f"regexp_extract({args[0]}, {args[1]}, {group})"
            if f.sql in _TEXT_STATS:
                return _let(args, _TEXT_STATS[f.sql])
            if f.sql in UDFS:  # a compiled function the engine registered (`register_functions`)
                return f"{f.sql}(CAST({args[0]} AS VARCHAR), CAST({args[1]} AS BIGINT))"
            if f.sql == "__interleave":
                return _let(args, _INTERLEAVE)
            if f.sql == "__has":
                return f"list_contains({args[0]}, CAST({args[1]} AS VARCHAR))"
            if f.sql == "__item":
                return f"list_extract({args[0]}, CAST({args[1]} AS BIGINT))"
            if f.sql == "__is_null":
                return f"({args[0]} IS NULL)"
            if f.sql == "abs":
                return f"TRY(abs({args[0]}))"  # abs of the smallest 64-bit integer: NULL
            if f.sql == "__number":
                return f"TRY_CAST({args[0]} AS DOUBLE)"
            if f.sql == "__text":
                return f"CAST({args[0]} AS VARCHAR)"
            if f.sql == "__bucket":  # the first 60 bits of the MD5 of the text (as `text` gives it), mod n;
                # DuckDB's hash() may change between versions, MD5 cannot. n <= 0: null
                return (f"(TRY_CAST(concat({FIXED_LITERALS[0]}, left(md5(CAST({args[0]} AS VARCHAR)), 15)) AS BIGINT) "
                        f"% NULLIF(greatest(CAST({args[1]} AS BIGINT), 0), 0))")
            return f"{f.sql}({', '.join(args)})"
        raise ExprError(f"unsupported expression {type(x).__name__}")

    sql = listed(e) if as_list else go(e)
    return (f"CAST({sql} AS VARCHAR[])" if as_list and isinstance(e, Lit) else sql), binds


# list-taking functions: (function, its list arguments' positions)
_LIST_ARGS = {"has": (0,), "item": (0,), "interleave": (0, 1), "num_tags": (0,)}
# [a1, b1, a2, b2, ...] to the longer list's end, null for the shorter's missing items; a null
# list counts as empty
_INTERLEAVE = (lambda a, b: f"list_transform(range(1, 2 * greatest(coalesce(len({a}), 0), coalesce(len({b}), 0)) + 1), "
                            f"__i -> CASE WHEN __i % 2 = 1 THEN {a}[(__i + 1) // 2] ELSE {b}[__i // 2] END)")


def _listed(x, sql: str, json_cols: set, types: dict) -> str:
    """A list argument's SQL: a JSON column's arrays as lists of text (null where a value is
    not one); a column that holds no lists at run time (text where `check` saw an open
    column) is null, not a text that DuckDB would index by characters."""
    if isinstance(x, Column) and x.name in json_cols:
        return f"TRY_CAST({quote_ident(x.name)} AS VARCHAR[])"
    if isinstance(x, Column) and types.get(x.name) in (STR, INT, FLOAT, BOOL):
        return "CAST(NULL AS VARCHAR[])"
    return sql


def _let(values: list[str], body) -> str:
    """`body(*names)` with each SQL value bound once to a lambda parameter, for SQL that
    reads an argument several times: it is computed, and its values bound, once."""
    names = [f"__a{i}" for i in range(len(values))]
    sql = body(*names)
    for v, n in reversed(list(zip(values, names))):
        sql = f"list_transform([{v}], {n} -> {sql})[1]"
    return sql


# text statistics for heuristic quality filters (of the kind Data-Juicer's and Gopher's
# filters compute), each a function of its arguments' `_let` names
_TEXT_STATS = {
    "__lines": lambda t: (f"CASE WHEN {t} = '' THEN 0 ELSE length({t}) - length(replace({t}, chr(10), '')) + 1 "
                          f"- CAST(ends_with({t}, chr(10)) AS BIGINT) END"),
    "__max_line_length": lambda t: f"list_max(list_transform(string_split({t}, chr(10)), __l -> length(__l)))",
    "__alpha_ratio": lambda t: f"CAST(length(regexp_replace({t}, '\\PL+', '', 'g')) AS DOUBLE) / NULLIF(length({t}), 0)",
    "__digit_ratio": lambda t: f"CAST(length(regexp_replace({t}, '\\P{{Nd}}+', '', 'g')) AS DOUBLE) / NULLIF(length({t}), 0)",
}

# functions DuckDB lacks: compiled kernels vectorised over Arrow (algorithms/text_stats.py),
# registered on every connection that runs row expressions (`register_functions`)
UDFS = ("recipe_char_repetition", "recipe_word_repetition")


def condition_sql(e, params: dict, column_types: dict | None = None) -> tuple[str, list]:
    """A filter's condition as SQL that is true, false or null: `check` lets through a
    condition whose type it cannot know (a null, `abs(null)`), which DuckDB's coalesce with
    `false` refused mid-run ("Cannot mix values of type DOUBLE and BOOLEAN")."""
    sql, binds = to_sql(e, params, column_types)
    return f"TRY_CAST({sql} AS BOOLEAN)", binds


def register_functions(con) -> None:
    """Make `UDFS` callable on a DuckDB connection (each: text, size -> double)."""
    from duckdb.sqltypes import BIGINT, DOUBLE, VARCHAR

    # the module, not the algorithms package: the engines' code hash (every step's) stays small
    from ..algorithms.text_stats import char_repetition, word_repetition
    for name, fn in zip(UDFS, (char_repetition, word_repetition)):
        con.create_function(name, fn, [VARCHAR, BIGINT], DOUBLE, type="arrow", null_handling="special",
                            side_effects=False)


SYSTEM_PROMPT = "coalesce(list_filter(messages, __m -> __m.role = 'system')[1].content, '')"
CONVERSATION = "coalesce(array_to_string(list_transform(messages, m -> m.role || ': ' || m.content), chr(10)), '')"


def text_sql(column: str) -> str:
    """A column as the text operators judge (conversation: every turn; null: '')."""
    return CONVERSATION if column == "conversation" else f"coalesce(CAST({quote_ident(column)} AS VARCHAR), '')"


def conversation_sql(lst: str) -> tuple[str, str, str]:
    """SQL for (`messages`, `instruction`, `response`) of a conversation given as the list of
    text `lst` (a column name): its items are the turns, user first and then in turn; nulls at
    its end are left out (`interleave` of a longer list of questions), others are empty turns."""
    n = (f"(len({lst}) + 1 - coalesce(list_position(list_transform(list_reverse({lst}), __x -> __x IS NOT NULL), "
         f"true), len({lst}) + 1))")
    messages = (f"coalesce(list_transform({lst}[1:{n}], (__x, __i) -> struct_pack(role := CASE WHEN __i % 2 = 1 "
                f"THEN 'user' ELSE 'assistant' END, content := coalesce(__x, ''))), [])")
    return messages, f"coalesce({lst}[1], '')", f"coalesce({lst}[2], '')"


_FIRST_USER = "coalesce(list_filter(messages, __m -> __m.role = 'user')[1].content, '')"


def turn_stages(turns) -> list[str]:
    """`REPLACE` lists, applied in order, that write the derived `turns` (a subset of
    TURN_PARTS, each computed into `__NAME`, an input's old value into `__old_NAME`) into
    `messages`, and `instruction`/`response` after it."""
    stages = []
    if "conversation" in turns:
        messages, instruction, response = conversation_sql("__conversation")
        stages.append(f"{messages} AS messages, {instruction} AS instruction, {response} AS response")
    for name in ("input", "context"):
        if name in turns:
            stages += [f"{input_sql(name)} AS messages", f"{_FIRST_USER} AS instruction"]
    if "system" in turns:
        rest = "list_filter(messages, __m -> __m.role <> 'system')"
        stages.append(f"(CASE WHEN {_blank('__system')} THEN {rest} ELSE list_concat([struct_pack(role := 'system', "
                      f"content := __system)], {rest}) END) AS messages")
    return stages


def _blank(sql: str) -> str:
    """Null, or nothing but whitespace (Python's, as the readers' `strip()`)."""
    return f"coalesce(regexp_full_match({sql}, '{WS_RE2}*'), true)"


def input_sql(name: str) -> str:
    """`messages` with the last user turn's input part (what a reader joined after its
    instruction with a blank line, `io.formats._join`) now the column `name`'s value: the old
    value (`__old_NAME`) cut from the turn's end where it is there, the new one joined on."""
    old, new = f"__old_{name}", quote_ident(name)
    last = ("(CASE WHEN list_position(list_transform(messages, __m -> __m.role), 'user') IS NOT NULL THEN len(messages) + 1 "
            "- list_position(list_reverse(list_transform(messages, __m -> __m.role)), 'user') END)")
    cut = (f"(CASE WHEN NOT {_blank(old)} AND ends_with(__t.content, chr(10) || chr(10) || {old}) "
           f"THEN left(__t.content, length(__t.content) - length({old}) - 2) ELSE __t.content END)")
    joined = f"{cut} || (CASE WHEN {_blank(new)} THEN '' ELSE chr(10) || chr(10) || {new} END)"
    return (f"list_transform(messages, (__t, __i) -> CASE WHEN __i = {last} THEN struct_pack(role := __t.role, "
            f"content := {joined}) ELSE __t END)")


def sync_messages_sql(instruction: bool, response: bool) -> str:
    """SQL for `messages` with its first user turn set to `instruction` and the first
    assistant turn after it set to `response` (a missing turn is inserted: the user turn after
    any system turns, the assistant turn right after the first user turn, if `response` is not
    empty). Without a user turn, the first assistant turn is the response's."""
    m = "messages"
    if instruction:
        pos = f"list_position(list_transform({m}, x -> x.role), 'user')"
        user = "[struct_pack(role := 'user', content := instruction)]"
        m = (f"(CASE WHEN {pos} IS NULL THEN list_concat(list_filter({m}, x -> x.role = 'system'), {user}, "
             f"list_filter({m}, x -> x.role <> 'system')) ELSE list_transform({m}, (x, i) -> CASE WHEN i = {pos} "
             f"THEN struct_pack(role := x.role, content := instruction) ELSE x END) END)")
    if response:
        upos = f"list_position(list_transform({m}, x -> x.role), 'user')"
        apos = (f"(CASE WHEN {upos} IS NULL THEN list_position(list_transform({m}, x -> x.role), 'assistant') "
                f"ELSE {upos} + list_position(list_transform({m}[{upos} + 1:], x -> x.role), 'assistant') END)")
        turn = "[struct_pack(role := 'assistant', content := response)]"
        m = (f"(CASE WHEN {apos} IS NOT NULL THEN list_transform({m}, (x, i) -> CASE WHEN i = {apos} "
             f"THEN struct_pack(role := x.role, content := response) ELSE x END) "
             f"WHEN coalesce(response, '') = '' THEN {m} "
             f"WHEN {upos} IS NULL THEN list_concat({m}, {turn}) "
             f"ELSE list_concat({m}[1:{upos}], {turn}, {m}[{upos} + 1:]) END)")
    return m

"""Row-expression syntax shared by every stage: the function whitelist, operator
precedence, and the canonical text form of an expression. A leaf module (it imports only
the IR), so the printers, the checker and the SQL translation can all use it."""
from __future__ import annotations

import json
from dataclasses import dataclass

from .ir import Binary, Call, Column, ListV, Lit, ParamRef, Unary, walk

MAX_NODES = 2000  # refuse expressions that only generated or hostile input would contain

# Python's `\s` (what text normalisation means everywhere) as an RE2 character class, for
# DuckDB and Arrow, whose own `\s` is ASCII-only
# names `derive` writes into the conversation (engine/duck.py's `derive`): the turns where no
# column has the name; the system prompt; Alpaca's input and Dolly's context, which the readers
# join to the last user turn after its instruction
TURN_PARTS = ("conversation", "input", "context", "system")


KEYWORDS = {"recipe", "use", "as", "param", "model", "source", "write", "to", "and", "or", "not",
            "true", "false", "null"}


def in_the_turns(name: str, columns) -> bool:
    """`derive(NAME = ...)` writes into the conversation: one of TURN_PARTS, `conversation`
    only where no column has the name (`columns`: the names there; None when not known)."""
    return name in TURN_PARTS and (name != "conversation" or columns is None or name not in columns)
WS_RE2 = ("[\\t\\n\\x{0b}\\x{0c}\\r\\x{1c}-\\x{1f} \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"
          "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}]")


def quote_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


@dataclass(frozen=True)
class Fn:
    sql: str          # the SQL function it becomes
    min_args: int
    max_args: int
    doc: str

    def arity_text(self) -> str:
        return str(self.min_args) if self.min_args == self.max_args else f"{self.min_args}-{self.max_args}"


FUNCTIONS: dict[str, Fn] = {
    "length": Fn("length", 1, 1, "number of characters in a text"),
    "words": Fn("__words", 1, 1, "number of whitespace-separated words"),
    "lower": Fn("lower", 1, 1, "lower-cased text"),
    "upper": Fn("upper", 1, 1, "upper-cased text"),
    "trim": Fn("__trim", 1, 1, "text without leading/trailing whitespace"),
    "concat": Fn("concat", 2, 8, "texts joined end to end (a null counts as empty)"),
    "contains": Fn("contains", 2, 2, "whether text contains a substring"),
    "starts_with": Fn("starts_with", 2, 2, "whether text starts with a prefix"),
    "ends_with": Fn("ends_with", 2, 2, "whether text ends with a suffix"),
    "regexp_matches": Fn("regexp_matches", 2, 2, "whether an RE2 pattern matches somewhere in the text"),
    "regexp_replace": Fn("regexp_replace", 3, 3, "every match of an RE2 pattern replaced (\\1 names a group)"),
    "regexp_extract": Fn("regexp_extract", 2, 3, "the first match of an RE2 pattern, or its group n (1 to 9); "
                                                 "empty text where it does not match"),
    "abs": Fn("abs", 1, 1, "absolute value"),
    "round": Fn("round", 1, 2, "round to n digits"),
    "least": Fn("least", 2, 8, "smallest argument"),
    "greatest": Fn("greatest", 2, 8, "largest argument"),
    "coalesce": Fn("coalesce", 2, 8, "first non-null argument"),
    "log": Fn("ln", 1, 1, "natural logarithm"),
    "sqrt": Fn("sqrt", 1, 1, "square root"),
    "is_null": Fn("__is_null", 1, 1, "whether a value is null"),
    "turns": Fn("len", 1, 1, "number of turns in `messages`"),
    "num_tags": Fn("len", 1, 1, "number of tags in a list column"),
    "has": Fn("__has", 2, 2, "whether a list column holds the text as one of its items (`has(tags, \"math\")`)"),
    "item": Fn("__item", 2, 2, "a list column's n-th item (1 the first, -1 the last); null past either end "
                               "(`item(turns, 2)`: MT-Bench's second question)"),
    "interleave": Fn("__interleave", 2, 2, "two lists' items in turn, a1 b1 a2 b2 ... to the longer's end (null for "
                                           "the shorter's missing items; a null list counts as empty): "
                                           "`derive(conversation = interleave(turns, choices.1.turns))`"),
    "number": Fn("__number", 1, 1, "a text's number (null where the text is not one); a number as it is"),
    "text": Fn("__text", 1, 1, "a number or true/false as text (1.5 -> \"1.5\"); a text as it is"),
    "bucket": Fn("__bucket", 2, 2, "a value's stable bucket in [0, n), from the MD5 of its text: the same on "
                                   "every run, engine and machine (`bucket(instruction, 100) < 5`: a 5% split "
                                   "that stays put as data grows, duplicates on one side)"),
    # text statistics for heuristic quality filters
    "lines": Fn("__lines", 1, 1, "number of lines (an empty text has none; a final newline ends the last line)"),
    "max_line_length": Fn("__max_line_length", 1, 1, "characters in the longest line"),
    "alpha_ratio": Fn("__alpha_ratio", 1, 1, "share of characters that are letters (null for an empty text)"),
    "digit_ratio": Fn("__digit_ratio", 1, 1, "share of characters that are decimal digits (null for an empty text)"),
    "char_repetition": Fn("recipe_char_repetition", 2, 2,
                          "share of the text's windows of n characters that repeat an earlier window"),
    "word_repetition": Fn("recipe_word_repetition", 2, 2,
                          "share of the text's windows of n words that repeat an earlier window"),
}

# precedence for printing with the fewest parentheses (higher binds tighter)
PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
              "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "neg": 7}


def to_text(e, parent: int = 0) -> str:
    """The canonical text form of an expression (used by both printers)."""
    if isinstance(e, Lit):
        v = e.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return quote_str(v)
        return repr(v)
    if isinstance(e, (ParamRef, Column)):
        return e.name
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(to_text(a) for a in e.args)})"
    if isinstance(e, ListV):
        return "[" + ", ".join(to_text(a) for a in e.items) + "]"
    if isinstance(e, Unary):
        p = PRECEDENCE["not" if e.op == "not" else "neg"]
        s = ("not " if e.op == "not" else e.op) + to_text(e.operand, p)
        return f"({s})" if p < parent else s
    if isinstance(e, Binary):
        p = PRECEDENCE[e.op]
        # left-associative: the right operand needs parentheses at equal precedence
        # left-associative: the right operand needs parentheses at equal precedence;
        # comparisons do not chain, so both sides do
        lp = p + 1 if p == PRECEDENCE["=="] else p
        s = f"{to_text(e.left, lp)} {e.op} {to_text(e.right, p + 1)}"
        return f"({s})" if p < parent else s
    raise TypeError(type(e).__name__)


def derive_first(expr: str) -> str:
    """The hint for a row expression given where a value or a column is taken (`by=length(response)`):
    a column made from it first, named after it."""
    import re
    name = re.sub(r"\W+", "_", expr).strip("_").lower()
    name = name if re.fullmatch(r"[a-z_][a-z0-9_]{0,30}", name or "") and name not in KEYWORDS else "value"
    return (f"row expressions go in `filter`, `derive` and `score(metric=\"expr\")`: make it a column first, "
            f"`| derive({name} = {expr})`, then give `{name}` here")


def looks_like_an_expression(text: str) -> bool:
    """A column name that is a row expression (`length(response)`, `a + b`), as a YAML value or a
    quoted name gives one."""
    import re
    return bool(re.search(r"[()+*/<>=!]|\s", text.strip()))


def expr_columns(e) -> list[Column]:
    """The column references in an expression."""
    return [x for x in walk(e) if isinstance(x, Column)]


def field_path(name: str, columns) -> tuple[str, tuple[str, ...]] | None:
    """`meta.lang` read as the field `lang` of the column `meta` (a nested value): (column,
    keys), when `name` is not itself a column and a dotted prefix of it is (the longest:
    a CSV header may name a column `a.b`); else None."""
    if "." not in name or name in columns:
        return None
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        base = ".".join(parts[:i])
        if base in columns:
            return base, tuple(parts[i:])
    return None


def base_column(name: str, columns) -> str:
    """The column a reference reads: itself, or the column whose field it names."""
    got = field_path(name, columns)
    return got[0] if got else name

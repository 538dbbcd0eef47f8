"""Which row formats Arrow's fast path reads (JSON lines, JSON arrays, Parquet and Arrow
files), and the canonicaliser of each: of a chunk of lines (`canon_for`, `arrow_alpaca.chunks`'
`canon`; None: Alpaca's own) and of a table of records (`table_for`, Parquet's batches)."""
from __future__ import annotations

FAST = ("alpaca", "sharegpt", "openai", "dolly", "prompt_completion", "question_answer", "instruction_only", "raw")
CSV_FAST = ("alpaca", "dolly", "prompt_completion", "question_answer", "instruction_only", "raw")  # a CSV field is text: no turns


def canon_for(fmt: str):
    if fmt == "alpaca":
        return None
    if fmt in ("sharegpt", "openai"):
        from .arrow_chat import canon_for as chat
        return chat(fmt)
    from .arrow_pairs import canon_for as pairs
    return pairs(fmt)


def table_for(fmt: str):
    """`canon(t, prefix, start)`: the canonical table of a table of `fmt` records (Parquet's,
    an Arrow file's), or None where the record reader must read them."""
    from .arrow_alpaca import canonical_table, small_types
    if fmt == "alpaca":
        return canonical_table
    if fmt in ("sharegpt", "openai"):
        from .arrow_chat import chat_table as table
    elif fmt == "raw":
        from .arrow_pairs import raw_table as table
    elif fmt == "instruction_only":
        from .arrow_pairs import prompt_table as table
    else:
        from .arrow_pairs import pair_table as table
    return lambda t, prefix, start: table(small_types(t), fmt, prefix, start)

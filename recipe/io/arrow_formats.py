"""Which row formats Arrow's fast path reads in JSON lines and JSON arrays, and the chunk
canonicaliser of each (`arrow_alpaca.chunks`' `canon`; None: Alpaca's own)."""
from __future__ import annotations

FAST = ("alpaca", "sharegpt", "openai", "dolly", "prompt_completion", "question_answer")


def canon_for(fmt: str):
    if fmt == "alpaca":
        return None
    if fmt in ("sharegpt", "openai"):
        from .arrow_chat import canon_for as chat
        return chat(fmt)
    from .arrow_pairs import canon_for as pairs
    return pairs(fmt)

"""Helpers shared by operators: the text a row is judged by, embeddings, token counts."""
from __future__ import annotations

import numpy as np

TEXT_FIELDS = ("instruction", "response", "conversation")


def row_texts(ctx, table: str, on: str) -> list[str]:
    """`instruction`, `response`, `conversation` (all turns), or any text column."""
    return ctx.texts(table, on)


def embeddings(ctx, table: str, args: dict, on: str | None = None) -> np.ndarray:
    """Row embeddings: from the `embedding_column` (a list of floats per row) or computed by
    the `embedding` model through the shared runtime (cached per text)."""
    col = args.get("embedding_column")
    if col:
        from ..expr import quote_ident as q
        rows = ctx.con.execute(f"SELECT {q(col)} FROM {q(table)} ORDER BY rowid").fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.float32)
    texts = row_texts(ctx, table, on or args.get("on", "instruction"))
    return ctx.runtime.embed(ctx.models[args["embedding"]], texts, progress=ctx.progress)


def approx_tokens(texts: list[str]) -> np.ndarray:
    """A model-free token count (words and punctuation), for token budgets."""
    import re
    pat = re.compile(r"\w+|[^\w\s]")
    return np.asarray([len(pat.findall(t)) for t in texts], dtype=np.float64)

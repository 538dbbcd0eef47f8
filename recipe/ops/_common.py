"""Helpers shared by operators: the text a row is judged by, embeddings, token counts."""
from __future__ import annotations

import json

import numpy as np

from ..diagnostics import UserError

TEXT_FIELDS = ("instruction", "response", "conversation")


def row_texts(ctx, table, on: str) -> list[str]:
    """`instruction`, `response`, `conversation` (all turns), or any text column."""
    return table.texts(on)


def embeddings(ctx, table, args: dict, on: str | None = None) -> np.ndarray:
    """Row embeddings: from the `embedding_column` (a list of floats per row) or computed by
    the `embedding` model through the shared runtime (cached per text)."""
    col = args.get("embedding_column")
    if col:
        rows = table.column(col)
        # readers keep nested values (a JSON list in a .jsonl row) as JSON text
        try:
            arr = np.asarray([json.loads(v) if isinstance(v, str) else v for v in rows], dtype=np.float32)
        except (TypeError, ValueError):
            arr = None
        if arr is None or (len(rows) and arr.ndim != 2):
            raise UserError(_bad_embeddings(col, rows, table.ids()))
        return arr.reshape(len(rows), -1)
    texts = row_texts(ctx, table, on or args.get("on", "instruction"))
    return ctx.runtime.embed(ctx.models[args["embedding"]], texts, progress=ctx.progress)


def _bad_embeddings(col: str, rows: list, ids: list[str]) -> str:
    """Which rows of an embedding column are not a list of numbers of the common length."""
    def length(v):
        try:
            v = json.loads(v) if isinstance(v, str) else v
            return len(v) if isinstance(v, list) and all(isinstance(x, (int, float)) for x in v) else None
        except (TypeError, ValueError):
            return None
    lens = [length(v) for v in rows]
    common = max(set(x for x in lens if x), key=lens.count, default=None)
    bad = [(i, x) for i, x in enumerate(lens) if x is None or x != common]  # no row with one: every row
    shown = "; ".join(f"row {ids[i]}: " + ("null" if rows[i] is None else "not a list of numbers" if x is None else
                                           f"{x} numbers") for i, x in bad[:3])
    return (f"embedding_column `{col}` must hold a list of {common or 'the same number of'} numbers in every row; "
            f"{len(bad)} of {len(rows)} rows do not ({shown}{'; ...' if len(bad) > 3 else ''}); "
            f"set them aside first, e.g. `filter(is_null({col}) == false)`")


def approx_tokens(texts: list[str]) -> np.ndarray:
    """A model-free token count (words and punctuation), for token budgets."""
    import re
    pat = re.compile(r"\w+|[^\w\s]")
    return np.asarray([len(pat.findall(t)) for t in texts], dtype=np.float64)


def fetch_rows(ctx, table) -> tuple[list[dict], "object"]:
    """All rows of a table as dicts (in order) and its Arrow schema."""
    return table.rows()


def write_rows(ctx, rows: list[dict], schema, extra_fields=()) -> None:
    """The step's output: row dicts with the given schema (plus extra fields)."""
    import pyarrow as pa
    for f in extra_fields:
        if f.name not in schema.names:
            schema = schema.append(f)
    ctx.out.rows(pa.Table.from_pylist(rows, schema=schema))


def set_aside(ctx, items: list[tuple[str, str]]) -> None:
    ctx.out.set_aside(items)


def with_turn(row: dict, instruction: str, response: str) -> dict:
    """A row whose conversation is one user turn and one assistant turn."""
    return {**row, "messages": [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}],
            "instruction": instruction, "response": response}


def reward_values(logits):
    """A reward or classifier head's score per row: its one logit, or the last label's."""
    return (logits[:, 0] if logits.shape[1] == 1 else logits[:, -1]).tolist()

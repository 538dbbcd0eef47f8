"""Text statistics that SQL computes slowly, over Arrow arrays by compiled kernels: the
repetition of a text's windows of n characters or words (`char_repetition`,
`word_repetition`). As SQL list lambdas they built every window as a string, about 33 us a
row of P3; the engines register these as DuckDB functions (engine/sql.py)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .kernels import repetition_rows
from .shingles import _buffer, case_tables, text_array


def repetition(texts, sizes, by_words: bool) -> pa.Array:
    """Per row, the share of the text's windows of `sizes` units (characters, or words:
    runs of non-whitespace, Python's whitespace) that repeat an earlier window; 0 when the
    text has fewer units than the size; null where the text or size is null or the size is
    below 1."""
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    sizes = sizes.combine_chunks() if isinstance(sizes, pa.ChunkedArray) else sizes
    nulls = np.asarray(pc.or_(pc.is_null(texts), pc.is_null(sizes)).to_numpy(zero_copy_only=False), dtype=bool)
    data, offs = _buffer(text_array(texts))
    n = pc.fill_null(sizes.cast(pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    out = np.empty(len(n), np.float64)
    repetition_rows(data, offs, n, by_words, case_tables()[1], out)
    return pa.array(out, mask=nulls | np.isnan(out), type=pa.float64())


def char_repetition(texts, sizes) -> pa.Array:
    return repetition(texts, sizes, False)


def word_repetition(texts, sizes) -> pa.Array:
    return repetition(texts, sizes, True)

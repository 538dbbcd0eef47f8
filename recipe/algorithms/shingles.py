"""Shingle hashes of many texts at once, without a Python loop per text or per shingle.

Texts are read as one UTF-8 byte buffer;
whitespace is collapsed, code points decoded and words hashed by compiled loops over that
buffer (`kernels.py`; the same key as `normalise`; exact dedupe hashes it, `normalised_keys`).
Shingles (n-grams of code points or of words) get a polynomial hash and a 64-bit finaliser:
`shingles` defines them in numpy, MinHash signs them in one compiled pass (`sign_units`).
"""
from __future__ import annotations

import functools
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .kernels import I_DOT, murmur3_rows, normalise_bytes, utf8_code_points, word_hashes

_WS = re.compile(r"\s+")
_P = np.uint64(1099511628211)


def normalise(text: str) -> str:
    """Lower-cased (final sigma as sigma), whitespace runs made one space, trimmed; exact
    dedupe and MinHash compute the same key in numpy (`normalised_code_points`)."""
    return _WS.sub(" ", (text or "").lower().replace("\u03c2", "\u03c3")).strip()


@functools.cache
def case_tables() -> tuple[np.ndarray, np.ndarray]:
    """`normalise`'s character tables, from Python itself: each code point's lower case
    (`str.lower`, ς as σ, I_DOT for U+0130, the one letter that lower-cases to two
    characters) and whether it is whitespace (Python's `\\s`, which `syntax.WS_RE2` spells
    for SQL). Built once, in about a tenth of a second."""
    cps = np.arange(0x110000, dtype=np.uint32)
    cps = cps[((cps < 0xD800) | (cps >= 0xE000)) & (cps != 0x130)]
    text = cps.tobytes().decode("utf-32-le")
    lowered = text.lower()
    if len(lowered) != len(text):  # a Python whose lower() expands more letters: not handled
        raise RuntimeError("str.lower changed the length of the code point table")
    lower = np.arange(0x110000, dtype=np.uint32)
    lower[cps] = np.frombuffer(lowered.encode("utf-32-le"), np.uint32)
    lower[0x3C2] = 0x3C3  # final sigma as sigma
    lower[0x130] = I_DOT
    space = np.zeros(0x110000, dtype=bool)
    space[[c for c in range(0x3001) if chr(c).isspace()]] = True  # none above U+3000
    return lower, space


def text_array(texts) -> pa.Array:
    """Texts (a list or an Arrow array, nulls as "") as one large_string Arrow array."""
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return pc.fill_null(arr, "") if arr.null_count else arr


def pieces(arr: pa.Array, max_bytes: int):
    """Consecutive slices of a large_string array of at most `max_bytes` of text each (or
    one text, when a text alone is longer); always at least one slice."""
    offs = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1] if len(arr) else None
    if offs is None or offs[-1] - offs[0] <= max_bytes:
        yield arr
        return
    at = 0
    while at < len(arr):
        end = int(np.searchsorted(offs, offs[at] + max_bytes, side="right")) - 1
        end = max(end, at + 1)
        yield arr.slice(at, end - at)
        at = end


def _buffer(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 offsets from 0) of a large_string array, honouring its slice."""
    _, obuf, dbuf = arr.buffers()
    offs = np.frombuffer(obuf, dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(dbuf, dtype=np.uint8) if dbuf is not None else np.zeros(0, np.uint8)
    if len(offs) == 0:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64)
    return data[offs[0]:offs[-1]], offs - offs[0]


def _code_points(data: np.ndarray, offs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code points of valid UTF-8 texts (bytes, offsets from 0), concatenated (the bytes
    themselves when all are ASCII, else a uint32 array), and how many each text has."""
    if not len(data) or data.max() < 0x80:
        return data, np.diff(offs)
    cp, lens = np.empty(len(data), np.uint32), np.empty(len(offs) - 1, np.int64)
    return cp[:utf8_code_points(data, offs, cp, lens)], lens


def normalised_utf8(texts) -> tuple[np.ndarray, np.ndarray]:
    """`normalise` over a list or Arrow array of texts (null as ""), in UTF-8: the bytes of
    all normalised texts concatenated and their offsets (from 0), in one compiled pass
    (`normalise_bytes`, with Python's own case and whitespace tables: a regular expression
    over the text was most of the time, and Arrow's utf8_lower took 7 ns a byte and knows
    a newer Unicode than Python's)."""
    data, offs = _buffer(text_array(texts))
    out, out_offs = np.empty(len(data) + len(data) // 2 + 4, np.uint8), np.empty(len(offs), np.int64)
    return out[:normalise_bytes(data, offs, *case_tables(), out, out_offs)], out_offs


def normalised_code_points(texts) -> tuple[np.ndarray, np.ndarray]:
    """`normalised_utf8` as code points: all normalised texts' code points concatenated
    (uint32) and how many each text has."""
    return _code_points(*normalised_utf8(texts))


def normalised_keys(texts) -> tuple[np.ndarray, np.ndarray]:
    """Exact dedupe's key of each text: MurmurHash3_x64_128 (seed 0) of its `normalise`d
    UTF-8, as (high, low) 64-bit halves (two texts sharing a key by chance: about 1e-27 at 1M
    rows). Normalised and hashed in pieces of about 128 KB, no text built."""
    arr = text_array(texts)
    hi, lo = np.empty(len(arr), np.uint64), np.empty(len(arr), np.uint64)
    at = 0
    for p in pieces(arr, 1 << 17):
        data, offs = normalised_utf8(p)
        murmur3_rows(data, offs, 0, hi[at:at + len(p)], lo[at:at + len(p)])
        at += len(p)
    return hi, lo


def _words(cp: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every space-separated word of normalised texts (single spaces,
    trimmed): fmix64 of the sum of (code point + 1) * P ** (its place in the word + 1),
    wrapping (`word_hashes`); and how many words each text has."""
    words, per = np.empty(len(cp) // 2 + len(counts), np.uint64), np.empty(len(counts), np.int64)
    return words[:word_hashes(cp, counts.astype(np.int64, copy=False), words, per)], per


def units(texts, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """All normalised texts' units (code points, or word hashes) concatenated as uint64, and
    the number of units of each text."""
    if unit not in ("char", "word"):
        raise ValueError("unit must be char or word")
    cp, counts = normalised_code_points(texts)
    return (cp.astype(np.uint64), counts) if unit == "char" else _words(cp, counts)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place on a uint64 array (returned)."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xC4CEB9FE1A85EC53)
        x ^= x >> np.uint64(33)
    return x


def shingle_hashes(texts, ngram: int = 5, unit: str = "char", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hash of every shingle, owning text of every shingle), in no set order. A text
    shorter than `ngram` units is one shingle (all of it); an empty one has none."""
    h, per_text, short = shingles(texts, ngram, unit, seed)
    return h, np.concatenate([np.repeat(np.arange(len(per_text)), per_text), short])


def shingles(texts, ngram: int = 5, unit: str = "char", seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shingle hashes of `shingle_hashes` as (hashes, windows per text, short texts):
    first every text's windows in text order, then one whole-text shingle for each text
    listed in `short`; the caller builds whatever owner index it needs from that."""
    flat, lens = units(texts, unit)
    with np.errstate(over="ignore"):
        flat += np.uint64(1)  # every unit enters the hash as unit + 1
    n = len(lens)
    ends = np.cumsum(lens)
    starts = ends - lens
    L = len(flat)
    m = max(0, L - ngram + 1)
    # rolling polynomial hash of every window of `ngram` units, in place on one array
    h = flat[:m].copy()
    with np.errstate(over="ignore"):
        for j in range(1, ngram):
            h *= _P
            h += flat[j:j + m]
    # keep the windows inside one text: a window starting at p crosses the end e of a text
    # when e - ngram < p < e
    ok = np.ones(m, dtype=bool)
    for back in range(1, ngram):
        at = ends - back
        ok[at[(at >= 0) & (at < m)]] = False
    per_text = np.maximum(lens - ngram + 1, 0)
    h = h[ok]
    short = np.flatnonzero((lens > 0) & (lens < ngram))
    if len(short):  # whole-text shingles for short texts (a missing unit counts as 0 + 1)
        hh = np.zeros(len(short), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(ngram):
                c = np.where(j < lens[short], flat[np.minimum(starts[short] + j, max(L - 1, 0))], np.uint64(1))
                hh = hh * _P + c
        h = np.concatenate([h, hh ^ np.uint64(0x9E3779B97F4A7C15) * lens[short].astype(np.uint64)])
    h ^= seed_mix(seed)
    return fmix64(h), per_text, short


def seed_mix(seed: int) -> np.uint64:
    """What every shingle hash is xor-ed with before the finaliser, for a seed."""
    with np.errstate(over="ignore"):
        return np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)

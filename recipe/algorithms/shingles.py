"""Shingle hashes of many texts at once, without a Python loop per text or per shingle.

Texts are lower-cased with Arrow compute and read as one UTF-8 byte buffer; code points are
decoded, whitespace collapsed and words hashed with numpy over that buffer (the same key as
`normalise` and as exact dedupe's SQL). Shingles (n-grams of code points or of words) get a
polynomial rolling hash over contiguous slices and a 64-bit finaliser.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_WS = re.compile(r"\s+")
_P = np.uint64(1099511628211)


def normalise(text: str) -> str:
    """Lower-cased (final sigma as sigma), whitespace runs made one space, trimmed; exact
    dedupe computes the same key in SQL (engine/sql.py), MinHash in numpy
    (`normalised_code_points`)."""
    return _WS.sub(" ", (text or "").lower().replace("\u03c2", "\u03c3")).strip()


def _ws_table() -> np.ndarray:
    """Whether each code point up to U+3000 is whitespace to Python's `\\s` (the set that
    `syntax.WS_RE2` spells for SQL); the last entry stands for everything above."""
    t = np.zeros(0x3002, dtype=bool)
    for c in range(0x3001):
        t[c] = chr(c).isspace()
    return t


_WS_TABLE = _ws_table()


def _strings(texts) -> pa.Array:
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    return pc.fill_null(arr.cast(pa.large_string()), "")


def _buffer(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 offsets from 0) of a large_string array, honouring its slice."""
    _, obuf, dbuf = arr.buffers()
    offs = np.frombuffer(obuf, dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(dbuf, dtype=np.uint8) if dbuf is not None else np.zeros(0, np.uint8)
    if len(offs) == 0:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64)
    return data[offs[0]:offs[-1]], offs - offs[0]


def _decode(data: np.ndarray, offs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code points (uint32) of valid UTF-8 bytes, and how many each text has."""
    lead = (data & 0xC0) != 0x80
    if lead.all():  # ASCII: one byte, one code point
        return data.astype(np.uint32), np.diff(offs)
    at = np.flatnonzero(lead)
    cp = data[at].astype(np.uint32)
    multi = np.flatnonzero(cp >= 0xC0)
    b0 = cp[multi]
    pad = np.concatenate([data, np.zeros(3, np.uint8)])
    p = at[multi]
    b1 = pad[p + 1].astype(np.uint32) & 0x3F
    b2 = pad[p + 2].astype(np.uint32) & 0x3F
    b3 = pad[p + 3].astype(np.uint32) & 0x3F
    cp[multi] = np.where(b0 < 0xE0, ((b0 & 0x1F) << 6) | b1,
                         np.where(b0 < 0xF0, ((b0 & 0x0F) << 12) | (b1 << 6) | b2,
                                  ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3))
    counted = np.concatenate([[0], np.cumsum(lead)])
    return cp, counted[offs[1:]] - counted[offs[:-1]]


def normalised_code_points(texts) -> tuple[np.ndarray, np.ndarray]:
    """`normalise` over a list or Arrow array of texts (null as ""): the code points of all
    normalised texts concatenated (uint32), and how many each text has. Lower-casing is
    Arrow's; whitespace is collapsed and trimmed in numpy (a regular expression over the
    text was most of the time)."""
    arr = _strings(texts)
    data, _ = _buffer(arr)
    if len(data) > 1 and ((data[:-1] == 0xC4) & (data[1:] == 0xB0)).any():
        # Arrow lower-cases U+0130 to `i`, Python to `i` + U+0307: spell Python's out first
        arr = pc.replace_substring(arr, "\u0130", "i\u0307")
    cp, counts = _decode(*_buffer(pc.utf8_lower(arr)))
    cp[cp == 0x3C2] = 0x3C3  # final sigma as sigma
    offs = np.concatenate([[0], np.cumsum(counts)])
    starts, ends = offs[:-1][counts > 0], offs[1:][counts > 0]
    ws = _WS_TABLE[np.minimum(cp, 0x3001)]
    # a whitespace run is kept as one space at its first code point, unless it leads or
    # trails its text: a text's first code point counts as following whitespace
    after_ws = np.empty_like(ws)
    after_ws[:1] = True
    after_ws[1:] = ws[:-1]
    after_ws[starts] = True
    keep = ~ws | ~after_ws
    trailing = ends[ws[ends - 1]]
    if len(trailing):
        solid_upto = np.maximum.accumulate(np.where(ws, -1, np.arange(len(cp))))
        run = solid_upto[trailing - 1] + 1  # where each trailing run starts
        keep[run[run > starts[ws[ends - 1]]]] = False
    cp = np.where(ws, np.uint32(0x20), cp)[keep]
    kept = np.concatenate([[0], np.cumsum(keep)])
    return cp, kept[offs[1:]] - kept[offs[:-1]]


def _words(cp: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every space-separated word of normalised texts (single spaces,
    trimmed), and how many words each text has."""
    solid = cp != 0x20
    start = solid.copy()
    start[1:] &= ~solid[:-1]
    offs = np.concatenate([[0], np.cumsum(counts)])
    first = offs[:-1][counts > 0]
    start[first] = True  # a word never runs from one text into the next
    pos = np.flatnonzero(solid)
    begins = np.flatnonzero(start[pos])  # index in `pos` of each word's first code point
    if len(pos):
        k = pos - pos[begins][np.cumsum(start[pos]) - 1]  # code point's place in its word
        powers = np.cumprod(np.full(int(k.max()) + 1, _P, dtype=np.uint64))
        with np.errstate(over="ignore"):
            terms = (cp[pos].astype(np.uint64) + np.uint64(1)) * powers[k]
        words = fmix64(np.add.reduceat(terms, begins))
    else:
        words = np.zeros(0, np.uint64)
    counted = np.concatenate([[0], np.cumsum(start)])
    return words, counted[offs[1:]] - counted[offs[:-1]]


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
    flat, lens = units(texts, unit)
    n = len(lens)
    ends = np.cumsum(lens)
    starts = ends - lens
    L = len(flat)
    m = max(0, L - ngram + 1)
    # rolling polynomial hash of every window of `ngram` units, in place on one array
    h = flat[:m] + np.uint64(1)
    with np.errstate(over="ignore"):
        for j in range(1, ngram):
            h *= _P
            h += flat[j:j + m]
            h += np.uint64(1)
    # keep the windows inside one text: a window starting at p crosses the end e of a text
    # when e - ngram < p < e
    ok = np.ones(m, dtype=bool)
    for back in range(1, ngram):
        at = ends - back
        ok[at[(at >= 0) & (at < m)]] = False
    per_text = np.maximum(lens - ngram + 1, 0)
    hs, owners = [h[ok]], [np.repeat(np.arange(n), per_text)]
    short = np.flatnonzero((lens > 0) & (lens < ngram))
    if len(short):  # whole-text shingles for short texts
        hh = np.zeros(len(short), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(ngram):
                c = np.where(j < lens[short], flat[np.minimum(starts[short] + j, max(L - 1, 0))], np.uint64(0))
                hh = hh * _P + c + np.uint64(1)
        hs.append(hh ^ np.uint64(0x9E3779B97F4A7C15) * lens[short].astype(np.uint64))
        owners.append(short)
    h = np.concatenate(hs)
    with np.errstate(over="ignore"):
        h ^= np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)
    return fmix64(h), np.concatenate(owners)

"""Compiled loops (numba) for the steps whose numpy form is many passes over memory:
signing shingles into MinHash bins, densifying signatures, banding and verifying
candidate pairs, normalising text.
Each computes what the numpy code in shingles.py/minhash.py defines, bit for bit (the tests
compare them); `nogil` lets the worker threads that call them run in parallel, and `cache`
keeps the compiled code between runs (compiling takes a few seconds)."""
from __future__ import annotations

import numpy as np
from numba import njit

EMPTY = np.uint32(np.iinfo(np.uint32).max)
_P = np.uint64(1099511628211)  # shingles._P
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_ONE = np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def _fmix64(x):
    x ^= x >> _S33
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return x


@njit(cache=True, nogil=True)
def sign_units(flat, lens, ngram, mix, sig):  # pragma: no cover - compiled; covered through minhash
    """Raw MinHash signatures (one row of `sig`, filled with EMPTY, per text) from texts'
    units (`shingles.units`: code points or word hashes, concatenated; `lens` per text):
    every shingle's hash as `shingles.shingles` computes it (a polynomial hash of `ngram`
    units + 1, a text shorter than `ngram` one whole-text shingle, xor `mix`, fmix64) picks
    bin hash mod K and offers the hash's top 31 bits to that bin's minimum."""
    K = sig.shape[1]
    pow2 = (K & (K - 1)) == 0
    kk = np.uint64(K)
    mask = np.uint64(K - 1)
    top = np.uint64(1)  # P ** (ngram - 1): the weight of a window's first unit
    for j in range(ngram - 1):
        top = top * _P
    start = 0
    for i in range(len(lens)):
        n = lens[i]
        row = sig[i]
        if 0 < n < ngram:
            h = np.uint64(0)
            for j in range(ngram):
                h = h * _P + (np.uint64(flat[start + j]) + _ONE if j < n else _ONE)
            h = _fmix64((h ^ (_GOLD * np.uint64(n))) ^ mix)
            b = h & mask if pow2 else h % kk
            v = np.uint32(h >> _S33)
            if v < row[b]:
                row[b] = v
        elif n >= ngram:
            # rolling: h holds the window's last ngram - 1 units, the next unit completes it
            h = np.uint64(0)
            for j in range(ngram - 1):
                h = h * _P + (np.uint64(flat[start + j]) + _ONE)
            for p in range(start, start + n - ngram + 1):
                h = h * _P + (np.uint64(flat[p + ngram - 1]) + _ONE)
                x = _fmix64(h ^ mix)
                b = x & mask if pow2 else x % kk
                v = np.uint32(x >> _S33)
                if v < row[b]:
                    row[b] = v
                h -= (np.uint64(flat[p]) + _ONE) * top
        start += n


@njit(cache=True, nogil=True)
def densify_rows(sig, table):  # pragma: no cover - compiled; covered through minhash
    """Fill each row's empty bins in place: bin j takes the value of bin table[t, j] for the
    first attempt t whose bin was filled before densifying; if none is, the row's first
    filled bin. Rows with no filled bin stay empty. Only bins filled beforehand are read, so
    the order of filling does not matter."""
    n, K = sig.shape
    tries = table.shape[0]
    full = np.empty(K, np.bool_)
    for r in range(n):
        row = sig[r]
        first = -1
        empties = 0
        for j in range(K):
            f = row[j] != EMPTY
            full[j] = f
            if f:
                if first < 0:
                    first = j
            else:
                empties += 1
        if first < 0 or empties == 0:
            continue
        for j in range(K):
            if full[j]:
                continue
            src = first
            for t in range(tries):
                c = table[t, j]
                if full[c]:
                    src = c
                    break
            row[j] = row[src]


def _ascii_table() -> np.ndarray:
    """What `normalise_bytes` writes for an ASCII byte: A-Z lower-cased, whitespace (9-13
    and 28-32, Python's `\\s` in ASCII) as a space, the rest as is."""
    low = np.arange(128, dtype=np.uint8)
    low[65:91] += 32
    low[[*range(9, 14), *range(28, 33)]] = 32
    return low


_ASCII = _ascii_table()
I_DOT = np.uint32(0xFFFFFFFF)  # in a lower-case table: U+0130, lower-cased to two characters


@njit(cache=True, nogil=True, inline="always")
def _code_point(data, p):
    """The code point that starts at data[p] (valid UTF-8) and its length in bytes."""
    c = np.uint32(data[p])
    if c < 0x80:
        return c, 1
    if c < 0xE0:
        return ((c & 0x1F) << 6) | (np.uint32(data[p + 1]) & 0x3F), 2
    if c < 0xF0:
        return ((c & 0x0F) << 12) | ((np.uint32(data[p + 1]) & 0x3F) << 6) | (np.uint32(data[p + 2]) & 0x3F), 3
    return (((c & 0x07) << 18) | ((np.uint32(data[p + 1]) & 0x3F) << 12)
            | ((np.uint32(data[p + 2]) & 0x3F) << 6) | (np.uint32(data[p + 3]) & 0x3F)), 4


@njit(cache=True, nogil=True, inline="always")
def _put_utf8(out, at, cp):
    """Encode one code point at out[at]; returns the bytes written."""
    if cp < 0x80:
        out[at] = cp
        return 1
    if cp < 0x800:
        out[at] = 0xC0 | (cp >> 6)
        out[at + 1] = 0x80 | (cp & 0x3F)
        return 2
    if cp < 0x10000:
        out[at] = 0xE0 | (cp >> 12)
        out[at + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[at + 2] = 0x80 | (cp & 0x3F)
        return 3
    out[at] = 0xF0 | (cp >> 18)
    out[at + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[at + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[at + 3] = 0x80 | (cp & 0x3F)
    return 4


@njit(cache=True, nogil=True)
def normalise_bytes(data, offs, lower, space, out, out_offs):  # pragma: no cover - compiled; covered through shingles
    """`shingles.normalise` of UTF-8 texts (bytes, offsets from 0) into `out`/`out_offs`
    (room for 1.5x the input: a lower-case letter can take a byte more than its capital):
    every character lower-cased by `lower` (a code point's lower case, Python's; I_DOT for
    U+0130, which becomes `i` + U+0307; final sigma as sigma), each run of whitespace
    (`space`, Python's `\\s`) one space and none at a text's start or end. Returns the bytes
    written. Branch-free for ASCII: a space is written always and kept only after something
    that is not a space."""
    at = 0
    out_offs[0] = 0
    for i in range(len(offs) - 1):
        begin = at
        prev = np.uint8(32)  # as if after a space: no space at the start
        p = offs[i]
        end = offs[i + 1]
        while p < end:
            c = data[p]
            if c < 0x80:
                v = _ASCII[c]
                out[at] = v
                at += (v != 32) | (prev != 32)
                prev = v
                p += 1
                continue
            cp, w = _code_point(data, p)
            p += w
            if space[cp]:
                out[at] = 32
                at += prev != 32
                prev = np.uint8(32)
                continue
            low = lower[cp]
            if low == I_DOT:
                out[at] = 0x69
                at += 1
                low = np.uint32(0x307)
            at += _put_utf8(out, at, low)
            prev = np.uint8(0)
        if prev == 32 and at > begin:  # a trailing space
            at -= 1
        out_offs[i + 1] = at
    return at


@njit(cache=True, nogil=True)
def utf8_code_points(data, offs, cp, lens):  # pragma: no cover - compiled; covered through shingles
    """Decode valid UTF-8 texts (bytes, offsets from 0) into `cp` (uint32), each text's
    count in `lens`; returns the code points written."""
    n = 0
    for i in range(len(offs) - 1):
        first = n
        p = offs[i]
        while p < offs[i + 1]:
            cp[n], w = _code_point(data, p)
            p += w
            n += 1
        lens[i] = n - first
    return n


@njit(cache=True, nogil=True)
def word_hashes(cp, counts, words, per):  # pragma: no cover - compiled; covered through shingles
    """`shingles._words`: for each normalised text (code points `cp`, `counts` per text;
    words separated by single spaces) each word's hash, fmix64 of the sum of (code point +
    1) * P ** (place + 1), wrapping, into `words`, and each text's word count into `per`.
    Returns the words written."""
    got = 0
    at = 0
    for i in range(len(counts)):
        first = got
        h = np.uint64(0)
        pw = _P
        open_word = False
        for p in range(at, at + counts[i]):
            c = np.uint64(cp[p])
            if c == 32:
                if open_word:
                    words[got] = _fmix64(h)
                    got += 1
                h, pw, open_word = np.uint64(0), _P, False
            else:
                h += (c + _ONE) * pw
                pw *= _P
                open_word = True
        if open_word:
            words[got] = _fmix64(h)
            got += 1
        per[i] = got - first
        at += counts[i]
    return got


@njit(cache=True, nogil=True)
def band_key_rows(sig, first, rows, mult):  # pragma: no cover - compiled; covered through minhash
    """`minhash.band_keys` before its finaliser: for each signature row, the sum of its
    columns first .. first + rows - 1 (as uint64) times `mult` (uint64, wrapping)."""
    n = sig.shape[0]
    out = np.empty(n, np.uint64)
    for r in range(n):
        acc = np.uint64(0)
        for j in range(rows):
            acc += np.uint64(sig[r, first + j]) * mult[j]
        out[r] = _fmix64(acc)
    return out


@njit(cache=True, nogil=True)
def _slot(key, mask):
    return (np.uint64(key) * _GOLD) >> _S33 & mask


@njit(cache=True, nogil=True, inline="always")
def _agree(x, y, need, K):
    """Whether at least `need` of the K columns are equal, looking at 32 at a time and
    stopping once the answer is known."""
    same = 0
    for lo in range(0, K, 32):
        hi = min(lo + 32, K)
        for j in range(lo, hi):
            same += x[j] == y[j]
        if same >= need:
            return True
        if same + (K - hi) < need:
            return False
    return same >= need


@njit(cache=True, nogil=True, inline="always")
def _root(parent, x):
    """x's root in a union-find forest, halving the path on the way."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True, nogil=True)
def forest_roots(parent):  # pragma: no cover - compiled; covered through minhash
    """Every row's root in a union-find forest whose roots are their components' smallest
    rows (`verified_buckets` with a `parent` array)."""
    out = np.empty(len(parent), np.int64)
    for x in range(len(parent)):
        out[x] = _root(parent, x)
    return out


@njit(cache=True, nogil=True)
def band_bucket_runs(keys, tagged):  # pragma: no cover - compiled; covered through minhash
    """Buckets of entries with keys in ascending order, each entry's band and row as band <<
    40 | row (any order among equal keys; one band: the rows themselves): a bucket is a run
    of equal key and equal band, its rows ascending; runs of one entry are left out. As
    (members, starts): bucket b is members[starts[b]:starts[b + 1]]."""
    n = len(keys)
    members = np.empty(n, np.int64)
    starts = np.empty(n + 1, np.int64)
    low = (np.int64(1) << 40) - 1
    m = 0
    b = 0
    i = 0
    while i < n:
        j = i + 1
        while j < n and keys[j] == keys[i]:
            j += 1
        if j - i > 1:
            run = np.sort(tagged[i:j])
            s = 0
            while s < j - i:
                e = s + 1
                while e < j - i and (run[e] >> 40) == (run[s] >> 40):
                    e += 1
                if e - s > 1:
                    starts[b] = m
                    b += 1
                    for t in range(s, e):
                        members[m] = run[t] & low
                        m += 1
                s = e
        i = j
    starts[b] = m
    return members[:m], starts[:b + 1]


@njit(cache=True, nogil=True)
def verified_buckets(sig, members, starts, need, n, owner, owners, parent, seen_keys, seen_ok, used):  # pragma: no cover
    """Verified pairs of buckets given as runs of `members`
    (bucket b is members[starts[b]:starts[b + 1]], rows in ascending order): each bucket's
    members are compared with its first member, those that fail form the bucket again,
    until one is left; only the buckets whose first row is `owner` modulo `owners`. A pair's verdict (at least `need` equal columns: `needed_columns`;
    the comparison stops once the count is reached or out of reach) is looked up in, or
    added to, the open-addressing table (`seen_keys`: key a * n + b or -1 for an
    empty slot; `seen_ok`; `used` slots filled), which grows at half full and is returned:
    (pairs a, pairs b, seen_keys, seen_ok, used). With a `parent` array (a union-find
    forest over the n rows; empty: collect pairs) verified pairs are joined there instead
    and no pairs are returned."""
    K = sig.shape[1]
    cap = 1024
    out_a = np.empty(cap, np.int64)
    out_b = np.empty(cap, np.int64)
    got = 0
    work = np.empty(0, np.int64)
    for bkt in range(len(starts) - 1):
        if members[starts[bkt]] % owners != owner:
            continue
        size = starts[bkt + 1] - starts[bkt]
        if len(work) < size:
            work = np.empty(2 * size, np.int64)
        for i in range(size):
            work[i] = members[starts[bkt] + i]
        while size > 1:
            rep = work[0]
            kept = 0
            for i in range(1, size):
                m = work[i]
                if 2 * (used + 1) > len(seen_keys):  # grow at half full
                    old_k, old_ok = seen_keys, seen_ok
                    seen_keys = np.full(2 * len(old_k), -1, np.int64)
                    seen_ok = np.zeros(2 * len(old_k), np.bool_)
                    mask2 = np.uint64(len(seen_keys) - 1)
                    for s in range(len(old_k)):
                        if old_k[s] >= 0:
                            t = _slot(old_k[s], mask2)
                            while seen_keys[t] >= 0:
                                t = (t + _ONE) & mask2
                            seen_keys[t] = old_k[s]
                            seen_ok[t] = old_ok[s]
                mask = np.uint64(len(seen_keys) - 1)
                key = rep * n + m
                t = _slot(key, mask)
                while seen_keys[t] >= 0 and seen_keys[t] != key:
                    t = (t + _ONE) & mask
                if seen_keys[t] == key:
                    ok = seen_ok[t]
                else:
                    ok = _agree(sig[rep], sig[m], need, K)
                    seen_keys[t] = key
                    seen_ok[t] = ok
                    used += 1
                if ok and len(parent):  # joined at once: the smaller root becomes the root
                    ra, rb = _root(parent, rep), _root(parent, m)
                    if ra < rb:
                        parent[rb] = ra
                    elif rb < ra:
                        parent[ra] = rb
                elif ok:
                    if got == cap:
                        cap *= 2
                        na = np.empty(cap, np.int64)
                        nb = np.empty(cap, np.int64)
                        na[:got] = out_a[:got]
                        nb[:got] = out_b[:got]
                        out_a, out_b = na, nb
                    out_a[got] = rep
                    out_b[got] = m
                    got += 1
                else:
                    work[kept] = m  # compacted in place: i > kept always
                    kept += 1
            size = kept
    return out_a[:got], out_b[:got], seen_keys, seen_ok, used


_C1, _C2 = np.uint64(0x87C37B91114253D5), np.uint64(0x4CF5AD432745937F)
_H1ADD, _H2ADD = np.uint64(0x52DCE729), np.uint64(0x38495AB5)
_FIVE = np.uint64(5)


@njit(cache=True, nogil=True, inline="always")
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@njit(cache=True, nogil=True, inline="always")
def _word(data, p, n):
    """The little-endian 64-bit word of data[p:p + n] (n <= 8; missing bytes are zero)."""
    w = np.uint64(0)
    for k in range(n):
        w |= np.uint64(data[p + k]) << np.uint64(8 * k)
    return w


@njit(cache=True, nogil=True)
def murmur3_rows(data, offs, seed, hi, lo):  # pragma: no cover - compiled; covered through test_shingles
    """MurmurHash3_x64_128 (Austin Appleby's, seed `seed`) of each text data[offs[i]:offs[i+1]]:
    its first 64-bit half (h1) into `lo[i]`, its second (h2) into `hi[i]`, as the reference's
    128-bit value is h2 << 64 | h1. Exact dedupe's key: MD5 through DuckDB took 2 s of CPU a
    1M texts, this ~0.2 s."""
    s = np.uint64(seed)
    for i in range(len(offs) - 1):
        p, end = offs[i], offs[i + 1]
        n = end - p
        h1, h2 = s, s
        for b in range(n // 16):
            k1 = _word(data, p + 16 * b, 8)
            k2 = _word(data, p + 16 * b + 8, 8)
            h1 ^= _rotl(k1 * _C1, 31) * _C2
            h1 = (_rotl(h1, 27) + h2) * _FIVE + _H1ADD
            h2 ^= _rotl(k2 * _C2, 33) * _C1
            h2 = (_rotl(h2, 31) + h1) * _FIVE + _H2ADD
        t = p + n // 16 * 16
        rest = n & 15
        if rest > 8:
            h2 ^= _rotl(_word(data, t + 8, rest - 8) * _C2, 33) * _C1
        if rest > 0:
            h1 ^= _rotl(_word(data, t, min(rest, 8)) * _C1, 31) * _C2
        h1 ^= np.uint64(n)
        h2 ^= np.uint64(n)
        h1 += h2
        h2 += h1
        h1 = _fmix64(h1)
        h2 = _fmix64(h2)
        h1 += h2
        h2 += h1
        lo[i] = h1
        hi[i] = h2


_Q = np.uint64(0x9E3779B97F4A7C15)  # a window's hash: its units' hashes combined in order


@njit(cache=True, nogil=True)
def repetition_rows(data, offs, sizes, by_words, space, out):  # pragma: no cover - compiled; covered through text_stats
    """For each UTF-8 text (bytes, offsets from 0), the share of its windows of `sizes[i]`
    units that repeat an earlier window: 1 - distinct windows / windows; 0 when it has no
    whole window, NaN where the size is below 1. Units are code points, or with `by_words`
    runs of characters that `space` (Python's `\\s`) does not mark; units and windows are
    compared by 64-bit hashes (two different windows sharing one: about 1e-19 a pair)."""
    units = np.empty(max(1, int((offs[1:] - offs[:-1]).max()) if len(offs) > 1 else 1), np.uint64)
    for i in range(len(offs) - 1):
        n = sizes[i]
        if n < 1:
            out[i] = np.nan
            continue
        m = 0
        h, pw, open_word = np.uint64(0), _P, False
        p, end = offs[i], offs[i + 1]
        while p < end:
            if data[p] < 0x80:
                cp, w = np.uint32(data[p]), 1
            else:
                cp, w = _code_point(data, p)
            p += w
            if not by_words:
                units[m] = np.uint64(cp) + _ONE
                m += 1
            elif space[cp]:
                if open_word:
                    units[m] = _fmix64(h)
                    m += 1
                h, pw, open_word = np.uint64(0), _P, False
            else:
                h += (np.uint64(cp) + _ONE) * pw
                pw *= _P
                open_word = True
        if open_word:
            units[m] = _fmix64(h)
            m += 1
        if m < n:
            out[i] = 0.0
            continue
        count = m - n + 1
        wins = np.empty(count, np.uint64)
        for s in range(count):
            hh = np.uint64(0)
            for j in range(n):
                hh = hh * _Q + units[s + j]
            wins[s] = _fmix64(hh)
        wins.sort()
        distinct = 1
        for k in range(1, count):
            distinct += wins[k] != wins[k - 1]
        out[i] = 1.0 - distinct / count

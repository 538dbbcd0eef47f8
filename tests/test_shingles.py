"""The compiled shingling (normalisation, UTF-8 decoding, word hashing, signing, banding)
agrees with the plain Python and numpy definitions, on generated Unicode text."""
import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from recipe.algorithms.shingles import normalise, normalised_code_points, shingle_hashes, units

PIECES = st.sampled_from(["a", "B", " ", "  ", "\t\n", "\u00a0", "\u2003", "\u0130", "i\u0307", "\u03a3", "\u03c2",
                          "\u00c9", "\u4e2d", "\U0001f600", "xyz", "\u0085", "",
                          # three-byte whitespace of each lead byte, and neighbours that are not
                          "\u1680", "\u3000", "\u205f", "\u3001", "\u2010", "\u00a1", "\x1f"])
TEXT = st.lists(PIECES, max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.one_of(TEXT, st.none()), max_size=12))
def test_arrow_normalisation_and_units_match_python(texts):
    norm = [normalise(t) for t in texts]
    cps, lens = normalised_code_points(texts)
    ends = np.cumsum(lens)
    assert ["".join(map(chr, cps[e - k:e].tolist())) for e, k in zip(ends, lens)] == norm
    cps, lens = units(texts, "char")
    assert lens.tolist() == [len(t) for t in norm]
    assert cps.tolist() == [ord(c) for t in norm for c in t]
    words, wlens = units(texts, "word")
    split = [t.split(" ") if t else [] for t in norm]
    assert wlens.tolist() == [len(w) for w in split]
    flat = [w for ws in split for w in ws]
    # one hash per distinct word, equal words hash equally
    by_word = {}
    for w, h in zip(flat, words.tolist()):
        assert by_word.setdefault(w, h) == h
    assert len(set(by_word.values())) == len(by_word)
    from minhash_reference import numpy_words
    want, want_lens = numpy_words(*normalised_code_points(texts))
    assert np.array_equal(words, want) and np.array_equal(wlens, want_lens)


def test_sliced_arrow_input_and_shingle_counts():
    arr = pa.array(["skip me", "Hello   World", None, "abc", "hello world"])[1:]
    h, owner = shingle_hashes(arr, ngram=5, unit="char")
    assert np.bincount(owner, minlength=4).tolist() == [7, 0, 1, 7]  # "hello world": 11 chars
    by = [sorted(h[owner == i].tolist()) for i in range(4)]
    assert by[0] == by[3]  # the same text after normalisation
    assert sorted(shingle_hashes(["hello world"], 5, "char", seed=1)[0].tolist()) != by[3]


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.one_of(TEXT, st.none()), max_size=12), piece=st.integers(1, 40))
def test_signatures_do_not_depend_on_where_pieces_are_cut(texts, piece):
    """Chunks are signed in pieces of PIECE_BYTES of text (for the CPU cache) and densified
    once: any cut gives every text the signature it has alone."""
    from recipe.algorithms import minhash
    whole = minhash.block_signatures(texts, 3, "char", 64)
    saved = minhash.PIECE_BYTES
    try:
        minhash.PIECE_BYTES = piece
        cut = minhash.block_signatures(texts, 3, "char", 64)
    finally:
        minhash.PIECE_BYTES = saved
    assert np.array_equal(whole, cut)
    for i, t in enumerate(texts):
        assert np.array_equal(cut[i], minhash.block_signatures([t], 3, "char", 64)[0])


def test_pieces_cover_the_array_in_order():
    from recipe.algorithms.shingles import pieces, text_array
    arr = text_array(["aaaa", "b", "cccccccccc", "", "dd", "e"])[1:]
    got = [p.to_pylist() for p in pieces(arr, 3)]
    assert got == [["b"], ["cccccccccc"], ["", "dd", "e"]]
    assert [p.to_pylist() for p in pieces(arr, 100)] == [arr.to_pylist()]


def normalised_texts(texts) -> pa.Array:
    """The normalised texts themselves (what exact dedupe hashes), from the compiled pass
    in 128 KB pieces as `normalised_keys` runs it."""
    from recipe.algorithms.shingles import normalised_utf8, pieces, text_array
    parts = []
    for p in pieces(text_array(texts), 1 << 17):
        data, offs = normalised_utf8(p)
        parts.append(pa.LargeStringArray.from_buffers(len(offs) - 1, pa.py_buffer(offs), pa.py_buffer(data)))
    return pa.concat_arrays(parts) if len(parts) != 1 else parts[0]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.one_of(TEXT, st.none()), max_size=12))
def test_normalised_texts_match_python(texts):
    got = normalised_texts(texts)
    assert got.type == pa.large_string() and got.null_count == 0
    assert got.to_pylist() == [normalise(t) for t in texts]
    got.validate(full=True)


def test_fast_paths_agree_with_the_tables_and_with_slices():
    """The compiled normalisation's tables are Python's own: every character below U+3001
    and every 7th above, alone and between letters, normalises as `normalise` does
    (Arrow's utf8_lower, used before, lower-cased U+1C89 where Python 3.11 does not); ASCII
    whitespace is bytes 9-13 and 28-32; a slice that starts inside shared buffers normalises
    as the texts it holds."""
    from recipe.algorithms.kernels import _ASCII
    from recipe.algorithms.shingles import case_tables, text_array
    _, space = case_tables()
    assert [c for c in range(128) if _ASCII[c] == 32] == [*range(9, 14), *range(28, 33)]
    assert np.flatnonzero(space).tolist() == [c for c in range(0x110000) if chr(c).isspace()]
    codes = [*range(1, 0x3001), *range(0x3001, 0x110000, 7)]
    every = [chr(c) for c in codes if not 0xD800 <= c < 0xE000]
    for texts in (every, [f"A{c}{c}b {c}" for c in every], ["\u1c89X\u0130\u03a3\u03c2 \U00010400"]):
        assert normalised_texts(texts).to_pylist() == [normalise(t) for t in texts]
    for texts in (["Skip ME", "Hello\t\tWORLD ", "  abc", "x" * 50, "A\x1cB\x0b"],
                  ["Skip ME", "\u00c9T\u00c9\u3000\u3000X", "\u03a3\u039f\u03a3 ", "A\u00a0\u00a0b", "Z"]):
        arr = text_array(texts)
        for lo in range(len(texts)):
            # a slice, and a slice cast to large_string (its offsets do not start at 0: Arrow
            # 26's ascii_lower returns garbage for that)
            for part in (arr.slice(lo, 3), text_array(pa.array(texts).slice(lo, 3))):
                got = normalised_texts(part)
                assert got.to_pylist() == [normalise(t) for t in texts[lo:lo + 3]]
                got.validate(full=True)


def _numpy_signatures(texts, ngram, unit, K, seed, tries=200):
    """The signatures as the numpy code defined them before the compiled kernels: every
    shingle of `shingle_hashes` offers its top 31 bits to bin hash % K (`np.minimum.at`),
    then each empty bin takes the first filled bin of its borrow sequence (else the row's
    first filled bin)."""
    from recipe.algorithms.minhash import EMPTY, _borrow_table
    h, owner = shingle_hashes(texts, ngram, unit, seed)
    sig = np.full(len(texts) * K, EMPTY, np.uint32)
    np.minimum.at(sig, owner * K + (h % np.uint64(K)).astype(np.int64), (h >> np.uint64(33)).astype(np.uint32))
    sig = sig.reshape(len(texts), K)
    table = _borrow_table(K, tries)
    for row in sig:
        full = row != EMPTY
        if full.any():
            src = row.copy()
            for j in np.flatnonzero(~full):
                hit = [c for c in table[:, j] if full[c]]
                row[j] = src[hit[0]] if hit else src[np.argmax(full)]
    return sig


@settings(max_examples=80, deadline=None)
@given(texts=st.lists(st.one_of(TEXT, st.none()), min_size=1, max_size=10), ngram=st.integers(1, 6),
       unit=st.sampled_from(["char", "word"]), K=st.sampled_from([16, 64, 100]), seed=st.integers(0, 3))
def test_compiled_signing_matches_the_numpy_definition(texts, ngram, unit, K, seed):
    from recipe.algorithms.minhash import block_signatures
    got = block_signatures(texts, ngram, unit, K, seed)
    assert np.array_equal(got, _numpy_signatures(texts, ngram, unit, K, seed))


def test_densifying_falls_back_to_the_first_filled_bin():
    """With one filled bin in 64, most empty bins find it in their sequence; with no tries
    left every empty bin takes the row's first filled bin; an empty row stays empty."""
    from recipe.algorithms.kernels import densify_rows
    from recipe.algorithms.minhash import EMPTY, _borrow_table
    rows = np.full((3, 64), EMPTY, np.uint32)
    rows[0, 5], rows[1, [7, 9]] = 11, (3, 4)
    none_left = rows.copy()
    densify_rows(none_left, _borrow_table(64, 0))  # no attempts: the fallback at once
    assert (none_left[0] == 11).all()
    assert none_left[1, 9] == 4 and (np.delete(none_left[1], 9) == 3).all()  # bin 7 is the first filled
    assert (none_left[2] == EMPTY).all()
    full = rows.copy()
    densify_rows(full, _borrow_table(64, 200))
    assert (full[0] == 11).all() and set(full[1].tolist()) == {3, 4} and (full[2] == EMPTY).all()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 120), width=st.sampled_from([8, 40, 64]),
       threshold=st.sampled_from([0.3, 0.5, 0.55, 0.8, 1.0]))
def test_compiled_banding_matches_the_numpy_definition(seed, n, width, threshold):
    """`candidate_pairs` (compiled buckets and verification, verdicts shared by bands, early
    stop, buckets dealt to owners) finds the pairs of the numpy definition
    (tests/minhash_reference.py), however many owners; a small value range makes buckets
    and near misses common."""
    from minhash_reference import band_pair_set
    from recipe.algorithms.minhash import EMPTY, candidate_pairs
    from recipe.table import thread_map
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 3, size=(n, width), dtype=np.uint32)
    sig[rng.random(n) < 0.1] = EMPTY
    want = band_pair_set(sig, threshold, width // 4, 4)
    for pmap, groups in ((None, None), (thread_map, 3)):
        a, b = candidate_pairs(sig, threshold, width // 4, 4, pmap, groups)
        got = list(zip(a.tolist(), b.tolist()))
        assert set(got) == want
        assert all(x < y for x, y in got)


def test_buckets_of_several_bands_split_by_band_with_rows_in_order():
    """Ray's reducers sort (band, key, row) entries by key alone and split each run of one
    key by band (`band_bucket_runs`): the buckets of a sort by band, key, row."""
    from recipe.algorithms.kernels import band_bucket_runs
    key = np.array([5, 7, 5, 5, 9, 7, 5], np.uint64)
    band = np.array([0, 0, 1, 0, 2, 0, 1], np.int64)
    row = np.array([3, 6, 1, 2, 8, 0, 4], np.int64)
    order = np.argsort(key, kind="stable")
    members, starts = band_bucket_runs(key[order], (band[order] << 40) | row[order])
    got = [members[starts[i]:starts[i + 1]].tolist() for i in range(len(starts) - 1)]
    assert got == [[2, 3], [1, 4], [0, 6]]  # key 5 band 0, key 5 band 1, key 7 band 0; key 9 alone


M64 = (1 << 64) - 1


def _murmur3_x64_128(data: bytes, seed: int = 0) -> int:
    """MurmurHash3_x64_128 as Appleby's C reference computes it, in plain Python."""
    def rotl(x, r):
        return ((x << r) | (x >> (64 - r))) & M64

    def fmix(k):
        k ^= k >> 33
        k = (k * 0xFF51AFD7ED558CCD) & M64
        k ^= k >> 33
        k = (k * 0xC4CEB9FE1A85EC53) & M64
        return k ^ (k >> 33)

    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = seed
    n = len(data)
    for b in range(n // 16):
        k1 = int.from_bytes(data[16 * b:16 * b + 8], "little")
        k2 = int.from_bytes(data[16 * b + 8:16 * b + 16], "little")
        h1 ^= (rotl((k1 * c1) & M64, 31) * c2) & M64
        h1 = ((rotl(h1, 27) + h2) * 5 + 0x52DCE729) & M64
        h2 ^= (rotl((k2 * c2) & M64, 33) * c1) & M64
        h2 = ((rotl(h2, 31) + h1) * 5 + 0x38495AB5) & M64
    tail = data[n // 16 * 16:]
    if len(tail) > 8:
        h2 ^= (rotl((int.from_bytes(tail[8:], "little") * c2) & M64, 33) * c1) & M64
    if tail:
        h1 ^= (rotl((int.from_bytes(tail[:8], "little") * c1) & M64, 31) * c2) & M64
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & M64
    h2 = (h2 + h1) & M64
    h1, h2 = fmix(h1), fmix(h2)
    h1 = (h1 + h2) & M64
    h2 = (h2 + h1) & M64
    return h2 << 64 | h1


def _compiled_murmur(items: list[bytes], seed: int) -> list[int]:
    from recipe.algorithms.kernels import murmur3_rows
    data = np.frombuffer(b"".join(items) or b"\0", np.uint8)
    offs = np.concatenate([[0], np.cumsum([len(x) for x in items], dtype=np.int64)]).astype(np.int64)
    hi, lo = np.empty(len(items), np.uint64), np.empty(len(items), np.uint64)
    murmur3_rows(data, offs, seed, hi, lo)
    return [int(h) << 64 | int(low) for h, low in zip(hi, lo)]


def test_exact_dedupe_hash_is_murmur3_x64_128():
    # the values of the mmh3 package (hash128, x64, unsigned) for these inputs
    known = {b"": 0, b"hello": 0x5B1E906A48AE1D19CBD8A7B341BD9B02,
             b"The quick brown fox jumps over the lazy dog": 0x7A433CA9C49A9347E34BBC7BBC071B6C,
             "héllo wörld, ünïcode".encode(): 0x91E3FE96E3770AFBF42AABA8D55E3F08}
    assert _compiled_murmur(list(known), 0) == list(known.values())
    assert [_murmur3_x64_128(k) for k in known] == list(known.values())


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.binary(max_size=70), min_size=1, max_size=12), seed=st.sampled_from([0, 1, 2 ** 31 - 1]))
def test_compiled_murmur3_matches_the_reference(items, seed):
    assert _compiled_murmur(items, seed) == [_murmur3_x64_128(x, seed) for x in items]


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.text(alphabet="aAbİ \t\u3000ßΣς.", max_size=40), min_size=1, max_size=30))
def test_exact_keys_are_the_hash_of_the_normalised_text(texts):
    from recipe.algorithms.shingles import normalised_keys
    hi, lo = normalised_keys(pa.array(texts, pa.large_string()))
    assert [int(h) << 64 | int(x) for h, x in zip(hi, lo)] == [_murmur3_x64_128(normalise(t).encode()) for t in texts]

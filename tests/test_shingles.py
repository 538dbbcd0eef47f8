"""The vectorised shingling (Arrow normalisation, UTF-8 decoding and word hashing in numpy)
agrees with the plain Python definitions it replaces, on generated Unicode text."""
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


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.one_of(TEXT, st.none()), max_size=12))
def test_normalised_texts_match_python(texts):
    from recipe.algorithms.shingles import normalised_texts
    got = normalised_texts(texts)
    assert got.type == pa.large_string() and got.null_count == 0
    assert got.to_pylist() == [normalise(t) for t in texts]
    got.validate(full=True)


def test_fast_paths_agree_with_the_tables_and_with_slices():
    """ASCII whitespace by arithmetic, non-ASCII whitespace looked for after four lead bytes
    only, and ASCII-only pieces lower-cased in numpy: each equal to what it replaces, also on a
    slice that starts inside shared buffers."""
    from recipe.algorithms.shingles import _ASCII_WS, _WS2, _WS3, ascii_whitespace, normalised_texts, text_array
    assert np.array_equal(ascii_whitespace(np.arange(256, dtype=np.uint8)), _ASCII_WS)
    assert {int(x) >> 8 for x in _WS2} | {int(x) >> 16 for x in _WS3} <= {0xC2, 0xE1, 0xE2, 0xE3}
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

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

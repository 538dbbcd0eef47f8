"""`io.newlines.line_ends` finds exactly what numpy's compare finds, in every layout."""
import numpy as np
from hypothesis import given, settings, strategies as st

from recipe.io.newlines import line_ends


def _numpy(buf) -> np.ndarray:
    return np.flatnonzero(np.frombuffer(buf, np.uint8) == 10) + 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.floats(0, 1))
def test_line_ends_match_numpy(raw, density):
    # bytes turned into newlines at the drawn density: dense buffers take the second pass
    a = np.frombuffer(raw, np.uint8).copy()
    rng = np.random.default_rng(len(raw))
    a[rng.random(len(a)) < density] = 10
    buf = a.tobytes()
    assert line_ends(buf).tolist() == _numpy(buf).tolist()
    assert line_ends(bytearray(buf)).tolist() == _numpy(buf).tolist()


def test_line_ends_edges():
    for buf in [b"", b"\n", b"abc", b"abcdefgh\n", b"\n" * 100, b"x" * 7 + b"\n" + b"y" * 9 + b"\n" + b"z"]:
        assert line_ends(buf).tolist() == _numpy(buf).tolist()

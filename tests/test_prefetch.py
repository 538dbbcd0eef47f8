"""recipe/io/prefetch.py: items in order, made one ahead on a worker thread; errors reach the
caller at the item that failed; a caller that stops early stops the worker."""
import threading
import time

import pytest

from recipe.io.prefetch import prefetched


def test_items_come_in_order_and_are_made_ahead_on_another_thread():
    made = []

    def gen():
        for i in range(50):
            made.append((i, threading.current_thread().name))
            yield i
    got = []
    for v in prefetched(gen(), depth=1):
        time.sleep(0.005)  # the worker runs ahead while the caller works
        got.append((v, len(made)))
    assert [v for v, _ in got] == list(range(50))
    assert all(n >= v + 1 for v, n in got) and any(n >= v + 2 for v, n in got)  # made ahead of use
    assert {name for _, name in made} == {"recipe-prefetch"}


def test_an_error_is_raised_at_the_item_that_failed():
    def gen():
        yield 1
        yield 2
        raise ValueError("chunk 3 is broken")
    seen = []
    with pytest.raises(ValueError, match="chunk 3 is broken"):
        for v in prefetched(gen()):
            seen.append(v)
    assert seen == [1, 2]


def test_a_caller_that_stops_early_stops_the_worker():
    made = []

    def gen():
        for i in range(10_000):
            made.append(i)
            yield i
    it = prefetched(gen(), depth=2)
    assert next(it) == 0
    it.close()  # the worker stops after at most the items in flight
    n = len(made)
    time.sleep(0.2)
    assert len(made) == n <= 4
    assert not [t for t in threading.enumerate() if t.name == "recipe-prefetch"]

"""An iterator's next items made on a worker thread while the caller uses the current one.

A fast-path read alternates two kinds of work that release the GIL: Arrow parsing and
canonicalising the next chunk, and DuckDB inserting the current one. Run one after the other
they leave a core idle; here the parse runs `depth` chunks ahead (memory: `depth` chunks more)."""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """`items`, in order, each made while the caller handles the one before. An error raised
    while making an item is raised to the caller at that item; a caller that stops early stops
    the worker (it finishes the item it is making)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(v) -> bool:
        while not stop.is_set():
            try:
                q.put(v, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for v in items:
                if not put((v, None)):
                    return
        except BaseException as e:  # handed to the caller, raised there
            put((_END, e))
            return
        put((_END, None))

    t = threading.Thread(target=work, name="recipe-prefetch", daemon=True)
    t.start()
    try:
        while True:
            v, err = q.get()
            if v is _END:
                if err is not None:
                    raise err
                return
            yield v
    finally:
        stop.set()
        t.join()

"""Allocator settings that decide whole seconds here, set once when `recipe` is imported.

Numpy asks the kernel for transparent huge pages on every large array (madvise). Where the
kernel then compacts memory at once to find them (THP defrag `always`, `madvise` or
`defer+madvise`, with the page cache full of input files), each new array stalls: on this
2-core machine a 5 MB cumsum took 59 ms instead of 4, and MinHash's banding 6.9 s instead of
4.5. Where defrag is deferred or off, huge pages cost nothing up front and are kept; a
NUMPY_MADVISE_HUGEPAGE set by the user wins.

Arrow's default memory pool in the pyarrow wheels (mimalloc) made the same 1.1 GB JSON read
take 1.1 s, 3.3 s or 13.5 s from one process to the next on this VM; jemalloc's pool took
1.7-2.0 s every time, so it is used where the wheel has it (ARROW_DEFAULT_MEMORY_POOL set by
the user wins)."""
from __future__ import annotations

import os

DEFRAG = "/sys/kernel/mm/transparent_hugepage/defrag"


def stalls(mode_line: str) -> bool:
    """Whether a THP defrag setting (the file's line, the chosen mode in brackets) makes a
    huge-page fault compact memory synchronously for madvised regions."""
    chosen = mode_line[mode_line.find("[") + 1:mode_line.find("]")] if "[" in mode_line else mode_line.strip()
    return chosen in ("always", "madvise", "defer+madvise")


def configure() -> None:
    """Both settings (`numpy_hugepages`, `arrow_pool`)."""
    numpy_hugepages()
    arrow_pool()


def arrow_pool() -> None:
    """jemalloc's pool for Arrow, where the wheel has it."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    import pyarrow as pa
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, AttributeError):  # built without jemalloc
        pass


def numpy_hugepages() -> None:
    """Turn numpy's huge-page advice off where it stalls."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    try:
        with open(DEFRAG) as fh:
            line = fh.read()
    except OSError:  # not Linux, or no THP
        return
    if stalls(line):
        try:
            from numpy._core.multiarray import _set_madvise_hugepage
        except ImportError:  # numpy 1.x
            from numpy.core.multiarray import _set_madvise_hugepage
        _set_madvise_hugepage(False)

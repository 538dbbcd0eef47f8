"""A fast path for JSON arrays of Alpaca, ShareGPT or OpenAI rows (most published SFT sets ship
as one array): a compiled scan finds each element's bytes and writes them one per line
(newlines between tokens become spaces), and the JSON-lines fast path's canonicalisers
(`arrow_alpaca`, `arrow_chat`) read them a chunk at a time. A chunk Arrow cannot take exactly is
decoded element by element as `json_array.elements` decodes; where that reader would report a
damaged element, or the scan meets anything but an object (a raw control character in a
string, a scalar, a stray byte between elements), the rest of the file is handed to that
reader from there, so rows, reasons, line numbers and indices are the record reader's.
200k pretty-printed Alpaca rows (232 MB): 6.1 s record by record.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
from numba import njit

from . import arrow_alpaca
from .arrow_alpaca import Lines
from .readers import Item, UserError, array_items, open_bytes

BLOCK = 1 << 24  # bytes read at a time
ROOM = 1 << 16  # elements one scan call writes out at most
# how a scan call stopped
_BETWEEN, _INSIDE, _CLOSED, _ODD, _FULL = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _scan(a, i, line, out, ostarts, oends, starts, lines):  # pragma: no cover - compiled; covered through array_chunks
    """Objects of a JSON array from a[i] on (i is between elements): each copied to `out`
    (newlines and carriage returns outside strings as spaces) and ended by a newline; per
    element its start in `a`, line number, and start and end in `out`. Returns (elements,
    position, line, status): _BETWEEN (a ran out between elements), _INSIDE (a ran out in
    the element that starts at position, on line), _CLOSED (the array's `]` at position),
    _ODD (position starts what the record reader must decode), _FULL (no room for more)."""
    n = len(a)
    k = 0
    o = 0
    while True:
        while i < n:  # between elements: whitespace and commas, as json_array skips them
            c = a[i]
            if c == 10:
                line += 1
            elif not (c == 32 or c == 9 or c == 13 or c == 44):
                break
            i += 1
        if i >= n:
            return k, i, line, _BETWEEN
        if a[i] == 93:
            return k, i, line, _CLOSED
        if a[i] != 123:
            return k, i, line, _ODD
        if k == len(starts):
            return k, i, line, _FULL
        s, sline, so = i, line, o
        depth = 0
        ins = False
        esc = False
        done = False
        while i < n:
            c = a[i]
            if ins:
                if esc:
                    esc = False
                elif c == 92:
                    esc = True
                elif c == 34:
                    ins = False
                elif c < 32:  # not valid JSON: the record reader says so
                    return k, s, sline, _ODD
                out[o] = c
            elif c == 34:
                ins = True
                out[o] = c
            elif c == 123 or c == 91:
                depth += 1
                out[o] = c
            elif c == 125 or c == 93:
                depth -= 1
                out[o] = c
                if depth == 0:
                    done = True
            elif c == 10:
                line += 1
                out[o] = 32
            elif c == 13:
                out[o] = 32
            else:
                out[o] = c
            o += 1
            i += 1
            if done:
                break
        if not done:
            return k, s, sline, _INSIDE
        out[o] = 10
        o += 1
        starts[k], lines[k], ostarts[k], oends[k] = s, sline, so, o
        k += 1


def _start(fh) -> tuple[bytes, int, int] | None:
    """Past a byte-order mark, whitespace and the array's `[`: (the bytes read after it, its
    offset, its line); None when the file does not start with an array."""
    head = fh.read(1 << 16)  # `open_bytes` has passed a byte-order mark
    at = 0
    while True:
        while at < len(head) and head[at] in b" \t\r\n":
            at += 1
        if at < len(head):
            break
        more = fh.read(1 << 16)
        if not more:
            return None
        head += more
    if head[at] != ord("["):
        return None
    return head[at + 1:], at + 1, head.count(b"\n", 0, at) + 1


def is_array(path: Path) -> bool:
    with open_bytes(path) as fh:
        return _start(fh) is not None


def count_elements(path: Path) -> int | None:
    """The number of elements of the JSON array `path` (None: not an array), by a compiled
    scan a block at a time: what `recipe plan` estimates a source's rows from before its
    first read. A damaged element may count as more or fewer than one."""
    with open_bytes(path) as fh:
        got = _start(fh)
        if got is None:
            return None
        state = np.array([1, 0, 0, 0, 1], dtype=np.int64)  # inside the array, expecting an element
        data = got[0]
        while data:
            _count(np.frombuffer(data, np.uint8), state)
            if state[0] <= 0:  # the array's `]`: what follows is not counted
                break
            data = fh.read(BLOCK)
        return int(state[3])


@njit(cache=True, nogil=True)
def _count(a, state):  # pragma: no cover - compiled; covered through count_elements
    """Count the array's elements in `a`, carrying `state` across blocks: [depth, in a
    string, after a backslash in one, elements, expecting an element]. An element starts at
    the first byte at depth 1 that is not whitespace or a comma after `[` or a comma."""
    depth, ins, esc, k, want = state[0], state[1], state[2], state[3], state[4]
    for c in a:
        if ins:
            if esc:
                esc = 0
            elif c == 92:
                esc = 1
            elif c == 34:
                ins = 0
            continue
        if depth == 1 and want and not (c == 32 or c == 9 or c == 10 or c == 13 or c == 44 or c == 93):
            k += 1
            want = 0
        if c == 34:
            ins = 1
        elif c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            depth -= 1
            if depth <= 0:
                break
        elif c == 44 and depth == 1:
            want = 1
    state[0], state[1], state[2], state[3], state[4] = depth, ins, esc, k, want


def array_chunks(path: Path, prefix: str, canon=None) -> Iterator[tuple[str, object]]:
    """("arrow", canonical table) or ("items", `Item`s for the record reader's rules) for the
    elements of the JSON array `path`, in order, chunk by chunk; `canon(lines, prefix, start)`
    makes a table from `Lines` (default: Alpaca rows)."""
    canon = canon or arrow_alpaca._canonical
    idx = 0
    for got in _elements(path):
        if got[0] == "resume":  # the rest is the record reader's, from this element on
            yield from _resumed(path, *got[1:], idx)
            return
        out, ostarts, oends, starts, lines = got[1:]
        chunk = arrow_alpaca.CHUNK
        for i in range(0, len(oends), chunk):
            part = Lines(out, ostarts[i:i + chunk], oends[i:i + chunk])
            tbl = canon(part, prefix, idx)
            if tbl is not None:
                yield "arrow", tbl
                idx += len(part)
                continue
            items = []
            for j in range(i, i + len(part)):
                rec = _decoded(path, out, int(ostarts[j]), int(oends[j]), int(starts[j]))
                if rec is _DAMAGED:
                    yield "items", items
                    yield from _resumed(path, int(starts[j]), int(lines[j]), idx)
                    return
                items.append(Item(idx, f"{path.name}[{idx}]", record=rec))
                idx += 1
            yield "items", items


_DAMAGED = object()


def _decoded(path: Path, out, a: int, b: int, at: int):
    """One element's value as json_array decodes it, or _DAMAGED where it reports one."""
    from .json_array import decode_at
    from .values import Twice
    try:
        text = bytes(out[a:b - 1]).decode("utf-8")
    except UnicodeDecodeError as e:  # the record reader fails the file at its first such byte
        raise UserError(f"{path}: invalid UTF-8 at byte {at + e.start}") from None
    try:
        rec, end = decode_at(text)
    except (json.JSONDecodeError, Twice):  # the record reader sets it aside with the reason
        return _DAMAGED
    return rec if not text[end:].strip() else _DAMAGED


def _resumed(path: Path, offset: int, line: int, idx: int) -> Iterator[tuple[str, object]]:
    items = []
    for it in array_items(path, (offset, line, idx)):
        items.append(it)
        if len(items) == arrow_alpaca.CHUNK:
            yield "items", items
            items = []
    if items:
        yield "items", items


def _elements(path: Path) -> Iterator[tuple]:
    """("elements", out bytes, their starts and ends in it, starts in the file, lines) for
    blocks of the array's objects, then ("resume", offset, line) where the record reader must
    go on, if anywhere."""
    with open_bytes(path) as fh:
        first = _start(fh)
        if first is None:
            raise UserError(f"{path}: not a JSON array")
        carry, base, line = first  # base: the file offset of carry's first byte
        eof = False
        while True:
            data = fh.read(BLOCK) if not eof else b""
            eof = eof or not data
            buf = np.frombuffer(carry + data, np.uint8)
            if not len(buf):
                return
            i = 0
            while True:
                out = np.empty(len(buf) - i + ROOM, np.uint8)
                arrays = [np.empty(ROOM, np.int64) for _ in range(4)]
                k, at, line, status = _scan(buf, i, line, out, *arrays)
                ostarts, oends, starts, lines = arrays
                if k:  # as bytes: `Lines` slices and compares them as such
                    yield ("elements", out[:oends[k - 1]].tobytes(), ostarts[:k], oends[:k], starts[:k] + base,
                           lines[:k])
                if status != _FULL:
                    break
                i = at
            if status == _CLOSED:
                return
            if status == _ODD or (status == _INSIDE and eof):
                yield ("resume", base + at, line)
                return
            if eof:
                return
            carry = bytes(buf[at:]) if status == _INSIDE else b""
            base += at if status == _INSIDE else len(buf)

"""A JSON array's elements, decoded as the file streams past: memory holds a block of text
and one element, not the file (a whole-file `json.loads` of a 1 GB array of chats held
several times the file, and `check` parsed all of it to sniff the first rows).

Elements are decoded by the json module's own decoder (`raw_decode`), so what is accepted is
exactly what `json.loads` accepts. A damaged element is reported with its line and skipped: the
reader resumes at the next line that starts an object."""
from __future__ import annotations

import codecs
import json
import re
from typing import BinaryIO, Iterator

from .values import Twice, unique_keys

BLOCK = 4 << 20  # bytes read at a time
_SPACE = " \t\r\n,"
_NUMBER_TAIL = re.compile(r"[0-9.eE+\-]*")


class _NonStandard(ValueError):
    pass


def _no_nan(name):
    raise _NonStandard(f"non-standard JSON constant {name}")


_STRICT = json.JSONDecoder(parse_constant=_no_nan, object_pairs_hook=unique_keys)
# NaN and Infinity: the rows' own checks set such fields aside
_LOOSE = json.JSONDecoder(object_pairs_hook=unique_keys)
_PLAIN = json.JSONDecoder()  # where an element that names a field twice ends


def decode_at(text: str, pos: int = 0):
    """(value, end) of the JSON value at `pos`, NaN and Infinity taken, a field named twice
    with two values refused (`values.Twice`, with the end); nesting deeper than
    Python's recursion allows is a JSONDecodeError like any damage (its RecursionError stopped
    `check` and the run with a traceback)."""
    try:
        try:
            try:
                return _STRICT.raw_decode(text, pos)
            except _NonStandard:
                return _LOOSE.raw_decode(text, pos)
        except Twice as e:
            raise Twice(str(e), _PLAIN.raw_decode(text, pos)[1]) from None  # a cut-off element: JSONDecodeError
    except RecursionError:
        raise json.JSONDecodeError("nested deeper than the JSON reader follows", text, pos) from None


class BadUtf8(Exception):
    def __init__(self, offset: int):
        self.offset = offset


class _Text:
    """The file's text from a position on, read a block at a time, with line numbers."""

    def __init__(self, fh: BinaryIO, base: int = 0, line: int = 1):
        """`base`, `line`: where in the file `fh` is (a reader resumed midway)."""
        self.fh, self.dec = fh, codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.eof = "", 0, False
        self.read_bytes = base
        self.lines_before = line - 1  # newlines in text already dropped from buf

    def more(self) -> bool:
        """Append a block; False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(BLOCK)
        try:
            text = self.dec.decode(data, final=not data)
        except UnicodeDecodeError as e:
            raise BadUtf8(self.read_bytes - len(self.dec.getstate()[0]) + e.start) from None
        self.read_bytes += len(data)
        if self.pos > BLOCK:  # drop what was consumed, keeping its line count
            self.lines_before += self.buf.count("\n", 0, self.pos)
            self.buf, self.pos = self.buf[self.pos:], 0
        self.buf += text
        self.eof = not data
        return True

    def line(self, pos: int) -> int:
        return self.lines_before + self.buf.count("\n", 0, pos) + 1

    def skip_space(self) -> str | None:
        """The next character that is not whitespace or a comma (None at the end)."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in _SPACE:
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self.more():
                return None


def _truncated(e: json.JSONDecodeError, size: int) -> bool:
    """Could more text make this element parse? (The error is at the end of the text read, or
    a string is still open.)"""
    return e.pos >= size - 8 or e.msg.startswith("Unterminated string")


def elements(fh: BinaryIO, max_bytes: int, resume: tuple[int, int] | None = None) -> Iterator[tuple]:
    """("ok", record, None) or ("bad", reason, raw text, line) for each element of the array
    that starts the file (after an optional byte-order mark and whitespace), or, with `resume`
    = (offset, line), for the elements from the one `fh` is positioned at (that offset of the
    file, on that line) on. Raises BadUtf8, or ValueError when the file does not start with an
    array."""
    t = _Text(fh, *(resume or (0, 1)))
    while not t.buf and t.more():  # a block may end inside the first character
        pass
    if resume is None:
        if t.buf.startswith("\ufeff"):
            t.pos = 1
        if t.skip_space() != "[":
            raise ValueError("not a JSON array")
        t.pos += 1
    while True:
        c = t.skip_space()
        if c is None or c == "]":
            return
        try:
            rec, end = decode_at(t.buf, t.pos)
            if not t.eof and t.buf[t.pos] not in '{["' and _NUMBER_TAIL.fullmatch(t.buf, end):
                # a bare number (or true/false/null) may go on in the next block
                raise json.JSONDecodeError("element at the end of the text read", t.buf, end)
        except json.JSONDecodeError as e:
            too_long = len(t.buf) - t.pos > max_bytes
            if _truncated(e, len(t.buf)) and not too_long and t.more():
                continue  # read on and decode the element again (t.pos is still its start)
            line = t.line(t.pos)
            stop = _resync(t)
            why = f"record larger than {max_bytes} bytes" if too_long else f"malformed JSON ({e.msg})"
            yield ("bad", why, t.buf[t.pos:stop].strip(), line)
            t.pos = stop
            continue
        except Twice as e:
            yield ("bad", f"malformed JSON ({e})", t.buf[t.pos:e.end].strip(), t.line(t.pos))
            t.pos = e.end
            continue
        yield ("ok", rec, None, None)
        t.pos = end


_NEXT_OBJECT = re.compile(r"\n[ \t]{0,198}\{")


def _resync(t: _Text) -> int:
    """Where decoding resumes after a damaged element at t.pos: the next line that starts an
    object (the end of the file when none does)."""
    rel = 0  # searched up to here, relative to t.pos (reading on may move the buffer)
    while True:
        m = _NEXT_OBJECT.search(t.buf, t.pos + rel)
        if m:
            return m.start()
        rel = max(0, len(t.buf) - t.pos - 200)  # a match may straddle what is read next
        if not t.more():
            return len(t.buf)

"""Captured output: keep the tail, because the end of a log says why a job failed."""

from __future__ import annotations

import re
import threading
from collections import deque

SMALL_CHUNK = 4096
# What leads a tail that was cut; ``split_marker`` reads it back.
MARKER = "[... {} earlier bytes truncated ...]\n"
_MARKED = re.compile(r"\[\.\.\. (\d+) earlier bytes truncated \.\.\.\]\n")


def split_marker(output: str) -> tuple[int, str]:
    """How many bytes the marker of a kept tail says were cut (0 without one), and the tail without it."""
    marked = _MARKED.match(output)
    return (0, output) if marked is None else (int(marked.group(1)), output[marked.end() :])


class TailBuffer:
    """Bytes appended in chunks, of which only the last ``limit`` are kept; the rest is counted.

    The thread pumping a process appends while the engine's loop reads the tail of the running job to show it
    live, hence the lock; ``version`` counts appends, so the reader can tell that nothing is new without
    decoding the whole tail.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._dropped = 0
        self.version = 0

    def append(self, chunk: bytes) -> None:
        with self._lock:
            self.version += 1
            # Many small writes (a print per line) share a chunk: a chunk's own cost would outweigh the text.
            if self._chunks and len(self._chunks[-1]) + len(chunk) <= SMALL_CHUNK:
                self._chunks[-1] += chunk
            else:
                self._chunks.append(chunk)
            self._size += len(chunk)
            while self._size > self.limit and self._chunks:
                excess = self._size - self.limit
                head = self._chunks[0]
                if len(head) <= excess:
                    self._chunks.popleft()
                    self._size -= len(head)
                    self._dropped += len(head)
                else:
                    # Cut at a character's start: UTF-8 continuation bytes (10xxxxxx) go with the cut, so
                    # the tail never begins with half a character.
                    while excess < len(head) - 1 and head[excess] & 0xC0 == 0x80:
                        excess += 1
                    self._chunks[0] = head[excess:]
                    self._size -= excess
                    self._dropped += excess

    def text(self) -> str:
        """The kept output as text, led by a marker saying how much was cut."""
        return self._read()[1]

    def text_if_changed(self, since: int) -> tuple[int, str] | None:
        """The version and text of the tail if it changed after version ``since``, else None (cheaply)."""
        if self.version == since:  # an int read is atomic; a stale one only delays the news to the next look
            return None
        return self._read()

    def _read(self) -> tuple[int, str]:
        with self._lock:
            version, dropped, data = self.version, self._dropped, b"".join(self._chunks)
        # NUL cannot be stored in PostgreSQL text; it becomes the replacement character like invalid UTF-8.
        body = data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        if dropped:
            return version, MARKER.format(dropped) + body
        return version, body

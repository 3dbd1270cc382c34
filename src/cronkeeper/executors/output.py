"""Captured output: keep the tail, because the end of a log says why a job failed."""

from __future__ import annotations

from collections import deque


class TailBuffer:
    """Bytes appended in chunks, of which only the last ``limit`` are kept; the rest is counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.dropped = 0

    def append(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        while self._size > self.limit and self._chunks:
            excess = self._size - self.limit
            head = self._chunks[0]
            if len(head) <= excess:
                self._chunks.popleft()
                self._size -= len(head)
                self.dropped += len(head)
            else:
                self._chunks[0] = head[excess:]
                self._size -= excess
                self.dropped += excess

    def text(self) -> str:
        """The kept output as text, led by a marker saying how much was cut."""
        # NUL cannot be stored in PostgreSQL text; it becomes the replacement character like invalid UTF-8.
        body = b"".join(self._chunks).decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        if self.dropped:
            return f"[... {self.dropped} earlier bytes truncated ...]\n{body}"
        return body

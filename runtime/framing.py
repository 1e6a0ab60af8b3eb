"""Newline-delimited frames with a size limit that does not kill the connection.

`FrameReader` returns one line at a time. A line longer than the limit is skipped up to
its newline and reported as `OVERSIZE`, so the server can answer with an error and keep
the connection (and its session) alive instead of tearing it down mid-stream.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

OVERSIZE: Final = object()
_CHUNK = 1 << 16


class FrameReader:
    """Reads `\\n`-terminated frames of at most `limit` bytes from a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self._reader = reader
        self.limit = limit
        self._buf = bytearray()
        self._scan = 0
        self._discarding = False

    async def next(self) -> bytes | object | None:
        """The next frame without its newline, `OVERSIZE`, or None at end of stream."""
        while True:
            i = self._buf.find(b"\n", self._scan)
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[: i + 1]
                self._scan = 0
                if self._discarding:
                    self._discarding = False
                    return OVERSIZE
                return line
            if len(self._buf) > self.limit:
                self._discarding = True
                self._buf.clear()
            self._scan = len(self._buf)
            chunk = await self._reader.read(_CHUNK)
            if not chunk:
                if self._discarding:
                    self._discarding = False
                    return OVERSIZE
                if self._buf:
                    line = bytes(self._buf)
                    self._buf.clear()
                    self._scan = 0
                    return line
                return None
            self._buf += chunk

    def take_buffered(self) -> bytes:
        """Bytes already read past the last frame (handed to a tunnel when it opens)."""
        data = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        return data


def encode(frame: dict[str, Any]) -> bytes:
    """One frame as compact UTF-8 JSON plus the newline."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

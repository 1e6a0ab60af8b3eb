"""Newline-delimited frames with an exact size limit that does not kill the connection.

`FrameReader` returns one line at a time. A line longer than the limit (counted without
its newline; `limit` bytes pass, `limit + 1` do not, however the bytes were split into
reads) is skipped up to its newline and reported as `OVERSIZE`, so the server can answer
with an error and keep the connection (and its session) alive instead of tearing it
down mid-stream. Nothing longer than the limit is ever kept: a line is dropped as soon
as it is known to be too long. With `stop_at_limit` (the first frame on an endpoint that
needs a token) an over-long line is reported at once, without reading on to its newline.
Writing a frame is `hud.wire.encode`.
"""

from __future__ import annotations

import asyncio
from typing import Final

OVERSIZE: Final = object()
_CHUNK = 1 << 16


class FrameReader:
    """Reads `\\n`-terminated frames of at most `limit` bytes from a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self._reader = reader
        self.limit = limit
        #: the most bytes this reader ever held at once (to decide whether to trim memory)
        self.high_water = 0
        self._buf = bytearray()
        self._scan = 0
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes read from the stream and not returned as a frame yet."""
        return len(self._buf)

    def _take(self, end: int) -> bytes:
        """Remove and return the buffer up to `end`, dropping the newline at `end`."""
        with memoryview(self._buf) as view:
            line = bytes(view[:end])
        self._drop_through(end)
        return line

    async def next(self, stop_at_limit: bool = False) -> bytes | object | None:
        """The next frame without its newline, `OVERSIZE`, or None at end of stream."""
        while True:
            i = self._buf.find(b"\n", self._scan)
            if i >= 0:
                if self._discarding or i > self.limit:
                    self._discarding = False
                    self._drop_through(i)
                    return OVERSIZE
                return self._take(i)
            if len(self._buf) > self.limit:  # no newline within limit + 1 bytes
                self._buf = bytearray()
                self._scan = 0
                if stop_at_limit:
                    return OVERSIZE
                self._discarding = True
            self._scan = len(self._buf)
            chunk = await self._reader.read(_CHUNK)
            if not chunk:
                if self._discarding:
                    self._discarding = False
                    return OVERSIZE
                if self._buf:
                    return self._take(len(self._buf))
                return None
            self._buf += chunk
            self.high_water = max(self.high_water, len(self._buf))

    def _drop_through(self, end: int) -> None:
        """Drop the buffer up to and including the newline at `end`, without copying it."""
        if end + 1 >= len(self._buf):
            self._buf = bytearray()  # let a large buffer go instead of keeping its capacity
        else:
            del self._buf[: end + 1]
        self._scan = 0

    def take_buffered(self) -> bytes:
        """Bytes already read past the last frame (handed to a tunnel when it opens)."""
        data = bytes(self._buf)
        self._buf = bytearray()
        self._scan = 0
        return data


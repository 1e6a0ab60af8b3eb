"""NDJSON framing with a size limit."""

from __future__ import annotations

import asyncio

from hud.framing import OVERSIZE, FrameReader, encode


async def frames_of(data: bytes, limit: int) -> list[object]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = FrameReader(reader, limit)
    out = []
    while (frame := await frames.next()) is not None:
        out.append(frame)
    return out


async def test_splits_lines() -> None:
    """Each newline ends a frame; a last frame without newline still counts."""
    assert await frames_of(b"a\nbb\nccc", 100) == [b"a", b"bb", b"ccc"]


async def test_oversize_line_is_skipped_to_its_newline() -> None:
    """A long line becomes OVERSIZE and the frames after it are intact."""
    data = b"ok\n" + b"x" * 300_000 + b"\nnext\n"
    assert await frames_of(data, 1000) == [b"ok", OVERSIZE, b"next"]


async def test_frame_at_the_limit_passes() -> None:
    """A line of exactly `limit` bytes is accepted."""
    assert await frames_of(b"y" * 1000 + b"\n", 1000) == [b"y" * 1000]


def test_encode_is_compact_utf8_with_newline() -> None:
    """Frames are compact JSON, UTF-8 (not \\u escapes), newline-terminated."""
    assert encode({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}\n'.encode()

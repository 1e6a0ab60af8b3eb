"""NDJSON framing with a size limit."""

from __future__ import annotations

import asyncio
import json

import pytest

from hud.framing import OVERSIZE, FrameReader


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


LIMIT = 100_000


@pytest.mark.parametrize("chunk", [None, 7, 65_536, LIMIT, LIMIT + 1])
@pytest.mark.parametrize(("size", "passes"), [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)])
async def test_the_limit_is_exact_however_the_bytes_arrive(chunk: int | None, size: int,
                                                           passes: bool) -> None:
    """limit-1 and limit bytes pass, limit+1 is OVERSIZE, whether the newline comes in the
    same read as the line or later; the next frame is intact."""
    data = b"a" * size + b"\nok\n"
    reader = asyncio.StreamReader()
    for i in range(0, len(data), chunk or len(data)):
        reader.feed_data(data[i:i + (chunk or len(data))])
    reader.feed_eof()
    frames = FrameReader(reader, LIMIT)
    first = await frames.next()
    assert (first == b"a" * size) if passes else (first is OVERSIZE)
    assert await frames.next() == b"ok"


async def test_stop_at_limit_reports_oversize_before_the_newline() -> None:
    """With stop_at_limit an over-long line is OVERSIZE without reading on to its end."""
    reader = asyncio.StreamReader()
    reader.feed_data(b"x" * 5000)  # no newline, no EOF: the reader would wait for more
    frames = FrameReader(reader, 1000)
    assert await asyncio.wait_for(frames.next(stop_at_limit=True), 5) is OVERSIZE


async def test_an_unterminated_oversize_line_at_eof_is_oversize() -> None:
    """A last line without newline over the limit is OVERSIZE, not a frame."""
    assert await frames_of(b"ok\n" + b"z" * 2001, 2000) == [b"ok", OVERSIZE]


def test_an_unencodable_reply_becomes_an_internal_error_frame() -> None:
    """encode_reply answers with -32603 naming the problem, under the request's id."""
    from hud.serve.connections import encode_reply
    from hud.wire import INTERNAL_ERROR

    frame = json.loads(encode_reply({"jsonrpc": "2.0", "id": 7, "result": {"x": object()}}))
    assert frame["id"] == 7 and frame["error"]["code"] == INTERNAL_ERROR
    assert "could not be encoded as JSON (TypeError: Object of type object" in frame["error"]["message"]

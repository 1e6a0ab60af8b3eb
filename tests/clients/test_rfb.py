"""The asyncio RFB client: key names, PNG encoding, handshake faults, input on real Xvnc."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hud.capabilities.chromium import LOOPBACK_ONLY, BrowserCapability
from hud.capabilities.desktop import DesktopCapability
from hud.clients.rfb import RFBClient, RFBError, encode_png, parse_chord
from hud.errors import ConfigError
from tests.guikit import need, wait_for

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _connect_to(handler: Handler, timeout: float = 1.0) -> RFBClient:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        return await RFBClient.connect(reader, writer, timeout=timeout)
    finally:
        server.close()


@pytest.fixture
async def desktop() -> AsyncIterator[DesktopCapability]:
    need("Xvnc", "openbox", "xdotool", "xprop")
    capability = DesktopCapability(user=None, width=640, height=480)
    await capability.start()
    try:
        yield capability
    finally:
        await capability.close()


def test_chord_maps_to_keysyms() -> None:
    """ctrl+shift+t is Control_L, Shift_L, 't'."""
    assert parse_chord("ctrl+shift+t") == [0xFFE3, 0xFFE1, ord("t")]


def test_unknown_key_is_config_error() -> None:
    """An unknown key name is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="unknown key 'hyperdrive'"):
        parse_chord("ctrl+hyperdrive")


def test_png_decodes_to_the_same_pixels() -> None:
    """encode_png output decodes (Pillow) to the pixels it was given."""
    image_module = pytest.importorskip("PIL.Image")
    width, height = 136, 2
    rgb = bytes(range(256)) * 3 + bytes(48)  # 816 bytes: 2 rows of 136 pixels
    decoded = image_module.open(io.BytesIO(encode_png(width, height, rgb)))
    assert decoded.size == (width, height) and decoded.tobytes() == rgb


async def test_silent_server_is_not_ready_error() -> None:
    """A port that accepts but never greets: a clear 'not ready' RFBError, within the timeout."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    with pytest.raises(RFBError, match="did not complete the RFB handshake within 1s"):
        await _connect_to(silent)


async def test_password_only_server_is_refused_clearly() -> None:
    """A server offering only VncAuth: RFBError saying we speak only None."""
    async def vnc_auth(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"RFB 003.008\n")
        await reader.readexactly(12)
        writer.write(b"\x01\x02")
        await writer.drain()
        await reader.read()

    with pytest.raises(RFBError, match=r"offers security types \[2\].*only None"):
        await _connect_to(vnc_auth)


async def test_click_outside_the_screen_raises(desktop: DesktopCapability) -> None:
    """A click at x = width is a ConfigError giving the screen size."""
    client = await desktop.connect()
    try:
        with pytest.raises(ConfigError, match=r"\(640, 10\) is outside the 640x480 screen"):
            await client.click(640, 10)
    finally:
        await client.close()


async def test_move_moves_the_x_pointer(desktop: DesktopCapability) -> None:
    """A pointer move over RFB lands where xdotool sees the X pointer."""
    client = await desktop.connect()
    try:
        await client.move(123, 234)
        await client.capture()  # a round trip: the server has processed the move
        assert "x:123 y:234" in await desktop.xdotool("getmouselocation")
    finally:
        await client.close()


async def test_frame_has_the_screen_size(desktop: DesktopCapability) -> None:
    """A capture is width*height RGB pixels."""
    client = await desktop.connect()
    try:
        frame = await client.capture()
    finally:
        await client.close()
    assert (frame.width, frame.height, len(frame.rgb)) == (640, 480, 640 * 480 * 3)


@pytest.fixture
async def headed(desktop: DesktopCapability) -> AsyncIterator[BrowserCapability]:
    """Chromium drawn on the desktop (not headless), showing a page larger than the window."""
    need("chromium")
    browser = BrowserCapability(user=None, display=desktop.display, args=LOOPBACK_ONLY,
                                width=600, height=440)
    await browser.start()
    try:
        await browser.open("data:text/html,<body style='width:5000px;height:5000px;"
                           "background:linear-gradient(90deg,red,blue)'>")
        yield browser
    finally:
        await browser.close()


async def _page_drawn(client: RFBClient, x: int, y: int) -> None:
    """Wait until the gradient page is on screen at (x, y): Chromium can take input there."""
    async def drawn() -> bool:
        frame = await client.capture()
        r, g, b = frame.rgb[(y * frame.width + x) * 3:(y * frame.width + x) * 3 + 3]
        return g < 60 and r + b > 200

    await wait_for(drawn)


async def _scrolled(browser: BrowserCapability, axis: str) -> bool:
    return bool(await browser.evaluate(f"window.{axis} > 0"))


async def test_wheel_down_scrolls_the_page(desktop: DesktopCapability,
                                           headed: BrowserCapability) -> None:
    """Wheel clicks (button 5) over a headed Chromium page scroll it down."""
    client = await desktop.connect()
    try:
        await _page_drawn(client, 300, 300)
        await client.scroll(300, 300, dy=5)
        await wait_for(lambda: _scrolled(headed, "scrollY"))
    finally:
        await client.close()


async def test_wheel_right_scrolls_the_page(desktop: DesktopCapability,
                                            headed: BrowserCapability) -> None:
    """Horizontal wheel clicks (button 7) scroll the page right."""
    client = await desktop.connect()
    try:
        await _page_drawn(client, 300, 300)
        await client.scroll(300, 300, dx=5)
        await wait_for(lambda: _scrolled(headed, "scrollX"))
    finally:
        await client.close()

"""A small asyncio RFB (VNC) client: screenshots and input over any byte stream.

Works on a plain `(StreamReader, StreamWriter)` pair, so the same client drives a desktop
through `run.tunnel("desktop")` on the host, or the local Xvnc port inside the container.

Why our own client rather than vncdotool: vncdotool's protocol class is a Twisted
`Protocol`; driving it from asyncio means running a reactor beside the loop or faking its
transport, and it would bring Twisted to the host for a protocol subset of ~200 lines.
We speak RFB 3.8 (RFC 6143) with what a computer-use agent needs and nothing else:

- security type None only (the tunnel is the access control; the capability runs Xvnc
  with `-SecurityTypes None` on loopback); a server offering only VncAuth is refused
  with a clear error;
- one fixed pixel format (32 bpp, depth 24, little-endian, red at bit 0) so a frame is
  RGBX in memory and becomes RGB with one slice deletion;
- encodings Raw and CopyRect, plus the DesktopSize pseudo-encoding; no ZRLE/Tight
  decoders (the bugs live there, and loopback/exec tunnels have the bandwidth);
- every screenshot is a non-incremental update request, so frames are always fresh
  (TigerVNC defers incremental answers until something changes, which would hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from dataclasses import dataclass

from hud.errors import ConfigError, InfraError

VERSION = b"RFB 003.008\n"
SEC_NONE, SEC_VNC_AUTH = 1, 2
ENC_RAW, ENC_COPYRECT, ENC_DESKTOP_SIZE = 0, 1, -223
# bpp, depth, big-endian, true-colour, r/g/b max, r/g/b shift: memory order R, G, B, X
PIXEL_FORMAT = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 0, 8, 16)
BUTTONS = {"left": 1, "middle": 2, "right": 3}
MAX_CLICKS = 3

# X keysyms (X11/keysymdef.h) for names agents use; single characters map by code point.
KEYSYMS = {
    "return": 0xFF0D, "enter": 0xFF0D, "tab": 0xFF09, "escape": 0xFF1B, "esc": 0xFF1B,
    "backspace": 0xFF08, "delete": 0xFFFF, "del": 0xFFFF, "insert": 0xFF63,
    "home": 0xFF50, "end": 0xFF57, "left": 0xFF51, "up": 0xFF52, "right": 0xFF53,
    "down": 0xFF54, "page_up": 0xFF55, "pageup": 0xFF55, "prior": 0xFF55,
    "page_down": 0xFF56, "pagedown": 0xFF56, "next": 0xFF56, "space": 0x20,
    "shift": 0xFFE1, "shift_l": 0xFFE1, "shift_r": 0xFFE2, "ctrl": 0xFFE3,
    "control": 0xFFE3, "control_l": 0xFFE3, "control_r": 0xFFE4, "alt": 0xFFE9,
    "alt_l": 0xFFE9, "alt_r": 0xFFEA, "super": 0xFFEB, "super_l": 0xFFEB, "meta": 0xFFEB,
    "cmd": 0xFFEB, "win": 0xFFEB, "menu": 0xFF67, "print": 0xFF61, "caps_lock": 0xFFE5,
    "kp_enter": 0xFF8D, "minus": 0x2D, "plus": 0x2B, "comma": 0x2C, "period": 0x2E,
    "slash": 0x2F, "backslash": 0x5C,
    **{f"f{n}": 0xFFBE + n - 1 for n in range(1, 13)},
}


class RFBError(InfraError):
    """The VNC server could not be reached, refused us, or broke the protocol."""


@dataclass(frozen=True)
class Frame:
    """One framebuffer snapshot: `rgb` holds width*height*3 bytes, rows top to bottom."""

    width: int
    height: int
    rgb: bytes

    def png(self, level: int = 6) -> bytes:
        """The frame as PNG bytes."""
        return encode_png(self.width, self.height, self.rgb, level)


def encode_png(width: int, height: int, rgb: bytes, level: int = 6) -> bytes:
    """Encode 8-bit RGB pixels as a PNG (filter type 0 on every row)."""
    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride:(y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


def keysym(name: str) -> int:
    """The X keysym of a key name ("Return", "ctrl", "F5", "a", "é").

    Raises:
        ConfigError: the name is not a known key.
    """
    if len(name) == 1:
        code = ord(name)
        return code if code < 0x100 else 0x01000000 + code  # X's Unicode keysym range
    found = KEYSYMS.get(name.lower())
    if found is None:
        raise ConfigError(f"unknown key {name!r}; use a character or one of: "
                          f"{', '.join(sorted(KEYSYMS))}")
    return found


def parse_chord(chord: str) -> list[int]:
    """Keysyms of a chord like "ctrl+shift+t" or "Return" (pressed in order).

    Raises:
        ConfigError: a part is not a known key.
    """
    if chord == "+":
        return [keysym("+")]
    parts = [p for p in chord.replace(" ", "").split("+") if p] if len(chord) > 1 else [chord]
    if not parts:
        raise ConfigError(f"empty key chord {chord!r}; write e.g. 'ctrl+c' or 'Return'")
    return [keysym(p) for p in parts]


class RFBClient:
    """One RFB connection. Not safe for concurrent use: one caller awaits at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 width: int, height: int, name: str, timeout: float) -> None:
        self.reader, self.writer = reader, writer
        self.width, self.height, self.name = width, height, name
        self.timeout = timeout
        self._fb = bytearray(width * height * 4)
        self._buttons = 0
        self._pos = (0, 0)

    @classmethod
    async def connect(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      *, timeout: float = 10.0) -> RFBClient:
        """Handshake (version, security None, init) on an open stream.

        Raises:
            RFBError: no RFB server answers within `timeout`, or it refuses us.
        """
        try:
            return await asyncio.wait_for(cls._handshake(reader, writer, timeout), timeout)
        except TimeoutError:
            writer.close()
            raise RFBError(f"the desktop did not complete the RFB handshake within {timeout:g}s; "
                           f"the display may not be ready yet (retry, or check the capability "
                           f"log)") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            raise RFBError(f"the desktop closed the connection during the RFB handshake "
                           f"({type(exc).__name__}); the display is not ready or has died") from exc

    @classmethod
    async def _handshake(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         timeout: float) -> RFBClient:
        greeting = await reader.readexactly(12)
        if greeting == b"RFB 003.003\n":
            # TigerVNC answers a blacklisted or refused client in 3.3: type 0 and a reason
            writer.write(greeting)
            (kind,) = struct.unpack(">I", await reader.readexactly(4))
            reason = await _read_string(reader) if kind == 0 else f"security type {kind}"
            raise RFBError(f"the VNC server refused the connection (RFB 3.3): {reason}")
        if not greeting.startswith(b"RFB ") or greeting < b"RFB 003.008":
            raise RFBError(f"not an RFB 3.8 server: it greeted with {greeting!r}")
        writer.write(VERSION)
        (count,) = await reader.readexactly(1)
        if count == 0:
            raise RFBError(f"the VNC server refused the connection: {await _read_string(reader)}")
        offered = set(await reader.readexactly(count))
        if SEC_NONE not in offered:
            raise RFBError(f"the VNC server offers security types {sorted(offered)} but this "
                           f"client speaks only None (1); start Xvnc with -SecurityTypes None "
                           f"(the tunnel is the access control)")
        writer.write(bytes([SEC_NONE]))
        (result,) = struct.unpack(">I", await reader.readexactly(4))
        if result != 0:
            raise RFBError(f"the VNC server rejected security None: {await _read_string(reader)}")
        writer.write(b"\x01")  # ClientInit: shared, so other viewers stay connected
        width, height = struct.unpack(">HH", await reader.readexactly(4))
        await reader.readexactly(16)  # the server's pixel format: we set our own below
        name = (await _read_string(reader)).strip()
        writer.write(b"\x00\x00\x00\x00" + PIXEL_FORMAT)
        encodings = (ENC_COPYRECT, ENC_RAW, ENC_DESKTOP_SIZE)
        writer.write(struct.pack(f">BxH{len(encodings)}i", 2, len(encodings), *encodings))
        await writer.drain()
        return cls(reader, writer, width, height, name, timeout)

    async def capture(self, timeout: float | None = None) -> Frame:
        """A fresh full frame.

        Raises:
            RFBError: the server did not send the frame within the timeout, or broke off.
        """
        limit = timeout or self.timeout
        try:
            await self._send(struct.pack(">BBHHHH", 3, 0, 0, 0, self.width, self.height))
            # a DesktopSize change answers with the new size first: ask again for pixels
            while await asyncio.wait_for(self._read_until_update(), limit):
                await self._send(struct.pack(">BBHHHH", 3, 0, 0, 0, self.width, self.height))
        except TimeoutError:
            raise RFBError(f"the desktop sent no frame within {limit:g}s") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise RFBError(f"the desktop connection broke while reading a frame "
                           f"({type(exc).__name__}); the display may have died") from exc
        rgb = bytearray(self._fb)
        del rgb[3::4]
        return Frame(self.width, self.height, bytes(rgb))

    async def screenshot(self, timeout: float | None = None) -> bytes:
        """A fresh full frame as PNG bytes.

        Raises:
            RFBError: see `capture`.
        """
        return (await self.capture(timeout)).png()

    async def _read_until_update(self) -> bool:
        """Read up to the next FramebufferUpdate; True when it resized the screen."""
        while True:
            (kind,) = await self.reader.readexactly(1)
            if kind == 0:
                return await self._read_update()
            if kind == 1:  # SetColourMapEntries: unused with true colour, skip it
                _, _, count = struct.unpack(">xHH", await self.reader.readexactly(5))
                await self.reader.readexactly(count * 6)
            elif kind == 2:  # Bell
                continue
            elif kind == 3:  # ServerCutText
                await self.reader.readexactly(3)
                await _read_string(self.reader)
            else:
                raise RFBError(f"the VNC server sent unknown message type {kind}")

    async def _read_update(self) -> bool:
        resized = False
        (count,) = struct.unpack(">xH", await self.reader.readexactly(3))
        for _ in range(count):
            x, y, w, h, enc = struct.unpack(">HHHHi", await self.reader.readexactly(12))
            if enc != ENC_DESKTOP_SIZE and (x + w > self.width or y + h > self.height):
                raise RFBError(f"the VNC server sent a {w}x{h} rectangle at ({x}, {y}), "
                               f"outside its {self.width}x{self.height} screen")
            if enc == ENC_RAW:
                data = await self.reader.readexactly(w * h * 4)
                self._blit(x, y, w, h, data)
            elif enc == ENC_COPYRECT:
                sx, sy = struct.unpack(">HH", await self.reader.readexactly(4))
                self._blit(x, y, w, h, self._crop(sx, sy, w, h))
            elif enc == ENC_DESKTOP_SIZE:
                self.width, self.height = w, h
                self._fb = bytearray(w * h * 4)
                resized = True
            else:
                raise RFBError(f"the VNC server used encoding {enc}, which we did not ask for")
        return resized

    def _crop(self, x: int, y: int, w: int, h: int) -> bytes:
        stride = self.width * 4
        return b"".join(self._fb[(y + r) * stride + x * 4:(y + r) * stride + (x + w) * 4]
                        for r in range(h))

    def _blit(self, x: int, y: int, w: int, h: int, data: bytes) -> None:
        stride, row = self.width * 4, w * 4
        for r in range(h):
            start = (y + r) * stride + x * 4
            self._fb[start:start + row] = data[r * row:(r + 1) * row]

    # -- input ---------------------------------------------------------------------------

    def _check(self, x: int, y: int) -> None:
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ConfigError(f"({x}, {y}) is outside the {self.width}x{self.height} screen; "
                              f"x must be in 0..{self.width - 1} and y in 0..{self.height - 1}")

    async def _send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (TimeoutError, ConnectionError) as exc:
            raise RFBError(f"cannot send to the desktop ({type(exc).__name__}); "
                           f"the connection is gone") from exc

    async def _pointer(self, x: int, y: int, mask: int) -> None:
        self._pos = (x, y)
        await self._send(struct.pack(">BBHH", 5, mask, x, y))

    async def move(self, x: int, y: int) -> None:
        """Move the pointer (buttons held stay held).

        Raises:
            ConfigError: (x, y) is off the screen.
        """
        self._check(x, y)
        await self._pointer(x, y, self._buttons)

    async def click(self, x: int, y: int, button: str | int = "left", count: int = 1) -> None:
        """Click `count` times (2 = double, 3 = triple) at (x, y).

        Raises:
            ConfigError: off-screen, an unknown button, or a count outside 1..3.
        """
        self._check(x, y)
        number = BUTTONS.get(button) if isinstance(button, str) else button
        if number is None or not 1 <= number <= 8:
            raise ConfigError(f"unknown button {button!r}; use left, middle, right or 1..8")
        if not 1 <= count <= MAX_CLICKS:
            raise ConfigError(f"click count {count} is not in 1..{MAX_CLICKS}")
        bit = 1 << (number - 1)
        await self._pointer(x, y, self._buttons)
        for _ in range(count):
            await self._pointer(x, y, self._buttons | bit)
            await self._pointer(x, y, self._buttons)

    async def drag(self, path: list[tuple[int, int]], button: str = "left") -> None:
        """Press at the first point, move through the others, release at the last.

        Raises:
            ConfigError: fewer than two points, or a point off the screen.
        """
        if len(path) < 2:
            raise ConfigError(f"a drag needs at least two points, got {path!r}")
        for x, y in path:
            self._check(x, y)
        bit = 1 << (BUTTONS.get(button, 1) - 1)
        await self._pointer(*path[0], self._buttons)
        self._buttons |= bit
        try:
            for x, y in path:
                await self._pointer(x, y, self._buttons)
        finally:
            self._buttons &= ~bit
            await self._pointer(*path[-1], self._buttons)

    async def scroll(self, x: int, y: int, dx: int = 0, dy: int = 0) -> None:
        """Scroll at (x, y): dy > 0 down, dy < 0 up, dx > 0 right, dx < 0 left, in wheel clicks.

        Raises:
            ConfigError: (x, y) is off the screen.
        """
        self._check(x, y)
        await self._pointer(x, y, self._buttons)  # arrive first: apps ignore a wheel on entry
        for amount, negative, positive in ((dy, 4, 5), (dx, 6, 7)):
            bit = 1 << ((negative if amount < 0 else positive) - 1)
            for _ in range(abs(amount)):
                await self._pointer(x, y, self._buttons | bit)
                await self._pointer(x, y, self._buttons)

    async def key(self, chord: str) -> None:
        """Press a chord ("ctrl+s", "Return", "alt+F4"): down in order, up in reverse.

        Raises:
            ConfigError: a key name is unknown.
        """
        syms = parse_chord(chord)
        for sym in syms:
            await self._send(struct.pack(">BBxxI", 4, 1, sym))
        for sym in reversed(syms):
            await self._send(struct.pack(">BBxxI", 4, 0, sym))

    async def type(self, text: str) -> None:
        """Type `text` character by character ("\\n" presses Return, "\\t" Tab)."""
        for char in text:
            sym = {"\n": KEYSYMS["return"], "\t": KEYSYMS["tab"]}.get(char) or keysym(char)
            await self._send(struct.pack(">BBxxI", 4, 1, sym) + struct.pack(">BBxxI", 4, 0, sym))

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        self.writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError):  # closed either way
            await asyncio.wait_for(self.writer.wait_closed(), 2)


async def _read_string(reader: asyncio.StreamReader) -> str:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return (await reader.readexactly(length)).decode("utf-8", errors="replace")

"""Tunnels: a control connection turned into a raw byte pipe to one capability.

The host never reaches a capability's port: it opens a control connection (over
`docker exec -i ... hud connect --tunnel NAME`, the unix socket, or TCP), sends
`tunnel.open`, and from the reply on the bytes go straight to the capability's daemon.
That is why a container with `--network none` still serves ssh, mcp, cdp and rfb.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hud.errors import ProtocolError
from hud.wire import CAPABILITY_ERROR

if TYPE_CHECKING:  # pydantic stays out of `hud connect --mux`, which splices with this module
    from hud.messages import Binding

_CHUNK = 1 << 16
CONNECT_TIMEOUT = 10.0


async def open_tunnel(binding: Binding) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the daemon behind `binding.url` (`tcp://host:port` or `unix:///path`).

    Raises:
        ProtocolError: the url is not reachable or of an unknown scheme (CAPABILITY_ERROR).
    """
    url = urlsplit(binding.url)
    try:
        if url.scheme == "tcp":
            if url.hostname is None or url.port is None:
                raise ValueError("tcp url needs host and port")
            opening = asyncio.open_connection(url.hostname, url.port)
        elif url.scheme == "unix":
            opening = asyncio.open_unix_connection(url.path)
        else:
            raise ProtocolError(
                CAPABILITY_ERROR,
                f"capability {binding.name!r} has url {binding.url!r}; tunnels reach only "
                f"tcp://host:port and unix:///path",
            )
        return await asyncio.wait_for(opening, CONNECT_TIMEOUT)
    except (TimeoutError, OSError, ValueError) as exc:
        raise ProtocolError(
            CAPABILITY_ERROR,
            f"capability {binding.name!r} at {binding.url} is not answering "
            f"({type(exc).__name__}: {exc}); its daemon may have died — see the hud serve log",
        ) from exc


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def splice(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
    a_to_b_first: bytes = b"",
) -> None:
    """Copy bytes both ways until both directions end; `a_to_b_first` goes out first.

    Half-closes are passed on (EOF one way keeps the other way open), so protocols that
    shut down writing before reading the last reply still work. When the upstream side
    (b) closes, the client side is closed too.
    """
    try:
        if a_to_b_first:
            b_writer.write(a_to_b_first)
            await b_writer.drain()
        up = asyncio.create_task(_pump(a_reader, b_writer))
        down = asyncio.create_task(_pump(b_reader, a_writer))
        await down
        # upstream finished sending: give the client a moment's grace, then stop reading it
        try:
            await asyncio.wait_for(up, timeout=1.0)
        except TimeoutError:
            up.cancel()
    except ConnectionError:
        pass
    finally:
        for writer in (a_writer, b_writer):
            writer.close()

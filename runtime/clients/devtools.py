"""DevTools basics that the connection (`cdp`) and the tab (`page`) share.

The errors, the default command timeout, what a tab needs from its connection
(`Connection`), and finding the browser's WebSocket path over DevTools' HTTP server. The
imports run one way, so neither client needs the other to load:

    devtools  <-  page  <-  cdp        (a connection makes pages; a page knows its
                                        connection only as a `Connection`)

    CDPError      Chromium answered a command with an error, or a page script threw
    └ CDPTimeout  no answer in time (a page that never loads, a hung renderer)
    InfraError    the connection to Chromium is gone (hud.errors)

Chromium answers 500 to a Host that is a name (not an IP or `localhost`) and 403 to a
request with an `Origin`, so requests say `Host: 127.0.0.1` and carry no Origin.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from hud.errors import HudError, InfraError

#: seconds a DevTools command may take unless the caller says otherwise
TIMEOUT = 30.0


class CDPError(HudError):
    """Chromium refused a command, or a page script raised."""


class CDPTimeout(CDPError):
    """Chromium did not answer (or a page did not load) in time."""


class Connection(Protocol):
    """What a tab needs from its DevTools connection (`hud.clients.cdp.CDP` is one)."""

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   session: str | None = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send a command (in `session`, if given) and return its `result`."""
        ...

    def expect(self, method: str, session: str | None = None) -> asyncio.Future[dict[str, Any]]:
        """A future for the next event `method` (in `session`, if given)."""
        ...


async def http_get_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                        timeout: float = 10.0) -> Any:
    """GET `path` from DevTools' HTTP server over an open stream; the JSON body.

    Raises:
        InfraError: no answer within `timeout`, or not a 200 with JSON.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        writer.write(request.encode())
        await writer.drain()
        # Chromium keeps the connection open whatever Connection says: read by length
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
        raise InfraError(f"DevTools did not answer GET {path} within {timeout:g}s "
                         f"({type(exc).__name__}); is Chromium running?") from exc
    finally:
        writer.close()
    if " 200 " not in f"{status} ":
        raise InfraError(f"DevTools answered GET {path} with {status!r}")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InfraError(f"DevTools answered GET {path} with non-JSON: {body[:200]!r}") from exc


def ws_path(version: object) -> str:
    """The path of `webSocketDebuggerUrl` in a `/json/version` answer (its host and port are
    Chromium's, not ours: the client connects over its own stream).

    Raises:
        InfraError: the answer has no `webSocketDebuggerUrl`.
    """
    url = version.get("webSocketDebuggerUrl") if isinstance(version, dict) else None
    if not isinstance(url, str) or "/devtools/" not in url:
        raise InfraError(f"/json/version has no webSocketDebuggerUrl: {version!r}")
    return url[url.index("/devtools/"):]

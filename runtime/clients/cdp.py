"""A tiny Chrome DevTools Protocol client: commands with ids and timeouts, pages, input.

One WebSocket to the browser endpoint (`/devtools/browser/<id>`) carries everything:
pages are attached with `Target.attachToTarget {flatten: true}` and addressed by
`sessionId`. Events are dropped unless someone waits for them (`expect`) or subscribed
(`on`), so an idle connection never grows a queue. Every call has a timeout.

Where the endpoint is: `GET /json/version` answers `webSocketDebuggerUrl`, whose host is
whatever Host header we sent (Chromium copies it) and whose port is Chromium's: the
client keeps only the path and connects over its own stream (`hud.clients.devtools`).

The errors (`CDPError`, `CDPTimeout`) live in `hud.clients.devtools`, shared with the tab
(`hud.clients.page`), and are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hud.clients.devtools import TIMEOUT, CDPError, CDPTimeout, http_get_json, ws_path
from hud.clients.page import Page
from hud.errors import HudError, InfraError

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

# the errors are re-exported: templates catch `hud.clients.cdp.CDPError`
__all__ = ["CDP", "CDPError", "CDPTimeout"]

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Opener = Callable[[str], Awaitable[Streams]]
MAX_MESSAGE = 64 << 20  # screenshots of big pages are large base64 strings


class CDP:
    """One DevTools WebSocket connection (usually the browser endpoint)."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], str | None]] = {}
        self._waiters: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self._handlers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._closed: BaseException | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, path: str, *, port: int | None = None,
                      sock: socket.socket | None = None, timeout: float = 10.0) -> CDP:
        """Open the WebSocket at `path` on 127.0.0.1:`port`, or over a connected `sock`.

        Raises:
            InfraError: the WebSocket handshake failed or timed out.
        """
        from websockets.asyncio.client import connect

        where = f"127.0.0.1:{port}" if port else "127.0.0.1"
        try:
            ws = await connect(f"ws://{where}{path}", sock=sock, max_size=MAX_MESSAGE,
                               open_timeout=timeout, ping_interval=None, compression=None)
        except Exception as exc:  # OSError, a timeout, any failed handshake
            raise InfraError(f"cannot open the DevTools WebSocket {path} "
                             f"({type(exc).__name__}: {exc})") from exc
        return cls(ws)

    @classmethod
    async def connect_port(cls, port: int, timeout: float = 10.0) -> CDP:
        """The browser endpoint of the Chromium whose DevTools listens on 127.0.0.1:`port`.

        Raises:
            InfraError: DevTools does not answer.
        """
        try:
            streams = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        except (OSError, TimeoutError) as exc:
            raise InfraError(f"DevTools does not answer on 127.0.0.1:{port} "
                             f"({type(exc).__name__}); is Chromium running?") from exc
        version = await http_get_json(*streams, "/json/version", timeout)
        return await cls.connect(ws_path(version), port=port, timeout=timeout)

    @classmethod
    async def connect_tunnel(cls, opener: Opener, name: str, timeout: float = 30.0) -> CDP:
        """The browser endpoint of capability `name`, over two tunnel connections.

        Raises:
            InfraError: the tunnel or DevTools does not answer.
        """
        from hud.clients.bindings import socket_for

        version = await http_get_json(*await opener(name), "/json/version", timeout)
        sock = await socket_for(opener, name)
        return await cls.connect(ws_path(version), sock=sock, timeout=timeout)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    future, _ = self._pending.pop(message["id"], (None, None))
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                self._dispatch(message)
        except Exception as exc:  # noqa: BLE001 - the connection died: fail whoever waits
            self._closed = exc
        else:
            self._closed = ConnectionError("closed by Chromium")
        gone = InfraError(f"the DevTools connection closed ({self._closed}); Chromium may "
                          f"have died or been restarted")
        for future in [*(p[0] for p in self._pending.values()), *(w[2] for w in self._waiters)]:
            if not future.done():
                future.set_exception(gone)
        self._pending.clear()
        self._waiters.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        method, session = message.get("method", ""), message.get("sessionId")
        if method == "Target.detachedFromTarget":  # its tab closed: nobody will answer
            gone = message.get("params", {}).get("sessionId")
            for future, where in self._pending.values():
                if where == gone and not future.done():
                    future.set_exception(CDPError("the tab was closed (detached from target)"))
        for handler in self._handlers.get(method, []):
            handler(message)
        keep = []
        for entry in self._waiters:
            want, want_session, future = entry
            if want == method and want_session in (None, session) and not future.done():
                future.set_result(message)
            elif not future.done():
                keep.append(entry)
        self._waiters = keep

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def on(self, method: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call `handler(message)` for every event `method` (on the reader task: be quick)."""
        self._handlers.setdefault(method, []).append(handler)

    def expect(self, method: str, session: str | None = None) -> asyncio.Future[dict[str, Any]]:
        """A future for the next event `method`; create it *before* what triggers it."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, session, future))
        return future

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   session: str | None = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send a command and return its `result`.

        Raises:
            CDPError: Chromium answered with an error.
            CDPTimeout: no answer within `timeout`.
            InfraError: the connection is gone.
        """
        if self._closed is not None:
            raise InfraError(f"the DevTools connection is closed ({self._closed}); reconnect")
        ident = next(self._ids)
        frame: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            frame["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = (future, session)
        try:
            await self._ws.send(json.dumps(frame))
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise CDPTimeout(f"Chromium did not answer {method} within {timeout:g}s") from None
        except HudError:
            raise  # the reader failed the future with the reason
        except Exception as exc:  # anything the socket raised: it broke
            raise InfraError(f"{method} failed: the DevTools connection broke "
                             f"({type(exc).__name__}: {exc})") from exc
        finally:
            self._pending.pop(ident, None)
        if "error" in reply:
            error = reply["error"]
            raise CDPError(f"{method} failed: {error.get('message')} "
                           f"({error.get('data') or error.get('code')})")
        return dict(reply.get("result", {}))

    async def pages(self) -> list[dict[str, Any]]:
        """The page targets (tabs), oldest first as Chromium lists them."""
        infos = (await self.send("Target.getTargets"))["targetInfos"]
        return [t for t in infos if t.get("type") == "page"]

    async def attach(self, target_id: str) -> Page:
        """A `Page` for target `target_id` (a flattened session on this connection)."""
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target_id, "flatten": True})
        page = Page(self, target_id, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        return page

    async def page(self, url_prefix: str | None = None) -> Page:
        """The first tab (whose URL starts with `url_prefix`, if given); a new one if none.

        Raises:
            CDPError: `url_prefix` was given and no tab's URL starts with it.
        """
        for info in await self.pages():
            if url_prefix is None or info.get("url", "").startswith(url_prefix):
                return await self.attach(info["targetId"])
        if url_prefix is not None:
            raise CDPError(f"no tab's URL starts with {url_prefix!r}")
        return await self.new_page()

    async def new_page(self, url: str = "about:blank") -> Page:
        """Open a new tab at `url` (not waiting for it to load) and attach to it."""
        created = await self.send("Target.createTarget", {"url": url})
        try:
            return await self.attach(created["targetId"])
        except CDPError as exc:
            raise CDPError(f"the new tab closed at once ({exc}); the browser may be at its "
                           f"tab limit (max_tabs): close a tab first") from exc

    async def close(self) -> None:
        """Close the WebSocket (idempotent)."""
        self._reader.cancel()
        # closing a socket that already broke may raise anything; it is closed either way
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 2)

"""Typed clients for a running environment's capabilities, carried over tunnels.

Everything here takes a tunnel opener — `async (name) -> (reader, writer)` — so the same
code serves every placement: a unix socket (local), `docker exec -i ... hud connect
--tunnel NAME` (docker, attach), or TCP. Libraries that want a real socket (asyncssh)
get one end of a socketpair whose other end is spliced to the tunnel.

Provider SDKs and asyncssh are imported inside the functions: this module is host-side
and must not cost the in-container path anything.

Bindings come from a container's manifest, which is untrusted: the params used here are
read through `hud.clients.untrusted`'s models (again, for bindings that did not come through
`parse_manifest`), never as raw strings.
"""

from __future__ import annotations

import abc
import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hud.clients.untrusted import McpParams, ssh_params, typed_params
from hud.errors import ConfigError, InfraError, ProtocolError
from hud.serve.tunnel import splice
from hud.wire import INVALID_REQUEST

if TYPE_CHECKING:
    from asyncssh import SSHClientConnection

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Opener = Callable[[str], Awaitable[Streams]]

_BRIDGES: set[asyncio.Task[None]] = set()


async def socket_for(opener: Opener, name: str) -> socket.socket:
    """A connected socket whose bytes go to capability `name` through a tunnel."""
    reader, writer = await opener(name)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    local_reader, local_writer = await asyncio.open_connection(sock=ours, limit=1 << 20)
    task = asyncio.create_task(splice(local_reader, local_writer, reader, writer))
    _BRIDGES.add(task)
    task.add_done_callback(_BRIDGES.discard)
    return theirs


def pick_binding(bindings: dict[str, dict[str, Any]], prefix: str, name: str | None) -> dict[str, Any]:
    """The binding called `name`, else the only one whose protocol starts with `prefix`.

    Raises:
        ConfigError: none (or several, with no name given) match; the bindings are listed.
    """
    if name is not None:
        if name not in bindings:
            raise ConfigError(f"no capability {name!r}; this environment has: "
                              f"{', '.join(sorted(bindings)) or 'none'}")
        return bindings[name]
    found = [b for b in bindings.values() if b["protocol"].startswith(prefix)]
    if len(found) != 1:
        listed = ", ".join(f"{b['name']} ({b['protocol']})" for b in bindings.values()) or "none"
        raise ConfigError(f"{'no' if not found else 'several'} {prefix}* capabilities; "
                          f"bindings: {listed}; name one")
    return found[0]


async def ssh_connect(opener: Opener, binding: dict[str, Any]) -> SSHClientConnection:
    """An asyncssh client connection to an `ssh/2` binding, over a tunnel.

    The host key is pinned from the binding (no trust-on-first-use), and the client key
    comes from the binding's params.

    Raises:
        ProtocolError: the binding's params are invalid (a missing or malformed key).
        InfraError: the ssh handshake or authentication failed.
    """
    import asyncssh

    params = ssh_params(binding)
    try:
        client_key = asyncssh.import_private_key(params.client_key)
        host_key = asyncssh.import_public_key(params.host_pubkey)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ProtocolError(INVALID_REQUEST, f"ssh binding {binding['name']!r} has a key "
                            f"OpenSSH cannot use: {exc}") from exc
    sock = await socket_for(opener, binding["name"])
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                binding["name"], 22, sock=sock, username=params.user, client_keys=[client_key],
                known_hosts=([host_key], [], []),  # pinned: the binding's host key only
                keepalive_interval=30, agent_path=None, config=None,
            ),
            30,
        )
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        sock.close()
        raise InfraError(f"ssh to capability {binding['name']!r} failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    return conn


class LocalPort:
    """A loopback TCP port whose every connection is a fresh tunnel to capability `name`.

    For clients that want a URL (the MCP SDK's HTTP client, CDP and VNC clients). It
    takes any tunnel opener, so it works for every placement, TCP included; it is the
    only loopback forwarder in hud.
    """

    def __init__(self, opener: Opener, name: str) -> None:
        self.opener = opener
        self.name = name
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await self.opener(self.name)
        except Exception:  # noqa: BLE001 - no tunnel: drop this connection, serve the next
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        try:
            await splice(reader, writer, up_reader, up_writer)
        finally:
            self._writers.discard(writer)
            self._writers.discard(up_writer)

    async def stop(self) -> None:
        """Stop listening and close every forwarded connection (their tunnels end too)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()


class _McpSession:
    """`async with mcp_session(...) as session`: an initialized MCP ClientSession."""

    def __init__(self, opener: Opener, binding: dict[str, Any]) -> None:
        self._opener, self._binding = opener, binding
        self._stack: Any = None
        self._port: LocalPort | None = None

    async def __aenter__(self) -> Any:
        import contextlib

        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        path = typed_params(self._binding, McpParams).path
        self._port = LocalPort(self._opener, self._binding["name"])
        port = await self._port.start()
        self._stack = contextlib.AsyncExitStack()
        try:
            read, write, _ = await self._stack.enter_async_context(
                streamable_http_client(f"http://127.0.0.1:{port}{path}"))
            session = await self._stack.enter_async_context(ClientSession(read, write))
            await asyncio.wait_for(session.initialize(), 30)
        except BaseException as exc:
            await self.__aexit__(None, None, None)
            if isinstance(exc, Exception):
                raise InfraError(f"MCP capability {self._binding['name']!r} did not answer: "
                                 f"{type(exc).__name__}: {exc}") from exc
            raise
        return session

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        if self._port is not None:
            await self._port.stop()


def mcp_session(opener: Opener, binding: dict[str, Any]) -> _McpSession:
    """An async context manager yielding an initialized official MCP `ClientSession` for an
    `mcp/...` binding, carried over tunnels.

    Raises:
        ProtocolError: the binding's path is invalid (on entering).
        InfraError: the MCP server did not answer.
    """
    return _McpSession(opener, binding)


class BindingClients(abc.ABC):
    """Mixin: typed clients for the bindings of whatever has `bindings` and `tunnel(name)`
    (a rollout's `RunContext`, an attached `RemoteEnv`)."""

    bindings: dict[str, dict[str, Any]]

    @abc.abstractmethod
    async def tunnel(self, name: str) -> Streams:
        """A raw byte stream to capability `name`."""

    async def ssh(self, name: str | None = None) -> SSHClientConnection:
        """An asyncssh connection to the `ssh/2` capability (`name`, or the only one).

        Raises:
            ConfigError: no such capability.
            ProtocolError: its params are invalid.
            InfraError: the connection failed.
        """
        return await ssh_connect(self.tunnel, pick_binding(self.bindings, "ssh/", name))

    def mcp(self, name: str | None = None) -> _McpSession:
        """`async with x.mcp() as session`: the official MCP ClientSession for the
        `mcp/...` capability (`name`, or the only one).

        Raises:
            ConfigError: no such capability.
        """
        return mcp_session(self.tunnel, pick_binding(self.bindings, "mcp/", name))

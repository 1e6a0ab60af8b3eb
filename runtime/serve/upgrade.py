"""The first phase of `hud connect --mux`: control lines, until the host starts SSH.

A rollout whose agent never opens a tunnel (an env with no capabilities, the oracle, a
replay, a grading-only harness) needs nothing but the control channel, and SSH costs a
`hud connect --mux` process ~150 ms of CPU to import asyncssh plus a key exchange on
each side, per container. So the connection starts plain: what the host writes is the
control channel's newline-delimited JSON, bridged to one control connection of the
daemon, exactly as `hud connect` does.

The first time the host needs a second stream it asks for SSH, at a line boundary with
no control call in flight, with the line `SWITCH`. No JSON-RPC frame can start with
`SSH-` (a frame is a JSON object, and JSON escapes newlines inside strings), so agent
text cannot ask for it. The container stops passing the daemon's bytes on (finishing,
unread, a frame it was in the middle of: the late reply to a call the host gave up on),
answers `SWITCHED` (its leading newline ends any partial line the host holds) and then
waits, silent, for the host's SSH identification string. So the host can drop whatever
came before `SWITCHED` and give SSH a stream that holds nothing else. From then on the
pipes carry the SSH connection of hud.serve.mux, and the control connection the plain
phase had open is the one the host's first control stream gets: the session, and its
task, carry on.

A host that starts with SSH at once (an older hud, or a test) gets the SSH server at
once, as before: the first bytes decide.

The bridge is two threads and no asyncio, like plain `hud connect`. It ends when either
side does: at the end of stdin the daemon connection is closed (the host reads no
answer after closing: a call in flight is not waited for), and when the daemon ends the
connection stdout is closed and the process exits.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading

from hud.stdio import write_all

#: what starts SSH (RFC 4253 §4.2: the identification string)
SSH_PREFIX = b"SSH-"
#: the host's request for SSH, alone on a line
SWITCH = b"SSH-hud-switch\n"
#: the container's answer; nothing follows it until the host's identification string
SWITCHED = b"\nSSH-hud-switched\n"
_CHUNK = 1 << 16


def first_bytes(fd: int = 0) -> bytes:
    """Read stdin (or `fd`) until its first bytes can no longer be the start of `SWITCH`
    (one read, unless they are a short prefix of it), or its end (b"" if it ended at
    once)."""
    data = b""
    while len(data) < len(SWITCH) and SWITCH.startswith(data):
        more = os.read(fd, _CHUNK)
        if not more:
            break
        data += more
    return data


def ssh_at_once(data: bytes) -> bool:
    """Whether the host's first bytes are SSH's own (no plain phase)."""
    return data.startswith(SSH_PREFIX) and not data.startswith(SWITCH)


class _Pump(threading.Thread):
    """Copies the daemon's bytes to stdout (`out`) until the daemon ends the connection
    (then closes `out` and sets `ended`) or `stop()` (at the switch)."""

    def __init__(self, sock: socket.socket, out: int = 1) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.out = out
        self.ended = threading.Event()
        self._stop_r, self._stop_w = os.pipe()
        self.ended_r, self._ended_w = os.pipe()

    def run(self) -> None:
        partial = False  # the last bytes passed on were not a frame's end
        try:
            while True:
                ready, _, _ = select.select([self.sock.fileno(), self._stop_r], [], [])
                if self._stop_r in ready and not partial:
                    return
                data = self.sock.recv(_CHUNK)
                if not data:
                    break
                if self._stop_r not in ready:
                    write_all(self.out, data)
                partial = not data.endswith(b"\n")  # stopping: drop the rest of a frame
        except OSError:
            pass
        with contextlib.suppress(OSError):
            os.close(self.out)
        self.ended.set()
        os.write(self._ended_w, b"x")

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self.join()

    def close(self) -> None:
        for fd in (self._stop_r, self._stop_w, self.ended_r, self._ended_w):
            os.close(fd)


def bridge_until_ssh(sock: socket.socket, first: bytes,
                     fds: tuple[int, int] = (0, 1)) -> tuple[bytes, bool] | None:
    """Bridge the host's control lines (starting with `first`) to the daemon's control
    connection `sock`, and the daemon's answers back, until the host starts SSH; the
    host is on stdin/stdout, or on `fds` (in, out).

    Returns:
        None when either side ended the bridge; else the bytes the host sent from where
        SSH starts on, and whether it asked with `SWITCH` (answered: `SWITCHED` written,
        the bytes are what followed the request). The daemon-to-host copy has stopped,
        and `sock` holds no part of a frame.
    """
    fd_in, fd_out = fds
    pump = _Pump(sock, fd_out)
    pump.start()
    buf, line_start = first, True
    try:
        while True:
            while buf:
                if line_start:
                    if len(buf) < len(SWITCH) and SWITCH.startswith(buf):
                        break  # too few bytes yet to tell a frame from the request
                    if buf.startswith(SWITCH):
                        pump.stop()
                        if pump.ended.is_set():
                            return None
                        write_all(fd_out, SWITCHED)
                        return buf[len(SWITCH):], True
                    if buf.startswith(SSH_PREFIX):  # an SSH client that did not ask
                        pump.stop()
                        return None if pump.ended.is_set() else (buf, False)
                newline = buf.find(b"\n")
                if newline < 0:
                    sock.sendall(buf)
                    buf, line_start = b"", False
                else:
                    sock.sendall(buf[:newline + 1])
                    buf, line_start = buf[newline + 1:], True
            ready, _, _ = select.select([fd_in, pump.ended_r], [], [])
            if pump.ended_r in ready:
                return None  # the daemon ended the connection; stdout is closed
            data = os.read(fd_in, _CHUNK)
            if not data:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                pump.join()
                return None
            buf += data
    except OSError:  # the daemon went away: the pump has told the host (end of stream)
        pump.join()
        return None
    finally:
        pump.close()


def serve_connection(socket_path: str | None, url: str | None, token: str | None,
                     wait: float, fds: tuple[int, int] = (0, 1)) -> None:
    """Serve the multiplexed connection over stdin/stdout (or `fds`: in, out) until it
    ends: control lines first, SSH from when the host starts it, or SSH at once for a
    host that starts with it; streams reach the daemon at `socket_path` or `url`
    (waiting up to `wait` seconds for it to accept).

    Raises:
        DaemonUnavailable: no daemon answers (within `wait`).
        InfraError: the host spoke something other than SSH once SSH was due.
    """
    first = first_bytes(fds[0])
    if not first:
        return
    control = None
    if not ssh_at_once(first):
        from hud.clients.control import open_socket

        control = open_socket(socket_path, url, wait=wait)
        bridged = bridge_until_ssh(control, first, fds)
        if bridged is not None:
            first, asked = bridged
            if asked and not first:
                first = first_bytes(fds[0])  # the host's identification string
        if bridged is None or not first:
            control.close()
            return
        wait = 0.0  # the daemon is up
    _serve_ssh(first, (socket_path, url, token, wait), control, fds)


def _serve_ssh(first: bytes, dialer_args: tuple[str | None, str | None, str | None, float],
               control: socket.socket | None, fds: tuple[int, int]) -> None:
    """The SSH server of hud.serve.mux, its client's first bytes read already."""
    import asyncio
    import ctypes.util

    # asyncssh probes for liboqs (post-quantum kex) with find_library, two `ldconfig -p`
    # runs (~13 ms on every exec); the mux offers curve25519 only, so skip the probe in
    # this process
    find_library = ctypes.util.find_library
    ctypes.util.find_library = lambda name: None if name in ("oqs", "liboqs") \
        else find_library(name)
    try:
        from hud.serve.mux import Dialer, serve_stdio
    finally:
        ctypes.util.find_library = find_library
    asyncio.run(serve_stdio(Dialer(*dialer_args, control=control), first, fds))

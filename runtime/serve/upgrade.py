"""The first phase of `hud connect --mux`: control lines, until the host starts SSH.

A rollout whose agent never opens a tunnel (an env with no capabilities, the oracle, a
replay, a grading-only harness) needs nothing but the control channel, and SSH costs a
`hud connect --mux` process ~150 ms of CPU to import asyncssh plus a key exchange on
each side, per container. So the connection starts plain: what the host writes is the
control channel's newline-delimited JSON, bridged to one control connection of the
daemon, exactly as `hud connect` does. The first time the host needs a second stream it
starts SSH on the same pipes: at a line boundary, with no control call in flight, it
writes SSH's identification string (`SSH-2.0-...`). No JSON-RPC frame can start with
`SSH-` (a frame is a JSON object), so that prefix at the start of a line is the switch.
From then on the pipes carry the SSH connection of hud.serve.mux, and the control
connection the plain phase had open is the one the host's first control stream gets:
the session, and its task, carry on.

A host that starts with SSH at once (an older hud, or a test) gets the SSH server at
once, as before: the first bytes decide.

The bridge is two threads and no asyncio, like plain `hud connect`; the daemon-to-host
thread stops at the switch (the daemon sends nothing unasked, and the host has no call in
flight), so no byte of the daemon's reaches the pipes after the switch.
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
_CHUNK = 1 << 16


def first_bytes() -> bytes:
    """Read stdin until its first bytes say whether the host starts with SSH: at least
    len(SSH_PREFIX) bytes, a newline, or the end (b"" if stdin ended at once)."""
    data = b""
    while len(data) < len(SSH_PREFIX) and b"\n" not in data:
        more = os.read(0, _CHUNK)
        if not more:
            break
        data += more
    return data


def speaks_ssh(data: bytes) -> bool:
    return data.startswith(SSH_PREFIX)


def _daemon_to_stdout(sock: socket.socket, stop: int) -> None:
    """Copy the daemon's bytes to stdout until the daemon ends (then close stdout, so the
    host sees the end) or `stop` becomes readable (the switch: leave the rest unread)."""
    try:
        while True:
            ready, _, _ = select.select([sock.fileno(), stop], [], [])
            if stop in ready:
                return
            data = sock.recv(_CHUNK)
            if not data:
                break
            write_all(1, data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.close(1)


def bridge_until_ssh(sock: socket.socket, first: bytes) -> bytes | None:
    """Bridge the host's control lines (starting with `first`) to the daemon's control
    connection `sock`, and the daemon's answers back, until the host starts SSH.

    Returns:
        The bytes read from the host from the start of `SSH-` on, with the daemon-to-host
        copy stopped and `sock` untouched beyond what was bridged; or None when the host
        closed its side (the daemon's last answers have been passed on by then).
    """
    stop_r, stop_w = os.pipe()
    pump = threading.Thread(target=_daemon_to_stdout, args=(sock, stop_r), daemon=True)
    pump.start()
    buf, line_start = first, True
    try:
        while True:
            while buf:
                if line_start:
                    if len(buf) < len(SSH_PREFIX) and SSH_PREFIX.startswith(buf):
                        break  # too few bytes yet to tell a frame from the switch
                    if speaks_ssh(buf):
                        os.write(stop_w, b"x")
                        pump.join()
                        return buf
                newline = buf.find(b"\n")
                if newline < 0:
                    sock.sendall(buf)
                    buf, line_start = b"", False
                else:
                    sock.sendall(buf[:newline + 1])
                    buf, line_start = buf[newline + 1:], True
            data = os.read(0, _CHUNK)
            if not data:
                if buf:
                    sock.sendall(buf)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                pump.join()
                return None
            buf += data
    except OSError:  # the daemon went away: the pump has told the host (end of stream)
        pump.join()
        return None
    finally:
        os.close(stop_r)
        os.close(stop_w)

"""The daemon serving its one connection on its own stdin/stdout (`HUD_CONNECT=stdio`).

The docker placement starts a rollout's container with `docker run -i --rm` and
`HUD_CONNECT=stdio`, and speaks over the run's own stdin/stdout: the multiplexed
connection of `hud connect --mux` (control lines, then SSH at the first tunnel;
hud.serve.upgrade), served by the daemon itself instead of by a `docker exec`'d process.
That saves a rollout the exec (a runc process in the container and a docker client on
the host, ~55 ms of CPU) and the `hud connect` interpreter's start, and the container's
end is the connection's: when the host closes it (or dies, or its docker client is
killed) the daemon stops, the container exits and docker removes it.

Nothing the daemon starts may inherit the connection: an agent's process holding the
daemon's stdout could write frames to the host. So before anything else the daemon
moves stdin and stdout to private descriptors (non-inheritable, PEP 446), puts
/dev/null on 0 and stderr on 1, and removes `HUD_CONNECT` from its environment.
The image's entrypoint runs its hooks with stdin from /dev/null and stdout on stderr
for the same reason (images/base/entrypoint.sh); images built so carry `CONNECT_LABEL`,
which is how the placement knows it may start them this way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hud.errors import ConfigError

log = logging.getLogger("hud.serve.attached")

#: the environment variable that asks `hud serve` to serve its stdin/stdout
ENV_VAR = "HUD_CONNECT"
#: its one value
STDIO = "stdio"
#: the image label saying the image's daemon and entrypoint do (hud.build.layers sets it)
CONNECT_LABEL = "org.hud.connect"
#: seconds the daemon gets to stop once its connection has ended; then it exits anyway
#: (its container is being discarded: a shutdown hook that hangs must not keep it)
STOP_BOUND = 10.0


def take_stdio() -> tuple[int, int] | None:
    """When `HUD_CONNECT=stdio` asks for it, move this process's stdin and stdout out of
    every child's reach and return them (in, out); else None. `HUD_CONNECT` is removed
    from the environment either way.

    Raises:
        ConfigError: `HUD_CONNECT` has a value other than `stdio`.
    """
    mode = os.environ.pop(ENV_VAR, None)
    if mode is None or mode == "":
        return None
    if mode != STDIO:
        raise ConfigError(f"{ENV_VAR}={mode[:40]!r} is not understood: the one value is "
                          f"{STDIO!r} (serve the connection on stdin/stdout); unset it to "
                          f"serve the control socket only")
    fd_in, fd_out = os.dup(0), os.dup(1)  # os.dup: not inherited by children
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    os.dup2(2, 1)  # print() and a child's stdout land in the log, never on the connection
    return fd_in, fd_out


def serve_in_thread(fds: tuple[int, int], socket_path: Path | None,
                    on_end: Callable[[], None]) -> threading.Thread:
    """Serve the connection on `fds` (from `take_stdio`) to the daemon listening on
    `socket_path`, in a thread; `on_end()` is called once it has ended, whichever side
    ended it, and the process exits `STOP_BOUND` seconds later if it has not by then.

    Raises:
        ConfigError: the daemon has no unix socket to reach (`--socket` was empty).
    """
    if socket_path is None:
        raise ConfigError(f"{ENV_VAR}={STDIO} needs the daemon's unix socket; do not turn "
                          f"it off (--socket)")

    def run() -> None:
        from hud.serve.upgrade import serve_connection

        try:
            serve_connection(str(socket_path), None, None, 0.0, fds)
        except Exception:  # the daemon stops either way; say why the connection ended
            log.exception("the connection on stdin/stdout failed")
        finally:  # the descriptors stay open (the bridge may have closed one: a number
            # closed twice could be another file's by then); the process's exit closes them
            log.info("the connection on stdin/stdout ended; stopping")
            on_end()
        time.sleep(STOP_BOUND)  # a daemon thread: gone with the process if it ends first
        log.error("the daemon did not stop within %gs of its connection's end; exiting",
                  STOP_BOUND)
        os._exit(1)

    thread = threading.Thread(target=run, name="hud-stdio-connection", daemon=True)
    thread.start()
    return thread

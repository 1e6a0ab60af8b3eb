"""The one exception tree of hud.

    HudError                    anything hud raises on purpose
    ├── ConfigError             bad input from the user: a bad argument, file, or module
    │   └── EnvLoadError        the environment module failed to import or has no env
    ├── ProtocolError           a peer sent or answered something off-protocol (has .code)
    │   └── RemoteError         the daemon answered a JSON-RPC error (has .code, .data)
    ├── TaskError               template code raised, or yielded something unusable
    └── InfraError              the machinery failed: no daemon, a dead container, Docker
        ├── DaemonUnavailable   the control socket or TCP endpoint cannot be reached
        └── DockerError         a docker command failed or Docker is not usable

Every message says what went wrong, shows the offending value, and names the fix.
An InfraError is never a task outcome: it must not become a reward of 0.
"""

from __future__ import annotations

from typing import Any


class HudError(Exception):
    """Root of every error hud raises on purpose."""


class ConfigError(HudError):
    """Bad input from the user: an argument, a file, a module."""


class EnvLoadError(ConfigError):
    """The environment could not be loaded; `traceback` holds the formatted import error."""

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback


class ProtocolError(HudError):
    """A frame that breaks the control protocol. `code` is the JSON-RPC error code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class RemoteError(ProtocolError):
    """The daemon answered a request with a JSON-RPC error."""


class TaskError(HudError):
    """Template code raised, or yielded a prompt or reward hud cannot use."""

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback


class InfraError(HudError):
    """Infrastructure failed (daemon, container, Docker). Never a reward of 0."""


class DaemonUnavailable(InfraError):
    """The runtime daemon cannot be reached."""


class DockerError(InfraError):
    """A docker command failed, or Docker is missing or not running."""

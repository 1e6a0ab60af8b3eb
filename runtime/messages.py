"""The control protocol's wire types (DESIGN §4), all in one module.

Newline-delimited JSON, one JSON-RPC 2.0 object per line, UTF-8; the same framing on the
unix socket, TCP and the `hud connect` stdio bridge. A first frame `tunnel.open` turns
the connection into a raw byte pipe to one capability; any other first frame starts a
session (`hello`, `tasks.list`, `tasks.start`, `tasks.grade`, `tasks.cancel`, `bye`).

These are the pydantic models of params and of the manifest, for the daemon and for
reading a manifest on the host. The JSON-RPC envelope (version, error codes, frames,
reading a reply) is `hud.wire`, plain JSON, so that `hud task start` does not pay for
importing pydantic.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROTOCOL_VERSION = "hud/1"

# Frames up to this size are accepted by default; the incumbent stops at 64 KiB lines.
MAX_FRAME_BYTES = 64 * 1024 * 1024

# Binding protocol ids, by capability kind.
BINDING_PROTOCOLS = {
    "ssh": "ssh/2",
    "mcp": "mcp/2025-11-25",
    "cdp": "cdp/1.3",
    "rfb": "rfb/3.8",
    "robot": "openpi/0",
}

SESSION_METHODS = (
    "hello",
    "tasks.list",
    "tasks.start",
    "tasks.grade",
    "tasks.cancel",
    "tasks.solve",
    "bye",
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Request(BaseModel):
    """A JSON-RPC 2.0 request or notification (no `id`)."""

    model_config = ConfigDict(extra="forbid")

    jsonrpc: Literal["2.0"]  # hud.wire.JSONRPC: a Literal needs the value written out
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    id: int | str | None = None


class HelloParams(_Params):
    session_id: str | None = None
    token: str | None = None
    client: str | None = None


class TunnelOpenParams(_Params):
    capability: str
    token: str | None = None


class StartParams(_Params):
    id: str
    args: dict[str, Any] = Field(default_factory=dict)


class GradeParams(_Params):
    answer: Any = None
    id: str | None = None
    session_id: str | None = None


class CancelParams(_Params):
    id: str | None = None
    session_id: str | None = None


class EmptyParams(_Params):
    pass


class Binding(BaseModel):
    """How to reach one capability: `url` is inside the container, reach it via a tunnel.

    A manifest crosses a trust boundary (an image someone else built, read on the host),
    so name, protocol and url are held to a strict grammar here, on both sides: a name
    can land in a shell command line (`hud ssh`'s ProxyCommand), a path or a tool name.
    """

    model_config = ConfigDict(extra="forbid")

    # names and protocol ids of a safe charset; urls of the two schemes a tunnel reaches
    NAME: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
    PROTOCOL: ClassVar[re.Pattern[str]] = re.compile(
        r"[a-z][a-z0-9_-]{0,31}/[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
    TCP_URL: ClassVar[re.Pattern[str]] = re.compile(
        r"tcp://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
        r":(?P<port>[0-9]{1,5})")
    UNIX_URL: ClassVar[re.Pattern[str]] = re.compile(r"unix:(?://)?/[A-Za-z0-9_.@+/-]{1,200}")

    name: str
    protocol: str
    url: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not cls.NAME.fullmatch(value):
            raise ValueError(f"capability name {value[:80]!r} is not allowed: use 1-64 letters, "
                             f"digits, '_', '.' or '-', starting with a letter or digit")
        return value

    @field_validator("protocol")
    @classmethod
    def _check_protocol(cls, value: str) -> str:
        if not cls.PROTOCOL.fullmatch(value):
            raise ValueError(f"binding protocol {value[:80]!r} is not allowed: use KIND/VERSION, "
                             f"e.g. 'ssh/2' or 'mcp/2025-11-25'")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        tcp = cls.TCP_URL.fullmatch(value)
        if tcp is not None and 1 <= int(tcp.group("port")) <= 65535:
            return value
        if cls.UNIX_URL.fullmatch(value):
            return value
        raise ValueError(f"binding url {value[:120]!r} is not allowed: use tcp://HOST:PORT "
                         f"(e.g. tcp://127.0.0.1:2222, tcp://[::1]:2222) or unix:///ABS/PATH")


class TaskInfo(BaseModel):
    """One runnable task as the manifest lists it."""

    slug: str
    id: str
    args: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None


class TemplateInfo(BaseModel):
    """One template: its id and the JSON Schema of its arguments."""

    id: str
    description: str | None = None
    args_schema: dict[str, Any]
    has_solution: bool = False
    #: the daemon's limits for this template's setup and grading (seconds): a client waits
    #: longer than these, so a limit reached in the daemon arrives as the task's own error
    setup_timeout: float | None = None
    grade_timeout: float | None = None


class EnvInfo(BaseModel):
    name: str
    version: str
    #: the hud image layer the environment needs: "base", "browser" or "desktop"
    layer: str = "base"
    #: how many sessions may have a task in progress at once in one running container
    concurrency: int = Field(1, ge=1)


class Manifest(BaseModel):
    """What `hello` answers: everything a harness needs to drive this environment."""

    session_id: str | None = None
    protocol: str = PROTOCOL_VERSION
    env: EnvInfo
    bindings: list[Binding] = Field(default_factory=list)
    tasks: list[TaskInfo] = Field(default_factory=list)
    templates: list[TemplateInfo] = Field(default_factory=list)


PARAMS_BY_METHOD: dict[str, type[_Params]] = {
    "hello": HelloParams,
    "tasks.list": EmptyParams,
    "tasks.start": StartParams,
    "tasks.grade": GradeParams,
    "tasks.cancel": CancelParams,
    "tasks.solve": EmptyParams,
    "bye": EmptyParams,
    "tunnel.open": TunnelOpenParams,
}


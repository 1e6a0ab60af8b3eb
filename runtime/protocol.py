"""The control protocol's wire types (DESIGN §4), all in one module.

Newline-delimited JSON, one JSON-RPC 2.0 object per line, UTF-8; the same framing on the
unix socket, TCP and the `hud connect` stdio bridge. A first frame `tunnel.open` turns
the connection into a raw byte pipe to one capability; any other first frame starts a
session (`hello`, `tasks.list`, `tasks.start`, `tasks.grade`, `tasks.cancel`, `bye`).

The client side (`hud.client`) deliberately does not import this module: it speaks plain
JSON so that `hud task start` does not pay for importing pydantic. The constants below
are duplicated there and a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = "hud/1"
JSONRPC = "2.0"

# Frames up to this size are accepted by default; the incumbent stops at 64 KiB lines.
MAX_FRAME_BYTES = 64 * 1024 * 1024

# JSON-RPC error codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600  # also: "no task in progress", "frame too large", auth required
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602  # also: unknown task, bad task args, unknown session
TASK_ERROR = -32000  # template code raised, or yielded an unusable prompt/reward
ENV_LOAD_ERROR = -32001  # the daemon runs, but the environment module failed to load
CAPABILITY_ERROR = -32002  # a tunnel to a capability could not be opened

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

    jsonrpc: Literal["2.0"]
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
    """How to reach one capability: `url` is inside the container, reach it via a tunnel."""

    model_config = ConfigDict(extra="forbid")

    name: str
    protocol: str
    url: str
    params: dict[str, Any] = Field(default_factory=dict)


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


class EnvInfo(BaseModel):
    name: str
    version: str
    #: the hud image layer the environment needs: "base", "browser" or "desktop"
    layer: str = "base"


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


def result_frame(request_id: int | str | None, result: Any) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "id": request_id, "result": result}


def error_frame(
    request_id: int | str | None, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": JSONRPC, "id": request_id, "error": error}

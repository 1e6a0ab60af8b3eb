"""The control protocol's wire types (DESIGN §4), all in one module.

Newline-delimited JSON, one JSON-RPC 2.0 object per line, UTF-8; the same framing on the
unix socket, TCP and the `hud connect` stdio bridge. A first frame `tunnel.open` turns
the connection into a raw byte pipe to one capability; any other first frame starts a
session (`hello`, `tasks.list`, `tasks.start`, `tasks.grade`, `tasks.cancel`, `bye`).

These are the records of a request, its params and the manifest, for the daemon. They
are plain classes checked by hand rather than pydantic models, because they sit on every
rollout's path: a container's daemon that imports pydantic spends ~40-60 ms more CPU
starting (`bench_eval.py --python-floors`), which is most of what a rollout costs beyond
docker itself. Each field is checked as pydantic's lax mode checks it, with its words
("id: Field required"), and tests/test_messages.py holds these records to the pydantic
models they replaced. The host reads a container's manifest with its own pydantic models
(hud.clients.untrusted), which apply the same grammar for bindings (`check_name`,
`check_protocol`, `check_url`). The JSON-RPC envelope (version, error codes, frames,
reading a reply) is `hud.wire`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from hud.records import (
    REQUIRED,
    Bad,
    Record,
    anything,
    boolean,
    grammar,
    integer,
    mapping,
    number,
    optional,
    positive_int,
    record,
    records,
    text,
)

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

#: a binding's name and protocol id, of a safe charset; its url, of the two schemes a
#: tunnel reaches (a name can land in a shell command line, a path or a tool name)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PROTOCOL = re.compile(r"[a-z][a-z0-9_-]{0,31}/[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
TCP_URL = re.compile(
    r"tcp://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
    r":(?P<port>[0-9]{1,5})")
UNIX_URL = re.compile(r"unix:(?://)?/[A-Za-z0-9_.@+/-]{1,200}")


def check_name(value: str) -> str:
    """`value` as a capability name; ValueError saying the rule when it is not one."""
    if not NAME.fullmatch(value):
        raise ValueError(f"capability name {value[:80]!r} is not allowed: use 1-64 letters, "
                         f"digits, '_', '.' or '-', starting with a letter or digit")
    return value


def check_protocol(value: str) -> str:
    """`value` as a binding protocol id (KIND/VERSION); ValueError otherwise."""
    if not PROTOCOL.fullmatch(value):
        raise ValueError(f"binding protocol {value[:80]!r} is not allowed: use KIND/VERSION, "
                         f"e.g. 'ssh/2' or 'mcp/2025-11-25'")
    return value


def check_url(value: str) -> str:
    """`value` as a binding url (tcp://HOST:PORT or unix:///PATH); ValueError otherwise."""
    tcp = TCP_URL.fullmatch(value)
    if tcp is not None and 1 <= int(tcp.group("port")) <= 65535:
        return value
    if UNIX_URL.fullmatch(value):
        return value
    raise ValueError(f"binding url {value[:120]!r} is not allowed: use tcp://HOST:PORT "
                     f"(e.g. tcp://127.0.0.1:2222, tcp://[::1]:2222) or unix:///ABS/PATH")


def _request_id(value: Any) -> int | str | None:
    """JSON-RPC's id: int, str or null (pydantic's `int | str | None`: True is 1, 1.0 is
    1, "7" stays a string)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        try:
            return integer(value)
        except Bad as exc:
            raise Bad(("int", exc.problems[0][1]), ("str", "Input should be a valid string")
                      ) from None
    raise Bad(("int", "Input should be a valid integer"), ("str", "Input should be a valid "
                                                              "string"))


def _jsonrpc(value: Any) -> str:
    if value != "2.0" or not isinstance(value, str):
        raise Bad(("", "Input should be '2.0'"))
    return "2.0"


class Request(Record):
    """A JSON-RPC 2.0 request or notification (no `id`)."""

    jsonrpc: str
    method: str
    params: dict[str, Any]
    id: int | str | None
    FIELDS = (("jsonrpc", _jsonrpc, REQUIRED), ("method", text, REQUIRED),
              ("params", mapping, dict), ("id", _request_id, None))


_OPTIONAL_STR = optional(text)


class HelloParams(Record):
    session_id: str | None
    token: str | None
    client: str | None
    FIELDS = (("session_id", _OPTIONAL_STR, None), ("token", _OPTIONAL_STR, None),
              ("client", _OPTIONAL_STR, None))


class TunnelOpenParams(Record):
    capability: str
    token: str | None
    FIELDS = (("capability", text, REQUIRED), ("token", _OPTIONAL_STR, None))


class StartParams(Record):
    id: str
    args: dict[str, Any]
    FIELDS = (("id", text, REQUIRED), ("args", mapping, dict))


class GradeParams(Record):
    answer: Any
    id: str | None
    session_id: str | None
    FIELDS = (("answer", anything, None), ("id", _OPTIONAL_STR, None),
              ("session_id", _OPTIONAL_STR, None))


class CancelParams(Record):
    id: str | None
    session_id: str | None
    FIELDS = (("id", _OPTIONAL_STR, None), ("session_id", _OPTIONAL_STR, None))


class EmptyParams(Record):
    pass


class Binding(Record):
    """How to reach one capability: `url` is inside the container, reach it via a tunnel.

    A manifest crosses a trust boundary (an image someone else built, read on the host),
    so name, protocol and url are held to a strict grammar, here and on the host
    (hud.clients.untrusted).
    """

    NAME: ClassVar[re.Pattern[str]] = NAME
    name: str
    protocol: str
    url: str
    params: dict[str, Any]
    FIELDS = (("name", grammar(check_name), REQUIRED),
              ("protocol", grammar(check_protocol), REQUIRED),
              ("url", grammar(check_url), REQUIRED), ("params", mapping, dict))


class TaskInfo(Record):
    """One runnable task as the manifest lists it."""

    slug: str
    id: str
    args: dict[str, Any]
    description: str | None
    EXTRA = "ignore"
    FIELDS = (("slug", text, REQUIRED), ("id", text, REQUIRED), ("args", mapping, dict),
              ("description", _OPTIONAL_STR, None))


class TemplateInfo(Record):
    """One template: its id, the JSON Schema of its arguments, and the daemon's limits
    for its setup and grading (seconds): a client waits longer than these, so a limit
    reached in the daemon arrives as the task's own error."""

    id: str
    description: str | None
    args_schema: dict[str, Any]
    has_solution: bool
    setup_timeout: float | None
    grade_timeout: float | None
    EXTRA = "ignore"
    FIELDS = (("id", text, REQUIRED), ("description", _OPTIONAL_STR, None),
              ("args_schema", mapping, REQUIRED), ("has_solution", boolean, False),
              ("setup_timeout", optional(number), None),
              ("grade_timeout", optional(number), None))


class EnvInfo(Record):
    """The environment: name, version, the hud image layer it needs ("base", "browser"
    or "desktop") and how many sessions may have a task in progress at once in one
    running container."""

    name: str
    version: str
    layer: str
    concurrency: int
    EXTRA = "ignore"
    FIELDS = (("name", text, REQUIRED), ("version", text, REQUIRED), ("layer", text, "base"),
              ("concurrency", positive_int, 1))


class Manifest(Record):
    """What `hello` answers: everything a harness needs to drive this environment."""

    session_id: str | None
    protocol: str
    env: EnvInfo
    bindings: list[Binding]
    tasks: list[TaskInfo]
    templates: list[TemplateInfo]
    EXTRA = "ignore"
    FIELDS = (("session_id", _OPTIONAL_STR, None), ("protocol", text, PROTOCOL_VERSION),
              ("env", record(EnvInfo), REQUIRED), ("bindings", records(Binding), list),
              ("tasks", records(TaskInfo), list),
              ("templates", records(TemplateInfo), list))


PARAMS_BY_METHOD: dict[str, type[Record]] = {
    "hello": HelloParams,
    "tasks.list": EmptyParams,
    "tasks.start": StartParams,
    "tasks.grade": GradeParams,
    "tasks.cancel": CancelParams,
    "tasks.solve": EmptyParams,
    "bye": EmptyParams,
    "tunnel.open": TunnelOpenParams,
}

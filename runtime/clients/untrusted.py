"""A container's manifest read on the host: untrusted input, parsed strictly before use.

An image may have been built by someone else, so every value the host takes from its
manifest is held to a grammar before anything is done with it: binding names, protocols
and urls by the grammar `hud.messages` holds them to in the daemon, and here the params
the host uses, per protocol kind:

    ssh    user (a POSIX login name), host_pubkey (one `TYPE BASE64` line of a known key
           type whose blob names the same type), client_key (one OpenSSH private key
           block), cwd (an absolute path); nothing else (the ssh/2 params are closed)
    mcp    path (an absolute URL path of a safe charset); other keys kept
    rfb    width, height (pixels); other keys kept
    cdp    width, height, max_tabs; other keys kept

Other protocols' params are kept as they are: the host passes them to agents but uses
none of them itself. The manifest's top level and its `env` may grow keys (the protocol
adds them compatibly); `env.concurrency` says how many rollouts one running container
serves at once (default 1).

A bad manifest is a `ProtocolError` that names the source, the field and the value, and
the host uses nothing from it.

`loads` parses any untrusted JSON text (a label, a task file, a lock, a container's
`hud manifest` output): a document nested deeper than `MAX_DEPTH` is a `ValueError` like
any other malformed one, never the `RecursionError` the parser (or a later walk of the
value) would raise.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hud.errors import ProtocolError
from hud.messages import check_name, check_protocol, check_url
from hud.wire import INVALID_REQUEST

LOGIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                  "ecdsa-sha2-nistp521", "ssh-rsa")
HOST_PUBKEY = re.compile(r"(?P<type>[a-z0-9-]{1,32}) (?P<blob>[A-Za-z0-9+/]{16,8192}={0,2})"
                         r"(?: [\x21-\x7e][\x20-\x7e]{0,255})?")
CLIENT_KEY = re.compile(r"-----BEGIN OPENSSH PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{1,128}\n){1,256}"
                        r"-----END OPENSSH PRIVATE KEY-----\n?")
ABS_PATH = re.compile(r"/[\x20-\x7e]{0,4095}")
URL_PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,255}")
PRINTABLE = re.compile(r"[\x20-\x7e\u00a0-\uffff]{0,256}")
MAX_BINDINGS = 64
#: the deepest nesting of arrays and objects `loads` accepts (a task's args included)
MAX_DEPTH = 100
P = TypeVar("P", bound=BaseModel)


class SshParams(BaseModel):
    """The params of an `ssh/*` binding, every one of which the host uses."""

    model_config = ConfigDict(extra="forbid")

    user: str = "agent"
    host_pubkey: str
    client_key: str
    cwd: str | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not LOGIN_NAME.fullmatch(value):
            raise ValueError(f"ssh user {value!r} is not a POSIX login name "
                             f"(letters, digits, '_', '.', '-'; not starting with '-')")
        return value

    @field_validator("host_pubkey")
    @classmethod
    def _host_pubkey(cls, value: str) -> str:
        line = HOST_PUBKEY.fullmatch(value)
        if line is None or line.group("type") not in HOST_KEY_TYPES:
            raise ValueError(f"host_pubkey {_show(value)} is not one OpenSSH public key line "
                             f"('ssh-ed25519 AAAA...', types {', '.join(HOST_KEY_TYPES)})")
        try:
            blob = base64.b64decode(line.group("blob"), validate=True)
            (size,) = struct.unpack(">I", blob[:4])
            named = blob[4:4 + size].decode("ascii")
        except (binascii.Error, struct.error, UnicodeDecodeError):
            named = ""
        if named != line.group("type"):
            raise ValueError(f"host_pubkey {_show(value)} is not a valid {line.group('type')} "
                             f"key (its blob does not decode to one)")
        return value

    @field_validator("client_key")
    @classmethod
    def _client_key(cls, value: str) -> str:
        if not CLIENT_KEY.fullmatch(value):
            raise ValueError(f"client_key ({len(value)} chars, not shown) is not one OpenSSH "
                             f"private key block "
                             f"('-----BEGIN OPENSSH PRIVATE KEY-----' ... base64 lines ...)")
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str | None) -> str | None:
        if value is not None and not ABS_PATH.fullmatch(value):
            raise ValueError(f"cwd {value!r} is not an absolute path of printable characters")
        return value

    def known_hosts_key(self) -> str:
        """`TYPE BASE64` of the host key, without its comment (what known_hosts needs)."""
        line = HOST_PUBKEY.fullmatch(self.host_pubkey)
        assert line is not None  # validated above
        return f"{line.group('type')} {line.group('blob')}"


class McpParams(BaseModel):
    """The params of an `mcp/*` binding: the HTTP path the host's client posts to."""

    model_config = ConfigDict(extra="allow")

    path: str = "/mcp"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        # it is appended to http://127.0.0.1:PORT: '@', '?', '#' or '\\' would redirect it
        if not URL_PATH.fullmatch(value):
            raise ValueError(f"mcp path {value!r} is not an absolute URL path of letters, "
                             f"digits and '._~/-'")
        return value


class ScreenParams(BaseModel):
    """The params of an `rfb/*` or `cdp/*` binding the host reads: sizes."""

    model_config = ConfigDict(extra="allow")

    width: int | None = Field(None, ge=1, le=16384)
    height: int | None = Field(None, ge=1, le=16384)
    max_tabs: int | None = Field(None, ge=0, le=10000)


PARAMS_BY_KIND: dict[str, type[BaseModel]] = {
    "ssh": SshParams,
    "mcp": McpParams,
    "rfb": ScreenParams,
    "cdp": ScreenParams,
}


class HostEnvInfo(BaseModel):
    """The manifest's `env` as the host reads it; later keys are kept."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=256)
    version: str = Field(max_length=256)
    layer: str = Field("base", max_length=64)
    #: rollouts one running container serves at once
    concurrency: int = Field(1, ge=1)

    @field_validator("name", "version", "layer")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not PRINTABLE.fullmatch(value):
            raise ValueError(f"{value!r} holds control characters")
        return value


class HostBinding(BaseModel):
    """A binding as the host reads it: the grammar of `hud.messages` (the daemon's own
    records are not pydantic models), params checked per protocol kind afterwards."""

    model_config = ConfigDict(extra="forbid")

    name: str
    protocol: str
    url: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        return check_protocol(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


class HostManifest(BaseModel):
    """A manifest (`hello`'s answer) as the host reads it."""

    model_config = ConfigDict(extra="allow")

    session_id: str | None = Field(None, max_length=256)
    protocol: str = Field("hud/1", max_length=64)
    env: HostEnvInfo
    bindings: list[HostBinding] = Field(default_factory=list, max_length=MAX_BINDINGS)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    templates: list[dict[str, Any]] = Field(default_factory=list)


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    found = []
    for error in exc.errors():
        where = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] not in ("value_error", "missing"):
            message += f" (got {_show(error.get('input'))})"
        found.append(f"{where.lstrip('.') or 'manifest'}: {message}")
    return found


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:  # no need to walk past the limit
            stack.extend((child, level + 1) for child in children)
    return deepest


class TooDeep(ValueError):
    """Untrusted JSON that nests arrays and objects deeper than `MAX_DEPTH`."""


def loads(text: str | bytes) -> Any:
    """Untrusted JSON text, parsed.

    Raises:
        TooDeep: it nests arrays and objects deeper than `MAX_DEPTH` (a ValueError).
        ValueError: it is not JSON.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        deep = True
    else:
        deep = depth(value) > MAX_DEPTH
    if deep:
        raise TooDeep(f"its arrays and objects nest deeper than {MAX_DEPTH} levels, "
                         f"more than hud reads")
    return value


def parse_manifest(data: Any, source: str) -> dict[str, Any]:
    """The manifest `data` from `source`, validated; what the host may use of it.

    Args:
        data: the decoded JSON of a manifest (a `hello` answer or an image label).
        source: what sent it, for the message, e.g. "container 'run1'".

    Returns:
        The manifest as a dict, with every binding's params normalized by its model.

    Raises:
        ProtocolError: a field is missing or not allowed; the message names the source,
            the field and the value.
    """
    problems: list[str] = []
    if depth(data) > MAX_DEPTH:
        raise ProtocolError(INVALID_REQUEST, f"{source} sent a manifest nested deeper than "
                            f"{MAX_DEPTH} levels, so nothing in it was used; do not run an "
                            f"image you do not trust")
    try:
        manifest = HostManifest.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc)
    else:
        names = [b.name for b in manifest.bindings]
        problems += [f"bindings: capability name {n!r} appears twice"
                     for n in sorted({n for n in names if names.count(n) > 1})]
        for index, binding in enumerate(manifest.bindings):
            model = PARAMS_BY_KIND.get(binding.protocol.split("/", 1)[0])
            if model is None:
                continue
            try:
                binding.params = model.model_validate(binding.params).model_dump(mode="json")
            except ValidationError as exc:
                problems += _problems(exc, f"bindings[{index}].params")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ProtocolError(INVALID_REQUEST, f"{source} sent an invalid manifest, so nothing in "
                            f"it was used: {shown}. Rebuild the image with valid values (a current "
                            f"hud refuses them when it builds), or do not run an image you do "
                            f"not trust")
    return manifest.model_dump(mode="json")


def typed_params(binding: dict[str, Any], model: type[P]) -> P:
    """The params of `binding` as `model` (checked again for bindings that did not come
    through `parse_manifest`).

    Raises:
        ProtocolError: the params are invalid; the message names the binding and field.
    """
    try:
        return model.model_validate(binding.get("params", {}))
    except ValidationError as exc:
        raise ProtocolError(INVALID_REQUEST, f"binding {binding.get('name')!r} has invalid "
                            f"params: {'; '.join(_problems(exc, 'params'))}") from exc


def ssh_params(binding: dict[str, Any]) -> SshParams:
    """The typed params of an `ssh/*` binding.

    Raises:
        ProtocolError: they are invalid.
    """
    return typed_params(binding, SshParams)

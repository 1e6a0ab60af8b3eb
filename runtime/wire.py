"""The JSON-RPC 2.0 envelope of the control protocol: codes, frames, and reading a reply.

This is the one place that knows the envelope: the error codes (with when each is
used), how a request, a result and an error frame look, how a frame becomes bytes, and
how a reply becomes a result or the right error. Both sides use it: the daemon
(`hud.serve.connections`) to answer, and every client (`hud.clients.control`,
`hud.clients.channel`, `hud connect`) to ask and to read the answer.

Plain `json` only, no pydantic: `docker exec run1 hud task start X` imports this on
every call and must stay fast (a layering test keeps it so). The records of the params
and of the manifest are in `hud.messages`.

Reading a reply is strict, because a client that guesses hides a broken peer: a reply
must be a JSON object with `"jsonrpc": "2.0"`, the request's id (or null on an error the
daemon could not tie to a request, such as an oversize frame), and exactly one of
`result` or `error`; an error must carry an integer `code` and a string `message`.
Anything else is a `ProtocolError` that names the peer, the method and what arrived.
"""

from __future__ import annotations

import json
from typing import Any, Final

from hud.errors import ProtocolError, RemoteError

JSONRPC: Final = "2.0"

# Error codes: JSON-RPC 2.0's own five, then ours (-32000 to -32099 are for servers).
#: a frame that is not JSON, not UTF-8, or nested too deeply; a robot message the codec
#: cannot read
PARSE_ERROR: Final = -32700
#: not a JSON-RPC request; also: no task in progress, a frame too large, a token required,
#: too many connections; on the client side, a reply or a manifest that breaks the protocol
INVALID_REQUEST: Final = -32600
#: no such method (the message lists the methods)
METHOD_NOT_FOUND: Final = -32601
#: bad params; also: unknown task, bad task args, unknown or expired session, unknown
#: capability; an action that does not fit a robot's contract, a robot server's refusal
INVALID_PARAMS: Final = -32602
#: a bug in hud, or a reply that could not be encoded as JSON
INTERNAL_ERROR: Final = -32603
#: template code raised, or yielded an unusable prompt or reward
TASK_ERROR: Final = -32000
#: the daemon runs, but the environment module failed to load
ENV_LOAD_ERROR: Final = -32001
#: a capability could not open a tunnel or prepare for a task
CAPABILITY_ERROR: Final = -32002

RequestId = int | str | None

#: how much of an offending reply a ProtocolError quotes
_QUOTE = 200


def request_frame(request_id: int | str, method: str,
                  params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC 2.0 request; `params` defaults to an empty object."""
    return {"jsonrpc": JSONRPC, "id": request_id, "method": method,
            "params": {} if params is None else params}


def tunnel_request(capability: str, token: str | None = None) -> dict[str, Any]:
    """The `tunnel.open` request that turns a fresh connection into a pipe to `capability`."""
    params: dict[str, Any] = {"capability": capability}
    if token:
        params["token"] = token
    return request_frame(1, "tunnel.open", params)


def result_frame(request_id: RequestId, result: Any) -> dict[str, Any]:
    """The reply that carries `result`."""
    return {"jsonrpc": JSONRPC, "id": request_id, "result": result}


def error_frame(request_id: RequestId, code: int, message: str,
                data: Any = None) -> dict[str, Any]:
    """The reply that carries an error; `data` is left out when None."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": JSONRPC, "id": request_id, "error": error}


def encode(frame: dict[str, Any], *, allow_nan: bool = False) -> bytes:
    """One frame as compact UTF-8 JSON plus the newline.

    A string UTF-8 cannot carry (a lone surrogate such as "\\ud800", which JSON can) makes
    the whole frame ASCII with \\u escapes instead, which every JSON parser reads back
    to the same string.

    Raises:
        TypeError: a value is not JSON (an object, a set, a non-string key of a dict).
        ValueError: NaN or an infinity (unless `allow_nan`), or an int too long for JSON.
        RecursionError: nesting too deep to serialize.
    """
    try:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=True, allow_nan=allow_nan)
        return text.encode() + b"\n"


def _quote(raw: bytes | str) -> str:
    text = raw if isinstance(raw, str) else raw.decode(errors="replace")
    return repr(text[:_QUOTE]) + ("..." if len(text) > _QUOTE else "")


def decode_reply(raw: bytes | str, *, method: str, peer: str = "the hud daemon") -> dict[str, Any]:
    """One reply line parsed into a JSON object (not yet checked as a reply).

    Raises:
        ProtocolError: PARSE_ERROR when the line is not JSON; INVALID_REQUEST when it is
            JSON but not an object. The message names `peer`, `method` and the line.
    """
    try:
        reply = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(PARSE_ERROR, f"{peer} answered {method} with a line that is not "
                            f"JSON ({exc}): {_quote(raw)}; is a JSON-RPC 2.0 server on the "
                            f"other end?") from None
    if not isinstance(reply, dict):
        raise ProtocolError(INVALID_REQUEST, f"{peer} answered {method} with a JSON "
                            f"{type(reply).__name__}, not a JSON-RPC 2.0 object: {_quote(raw)}")
    return reply


def _same_id(got: Any, sent: RequestId) -> bool:
    # 1 == True in Python, and a JSON true is no request id: compare the types too
    return type(got) is type(sent) and got == sent


def reply_result(reply: dict[str, Any], request_id: RequestId, *, method: str,
                 peer: str = "the hud daemon") -> Any:
    """The result a reply to request `request_id` carries, or its error raised.

    An error reply with a null id is the answer too: the daemon sends one when it cannot
    tie the error to a request (a frame too large to read, a missing token).

    Raises:
        RemoteError: the reply is a JSON-RPC error; `.code`, `.data` and the message are
            the peer's own.
        ProtocolError: INVALID_REQUEST when the reply is not a JSON-RPC 2.0 reply to this
            request (wrong version, another id, both or neither of result and error, an
            error without an integer code and a string message).
    """
    def broken(why: str) -> ProtocolError:
        text = json.dumps(reply, default=repr)
        return ProtocolError(INVALID_REQUEST, f"{peer} answered {method} with {why}: "
                             f"{_quote(text)}")

    if reply.get("jsonrpc") != JSONRPC:
        raise broken(f'"jsonrpc": {reply.get("jsonrpc")!r} instead of "2.0"')
    if ("result" in reply) == ("error" in reply):
        raise broken("both result and error" if "result" in reply else "neither result nor error")
    reply_id = reply.get("id")
    if "error" in reply:
        if reply_id is not None and not _same_id(reply_id, request_id):
            raise broken(f"an error for request id {reply_id!r}, not {request_id!r}")
        error = reply["error"]
        if not isinstance(error, dict):
            raise broken(f"an error that is a JSON {type(error).__name__}, not an object")
        code, message = error.get("code"), error.get("message")
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
            raise broken("an error without an integer code and a string message")
        raise RemoteError(code, message, error.get("data"))
    if not _same_id(reply_id, request_id):
        raise broken(f"a result for request id {reply_id!r}, not {request_id!r}")
    return reply["result"]


def read_reply(raw: bytes | str, request_id: RequestId, *, method: str,
               peer: str = "the hud daemon") -> Any:
    """`decode_reply` then `reply_result`: one reply line to its result.

    Raises:
        RemoteError: the peer answered with an error.
        ProtocolError: the line is not a JSON-RPC 2.0 reply to this request.
    """
    return reply_result(decode_reply(raw, method=method, peer=peer), request_id,
                        method=method, peer=peer)

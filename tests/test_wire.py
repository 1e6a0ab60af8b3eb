"""hud.wire: request and reply frames, a reply read into its result or the right error."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from hud import wire
from hud.errors import ProtocolError, RemoteError


def test_a_request_frame_has_version_id_method_and_params() -> None:
    """request_frame fills in "jsonrpc": "2.0" and empty params when none are given."""
    assert wire.request_frame(3, "tasks.list") == {
        "jsonrpc": "2.0", "id": 3, "method": "tasks.list", "params": {}}
    assert wire.request_frame("a", "tasks.start", {"id": "t"})["params"] == {"id": "t"}


def test_a_tunnel_request_carries_the_token_only_when_there_is_one() -> None:
    """tunnel.open names the capability; a token rides along only when given."""
    assert wire.tunnel_request("shell")["params"] == {"capability": "shell"}
    assert wire.tunnel_request("shell", "s3cret")["params"] == {"capability": "shell",
                                                                "token": "s3cret"}
    assert wire.tunnel_request("shell")["method"] == "tunnel.open"


def test_an_error_frame_leaves_out_data_when_there_is_none() -> None:
    """error_frame has no "data" key unless data is given."""
    assert wire.error_frame(1, wire.TASK_ERROR, "boom") == {
        "jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "boom"}}
    assert wire.error_frame(None, wire.ENV_LOAD_ERROR, "x", {"traceback": "t"})["error"]["data"] \
        == {"traceback": "t"}


@pytest.mark.parametrize(("name", "code"), [
    ("PARSE_ERROR", -32700), ("INVALID_REQUEST", -32600), ("METHOD_NOT_FOUND", -32601),
    ("INVALID_PARAMS", -32602), ("INTERNAL_ERROR", -32603), ("TASK_ERROR", -32000),
    ("ENV_LOAD_ERROR", -32001), ("CAPABILITY_ERROR", -32002),
])
def test_error_codes_keep_their_wire_values(name: str, code: int) -> None:
    """The codes are the values HUD v6 harnesses and JSON-RPC 2.0 clients expect."""
    assert getattr(wire, name) == code


def test_encode_is_compact_utf8_with_newline() -> None:
    """Frames are compact JSON, UTF-8 (not \\u escapes), newline-terminated."""
    assert wire.encode({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}\n'.encode()


def test_lone_surrogates_fall_back_to_ascii_escapes() -> None:
    """A string UTF-8 cannot carry is sent \\u-escaped, and reads back the same."""
    data = wire.encode({"id": "\ud800", "x": "é"})
    assert data == b'{"id":"\\ud800","x":"\\u00e9"}\n'
    assert json.loads(data) == {"id": "\ud800", "x": "é"}


@pytest.mark.parametrize("value", [math.nan, math.inf, object(), {1, 2}])
def test_values_json_cannot_carry_raise(value: object) -> None:
    """NaN, infinities and non-JSON objects are refused, never written as invalid JSON."""
    with pytest.raises((ValueError, TypeError)):
        wire.encode({"result": value})


def test_allow_nan_writes_nan_for_a_lenient_peer() -> None:
    """With allow_nan, NaN is written as Python's json reads it back."""
    assert math.isnan(json.loads(wire.encode({"answer": math.nan}, allow_nan=True))["answer"])


def test_a_result_reply_gives_its_result() -> None:
    """A reply with the request's id and a result returns the result, null included."""
    assert wire.read_reply(b'{"jsonrpc":"2.0","id":4,"result":{"prompt":"p"}}', 4,
                           method="tasks.start") == {"prompt": "p"}
    assert wire.read_reply('{"jsonrpc":"2.0","id":"x","result":null}', "x", method="bye") is None


def test_an_error_reply_raises_remote_error_with_code_message_and_data() -> None:
    """The server's error frame, encoded and read back, is a RemoteError carrying all three."""
    line = wire.encode(wire.error_frame(2, wire.ENV_LOAD_ERROR, "the environment failed to load",
                                        {"traceback": "Traceback ..."}))
    with pytest.raises(RemoteError, match=r"^the environment failed to load$") as caught:
        wire.read_reply(line, 2, method="hello")
    assert caught.value.code == wire.ENV_LOAD_ERROR
    assert caught.value.data == {"traceback": "Traceback ..."}


def test_an_error_reply_with_a_null_id_is_this_requests_answer() -> None:
    """The daemon answers an oversize frame or a missing token with id null: still raised."""
    line = wire.encode(wire.error_frame(None, wire.INVALID_REQUEST, "this endpoint needs a token"))
    with pytest.raises(RemoteError, match="needs a token") as caught:
        wire.read_reply(line, 1, method="hello")
    assert caught.value.code == wire.INVALID_REQUEST


def test_a_line_that_is_not_json_is_a_parse_error() -> None:
    """Garbage names the peer, the method and the line, with PARSE_ERROR."""
    with pytest.raises(ProtocolError, match=r"the hud daemon answered hello with a line that "
                       r"is not JSON .*'SSH-2.0-OpenSSH") as caught:
        wire.read_reply(b"SSH-2.0-OpenSSH_9.2\r\n", 1, method="hello")
    assert caught.value.code == wire.PARSE_ERROR
    assert not isinstance(caught.value, RemoteError)


def test_a_line_that_is_not_utf8_is_a_parse_error() -> None:
    """Bytes that are not UTF-8 are a PARSE_ERROR, not a UnicodeDecodeError."""
    with pytest.raises(ProtocolError, match="not JSON") as caught:
        wire.read_reply(b'{"jsonrpc":"2.0","id":1,"result":"\xff"}', 1, method="hello",
                        peer="container 'c1'")
    assert caught.value.code == wire.PARSE_ERROR


def test_a_long_garbage_line_is_quoted_only_in_part() -> None:
    """The message quotes the first 200 characters of a long line, then '...'."""
    with pytest.raises(ProtocolError) as caught:
        wire.read_reply(b"x" * 5000, 1, method="hello")
    assert "'" + "x" * 200 + "'..." in str(caught.value) and "x" * 201 not in str(caught.value)


@pytest.mark.parametrize(("line", "kind"), [(b"[1, 2]", "list"), (b'"ok"', "str"),
                                            (b"null", "NoneType"), (b"7", "int")])
def test_json_that_is_not_an_object_is_refused(line: bytes, kind: str) -> None:
    """A JSON value other than an object names its type, with INVALID_REQUEST."""
    with pytest.raises(ProtocolError, match=f"with a JSON {kind}, not a JSON-RPC 2.0 object"
                       ) as caught:
        wire.read_reply(line, 1, method="tasks.list")
    assert caught.value.code == wire.INVALID_REQUEST


@pytest.mark.parametrize(("reply", "why"), [
    ({"id": 1, "result": 1}, '"jsonrpc": None instead of "2.0"'),
    ({"jsonrpc": "1.0", "id": 1, "result": 1}, "\"jsonrpc\": '1.0' instead of \"2.0\""),
    ({"jsonrpc": "2.0", "id": 1}, "neither result nor error"),
    ({"jsonrpc": "2.0", "id": 1, "result": 1, "error": {"code": 1, "message": "m"}},
     "both result and error"),
    ({"jsonrpc": "2.0", "id": 2, "result": 1}, "a result for request id 2, not 1"),
    ({"jsonrpc": "2.0", "id": "1", "result": 1}, "a result for request id '1', not 1"),
    ({"jsonrpc": "2.0", "id": True, "result": 1}, "a result for request id True, not 1"),
    ({"jsonrpc": "2.0", "id": None, "result": 1}, "a result for request id None, not 1"),
    ({"jsonrpc": "2.0", "id": 9, "error": {"code": -32000, "message": "m"}},
     "an error for request id 9, not 1"),
    ({"jsonrpc": "2.0", "id": 1, "error": "boom"}, "an error that is a JSON str, not an object"),
    ({"jsonrpc": "2.0", "id": 1, "error": {"message": "m"}},
     "an error without an integer code and a string message"),
    ({"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "m"}},
     "an error without an integer code"),
    ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": 5}},
     "an error without an integer code and a string message"),
])
def test_a_reply_that_breaks_the_protocol_says_how(reply: dict[str, object], why: str) -> None:
    """Each way a JSON object can fail to be a reply to this request: INVALID_REQUEST, named."""
    with pytest.raises(ProtocolError, match="^container 'c1' answered tasks.grade with "
                       + re.escape(why)) as caught:
        wire.reply_result(reply, 1, method="tasks.grade", peer="container 'c1'")
    assert caught.value.code == wire.INVALID_REQUEST
    assert not isinstance(caught.value, RemoteError)


def test_the_wire_module_imports_no_pydantic_and_no_asyncio() -> None:
    """`import hud.wire` stays plain: `hud task start` imports it on every call."""
    probe = ("import json, sys, hud.wire; "
             "print(json.dumps([m for m in sys.modules if m.split('.')[0] in "
             "('pydantic', 'asyncio', 'rich', 'click')]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []

"""What `hud task start|grade|cancel|list`, `hud manifest` and `hud health` do once their
arguments are parsed: one control connection, one or two calls, the answer printed.

Click-free, so that the click commands (hud.cli.task) and the fast path (hud.cli.fast)
run the very same code: only the parsing differs. Plain `json` and the small control
client (hud.clients.control); no pydantic.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hud.cli.plain import echo, fail, json_text, printable
from hud.clients.control import ControlClient
from hud.errors import HudError


class BadArgs(ValueError):
    """Task arguments on the command line that are not usable; `hint` names the option."""

    def __init__(self, hint: str, message: str) -> None:
        super().__init__(message)
        self.hint = hint
        self.message = message


def parse_args(args_json: str | None, pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Template arguments from `--args JSON` and the `--arg KEY=VALUE` pairs (a pair wins).

    Raises:
        BadArgs: --args is not a JSON object, or a pair has no `=` or no key.
    """
    args: dict[str, Any] = {}
    if args_json:
        try:
            args = json.loads(args_json)
        except ValueError as exc:
            raise BadArgs("--args", f"not JSON ({exc}): {args_json!r}") from exc
        if not isinstance(args, dict):
            raise BadArgs("--args", f"must be a JSON object, got {args_json!r}")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadArgs("--arg", f"expected KEY=VALUE, got {pair!r}")
        args[key] = value
    return args


def echo_json(value: Any) -> None:
    echo(json_text(json.dumps(value, indent=2, ensure_ascii=False)))


def connect(socket_path: str | None, url: str | None, token: str | None) -> ControlClient:
    """A connection to the daemon at the socket or url (see ControlClient.connect).

    Raises:
        DaemonUnavailable: nothing answers there.
    """
    return ControlClient.connect(socket_path=socket_path, url=url, token=token)


def target(name: str | None, session_id: str | None) -> dict[str, Any]:
    """Which parked task a grade/cancel means: by task name, by session, or the only one."""
    params: dict[str, Any] = {}
    if name:
        params["id"] = name
    if session_id:
        params["session_id"] = session_id
    return params


def read_answer(answer: str | None, answer_file: str | None) -> str:
    """The answer: the text of --answer (stdin for `-`), else the --answer-file's content.
    Exactly one of the two is given (the caller checks)."""
    if answer_file is not None:
        with open(answer_file, "rb") as fh:
            return _text(fh.read(), answer_file)
    assert answer is not None
    return _text(sys.stdin.buffer.read(), "stdin") if answer == "-" else answer


def _text(data: bytes, where: str) -> str:
    """`data` as UTF-8 text.

    Raises:
        ConfigError: it is not UTF-8 (the offending byte and its offset are named).
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        from hud.errors import ConfigError

        raise ConfigError(f"the answer on {where} is not UTF-8 text (byte "
                          f"0x{data[exc.start]:02x} at offset {exc.start}); an answer is "
                          f"text: encode binary data first (e.g. base64)") from None


def task_rows(listing: dict[str, Any], image: str | None = None,
              image_id: str | None = None) -> list[dict[str, Any]]:
    """A manifest's tasks as task-file rows (the format hud.eval.taskfile reads back):
    env, id, args, slug, description (when there is one), and the image and its ID
    (when listed from an image)."""
    rows = []
    for item in listing["tasks"]:
        row = {"env": listing["env"]["name"], "id": item["id"], "args": item.get("args", {}),
               "slug": item["slug"]}
        if item.get("description") is not None:
            row["description"] = item["description"]
        row.update({k: v for k, v in (("image", image), ("image_id", image_id)) if v})
        rows.append(row)
    return rows


def print_listing(listing: dict[str, Any], as_json: bool, image: str | None = None,
                  image_id: str | None = None) -> None:
    """The task list: one line per task (slug, args, description), or JSON whose `tasks`
    are task-file rows (`listing` is then a manifest, with its `env`).

    The text comes from the env's author (an image's label: anyone's), so every control,
    bidi and zero-width character in it is shown as its `\\uXXXX` escape: a description
    cannot set the terminal's title, clear it or write its clipboard."""
    if as_json:
        echo_json({"tasks": task_rows(listing, image, image_id),
                   "templates": listing["templates"]})
        return
    for item in listing["tasks"]:
        args = json.dumps(item["args"], ensure_ascii=False) if item["args"] else ""
        fields = [item["slug"], args, item.get("description") or ""]
        echo("\t".join(printable(str(field)) for field in fields if field))


def list_tasks(as_json: bool, socket_path: str | None, url: str | None,
               token: str | None) -> None:
    """`hud task list` against a daemon.

    Raises:
        DaemonUnavailable: nothing answers, or the connection broke.
        RemoteError: the daemon answered an error (unknown task, a template that raised).
        ProtocolError: the daemon's reply is not a JSON-RPC 2.0 reply.
    """
    with connect(socket_path, url, token) as client:
        # JSON rows name their env: the manifest (`hello`) has it, `tasks.list` not
        listing = client.call("hello", {"client": "hud-cli"}) if as_json \
            else client.call("tasks.list")
    print_listing(listing, as_json)


def start(name: str, args: dict[str, Any], as_json: bool, socket_path: str | None,
          url: str | None, token: str | None) -> None:
    """`hud task start`: say hello, start task `name`, print its prompt (or the frame).

    Raises:
        DaemonUnavailable: nothing answers, or the connection broke.
        RemoteError: the daemon answered an error (unknown task, a template that raised).
        ProtocolError: the daemon's reply is not a JSON-RPC 2.0 reply.
    """
    with connect(socket_path, url, token) as client:
        session_id = client.call("hello", {"client": "hud-cli"})["session_id"]
        frame = client.call("tasks.start", {"id": name, "args": args})
    if as_json:
        echo_json({"session_id": session_id, **frame})
    elif isinstance(frame.get("prompt"), str):
        echo(frame["prompt"])
    else:
        echo_json(frame["prompt"])


def grade(name: str | None, answer: str | None, answer_file: str | None,
          session_id: str | None, as_json: bool, socket_path: str | None, url: str | None,
          token: str | None) -> None:
    """`hud task grade`: grade the parked task with the answer, print the reward.

    Raises:
        DaemonUnavailable: nothing answers, or the connection broke.
        RemoteError: the daemon answered an error (unknown task, a template that raised).
        ProtocolError: the daemon's reply is not a JSON-RPC 2.0 reply.
        OSError: the --answer-file cannot be read.
        ConfigError: the answer is not UTF-8 text.
    """
    params = {"answer": read_answer(answer, answer_file), **target(name, session_id)}
    with connect(socket_path, url, token) as client:
        frame = client.call("tasks.grade", params)
    if as_json:
        echo_json(frame)
    else:
        echo(repr(frame["score"]) if isinstance(frame["score"], float) else frame["score"])


def cancel(name: str | None, session_id: str | None, socket_path: str | None,
           url: str | None, token: str | None) -> None:
    """`hud task cancel`: cancel the parked task (its cleanup code runs).

    Raises:
        DaemonUnavailable: nothing answers, or the connection broke.
        RemoteError: the daemon answered an error (unknown task, a template that raised).
        ProtocolError: the daemon's reply is not a JSON-RPC 2.0 reply.
    """
    with connect(socket_path, url, token) as client:
        result = client.call("tasks.cancel", target(name, session_id))
    echo(f"cancelled {result['cancelled']}")


def manifest(socket_path: str | None, url: str | None, token: str | None) -> None:
    """`hud manifest` against a daemon: its hello, as JSON.

    Raises:
        DaemonUnavailable: nothing answers, or the connection broke.
        RemoteError: the daemon answered an error (unknown task, a template that raised).
        ProtocolError: the daemon's reply is not a JSON-RPC 2.0 reply.
    """
    with connect(socket_path, url, token) as client:
        echo_json(client.call("hello", {"client": "hud-cli"}))


def health(socket_path: str | None, url: str | None, token: str | None) -> None:
    """`hud health`: `ok` when the daemon answers and its environment loaded, else exit 1
    saying why."""
    try:
        with connect(socket_path, url, token) as client:
            client.call("tasks.list")
    except HudError as exc:
        fail(f"unhealthy: {exc}")
    echo("ok")

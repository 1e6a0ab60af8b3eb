"""`hud task list|start|grade|cancel`, `hud manifest`, `hud health`: thin socket clients.

`start` parks the task in the daemon and returns; `grade` (a separate process, usually a
separate `docker exec`) adopts the parked session and prints the reward. Nothing here
imports pydantic unless a command needs the library in-process (`manifest --module`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hud.cli.options import connection_options, fail
from hud.clients.control import ControlClient


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _connect(socket_path: str | None, url: str | None, token: str | None) -> ControlClient:
    return ControlClient.connect(socket_path=socket_path, url=url, token=token)


def _parse_args(args_json: str | None, pairs: tuple[str, ...]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if args_json:
        try:
            args = json.loads(args_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON ({exc}): {args_json!r}", param_hint="--args") from exc
        if not isinstance(args, dict):
            raise click.BadParameter(f"must be a JSON object, got {args_json!r}", param_hint="--args")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--arg")
        args[key] = value
    return args


def _label_manifest(image: str) -> dict[str, Any]:
    """The task listing in the `org.hud.manifest` label of a built image, validated."""
    from hud.build.docker import image_labels  # host side, only for --image
    from hud.errors import DockerError

    labels = image_labels(image)
    if "org.hud.manifest" not in labels:
        raise DockerError(f"image {image!r} has no org.hud.manifest label; build it with `hud build`")
    from hud.clients.untrusted import parse_manifest  # an image someone else built: untrusted

    return parse_manifest(json.loads(labels["org.hud.manifest"]), f"image {image!r}")


@click.group()
def task() -> None:
    """List, start, grade and cancel tasks on a running daemon."""


@task.command("list")
@connection_options
@click.option("--image", default=None, help="Read the tasks from a built image's label instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the task list as JSON.")
def list_tasks(socket_path: str | None, url: str | None, token: str | None, image: str | None,
               as_json: bool) -> None:
    """List the tasks (and templates) the environment offers."""
    if image:
        listing = _label_manifest(image)
    else:
        with _connect(socket_path, url, token) as client:
            listing = client.call("tasks.list")
    if as_json:
        _echo_json({"tasks": listing["tasks"], "templates": listing["templates"]})
        return
    for item in listing["tasks"]:
        args = json.dumps(item["args"], ensure_ascii=False) if item["args"] else ""
        click.echo("\t".join(filter(None, [item["slug"], args, item.get("description") or ""])))


@task.command("start")
@click.argument("name")
@click.option("--args", "args_json", default=None, help="Template arguments as a JSON object.")
@click.option("--arg", "pairs", multiple=True, metavar="KEY=VALUE", help="One argument (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole start frame as JSON.")
@connection_options
def start(name: str, args_json: str | None, pairs: tuple[str, ...], as_json: bool,
          socket_path: str | None, url: str | None, token: str | None) -> None:
    """Start task NAME (a slug, or a template id with --args) and print its prompt."""
    args = _parse_args(args_json, pairs)
    with _connect(socket_path, url, token) as client:
        session_id = client.call("hello", {"client": "hud-cli"})["session_id"]
        frame = client.call("tasks.start", {"id": name, "args": args})
    if as_json:
        _echo_json({"session_id": session_id, **frame})
    elif isinstance(frame.get("prompt"), str):
        click.echo(frame["prompt"])
    else:
        _echo_json(frame["prompt"])


def _target(name: str | None, session_id: str | None) -> dict[str, Any]:
    """Which parked task a grade/cancel means: by task name, by session, or the only one."""
    params: dict[str, Any] = {}
    if name:
        params["id"] = name
    if session_id:
        params["session_id"] = session_id
    return params


def _read_answer(answer: str | None, answer_file: str | None) -> str:
    if (answer is None) == (answer_file is None):
        raise click.UsageError("give exactly one of --answer TEXT (or - for stdin) and --answer-file")
    if answer_file is not None:
        with open(answer_file, encoding="utf-8") as fh:
            return fh.read()
    assert answer is not None
    return sys.stdin.read() if answer == "-" else answer


@task.command("grade")
@click.argument("name", required=False)
@click.option("--answer", default=None, help="The agent's answer; - reads it from stdin.")
@click.option("--answer-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Read the answer from a file.")
@click.option("--session", "session_id", default=None, help="Grade this parked session.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole reward frame as JSON.")
@connection_options
def grade(name: str | None, answer: str | None, answer_file: str | None, session_id: str | None,
          as_json: bool, socket_path: str | None, url: str | None, token: str | None) -> None:
    """Grade the started task NAME with the agent's answer and print the reward."""
    params = {"answer": _read_answer(answer, answer_file), **_target(name, session_id)}
    with _connect(socket_path, url, token) as client:
        frame = client.call("tasks.grade", params)
    if as_json:
        _echo_json(frame)
    else:
        click.echo(repr(frame["score"]) if isinstance(frame["score"], float) else frame["score"])


@task.command("cancel")
@click.argument("name", required=False)
@click.option("--session", "session_id", default=None, help="Cancel this parked session.")
@connection_options
def cancel(name: str | None, session_id: str | None, socket_path: str | None, url: str | None,
           token: str | None) -> None:
    """Cancel the started task NAME (its cleanup code runs)."""
    with _connect(socket_path, url, token) as client:
        result = client.call("tasks.cancel", _target(name, session_id))
    click.echo(f"cancelled {result['cancelled']}")


@click.command()
@click.option("--module", "module", default=None,
              help="Load this environment in-process instead of asking a daemon.")
@connection_options
def manifest(module: str | None, socket_path: str | None, url: str | None,
             token: str | None) -> None:
    """Print the environment's manifest as JSON."""
    if module is not None:
        from hud.serve.loader import load_environment

        _echo_json(load_environment(module).manifest().model_dump(mode="json"))
        return
    with _connect(socket_path, url, token) as client:
        _echo_json(client.call("hello", {"client": "hud-cli"}))


@click.command()
@connection_options
def health(socket_path: str | None, url: str | None, token: str | None) -> None:
    """Exit 0 when the daemon answers and its environment loaded; else say why, exit 1."""
    from hud.errors import HudError

    try:
        with _connect(socket_path, url, token) as client:
            client.call("tasks.list")
    except HudError as exc:
        fail(f"unhealthy: {exc}")
    click.echo("ok")

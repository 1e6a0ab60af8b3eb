"""`hud task list|start|grade|cancel`, `hud manifest`, `hud health`: thin socket clients.

`start` parks the task in the daemon and returns; `grade` (a separate process, usually a
separate `docker exec`) adopts the parked session and prints the reward. These are the
click commands (help, usage errors); what each does once parsed is hud.cli.calls, which
the fast path (hud.cli.fast) runs without click for plain arguments. Nothing here imports
pydantic unless a command needs the library in-process (`manifest --module`).
"""

from __future__ import annotations

import json
from typing import Any

import click

from hud.cli import calls
from hud.cli.options import connection_options
from hud.errors import HudError


def _parse_args(args_json: str | None, pairs: tuple[str, ...]) -> dict[str, Any]:
    try:
        return calls.parse_args(args_json, pairs)
    except calls.BadArgs as exc:
        raise click.BadParameter(exc.message, param_hint=exc.hint) from exc


def _label_manifest(image: str) -> tuple[dict[str, Any], str | None]:
    """The manifest in the `org.hud.manifest` label of a built image, validated, and the
    image's ID."""
    from hud.build.docker import inspect_image  # host side, only for --image
    from hud.errors import DockerError

    info = inspect_image(image)
    if info is None:
        raise DockerError(f"no image {image!r} in the local Docker engine; build it first "
                          f"(`hud build`), or load it (`hud images load FILE.tar`)")
    labels = (info.get("Config") or {}).get("Labels") or {}
    if "org.hud.manifest" not in labels:
        raise DockerError(f"image {image!r} has no org.hud.manifest label; build it with `hud build`")
    from hud.clients.untrusted import loads, parse_manifest  # someone else's image: untrusted
    from hud.errors import ConfigError

    try:
        data = loads(labels["org.hud.manifest"])
    except ValueError as exc:  # not JSON, or nested absurdly deep
        raise ConfigError(f"image {image!r}'s org.hud.manifest label is refused ({exc}); "
                          f"rebuild it with `hud build`, or do not use an image you do not "
                          f"trust") from None
    manifest = parse_manifest(data, f"image {image!r}")
    return manifest, info.get("Id")


def _export(source: str, output: str, patterns: tuple[str, ...]) -> None:
    """`hud task export` (host side: it reads images, containers, lock and task files)."""
    from hud.eval.taskset import Taskset

    taskset = Taskset.from_source(source)
    if patterns:
        try:
            taskset = taskset.filter(patterns)
        except HudError as exc:
            raise click.BadParameter(str(exc), param_hint="--task") from None
    if output == "-":
        for row in taskset.rows():
            click.echo(json.dumps(row.dump(), ensure_ascii=False))
    else:
        taskset.to_file(output)
    images = ", ".join(f"{i.ref} ({(i.id or '?')[:19]})" for i in taskset.images)
    click.echo(f"exported {len(taskset)} tasks{f' of image {images}' if images else ''} to "
               f"{'stdout' if output == '-' else output}", err=True)


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
        manifest, image_id = _label_manifest(image)
        calls.print_listing(manifest, as_json, image=image, image_id=image_id)
    else:
        calls.list_tasks(as_json, socket_path, url, token)


@task.command("export")
@click.argument("source")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE",
              help="The task file to write: JSON Lines (.json: a JSON list); - is stdout.")
@click.option("--task", "patterns", multiple=True, metavar="PATTERN",
              help="Only these tasks (repeatable), selected as `hud eval --task` does: a "
                   "slug, else a template id, else a glob over slugs.")
def export(source: str, output: str, patterns: tuple[str, ...]) -> None:
    """Write the tasks of SOURCE as a task file that `hud eval FILE.jsonl` runs.

    SOURCE is what `hud eval` takes: an image (IMAGE or docker:IMAGE), a running
    container, tcp://HOST:PORT, an env directory (built: its hud.lock.json), tasks.py or
    a task file. Each line is one task: {"env", "id", "args", "slug", "image",
    "image_id"}, the image and the ID it had when listed, so `hud eval` can warn when
    the image has changed since."""
    _export(source, output, patterns)


@task.command("start")
@click.argument("name")
@click.option("--args", "args_json", default=None, help="Template arguments as a JSON object.")
@click.option("--arg", "pairs", multiple=True, metavar="KEY=VALUE", help="One argument (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole start frame as JSON.")
@connection_options
def start(name: str, args_json: str | None, pairs: tuple[str, ...], as_json: bool,
          socket_path: str | None, url: str | None, token: str | None) -> None:
    """Start task NAME (a slug, or a template id with --args) and print its prompt."""
    calls.start(name, _parse_args(args_json, pairs), as_json, socket_path, url, token)


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
    if (answer is None) == (answer_file is None):
        raise click.UsageError("give exactly one of --answer TEXT (or - for stdin) and --answer-file")
    calls.grade(name, answer, answer_file, session_id, as_json, socket_path, url, token)


@task.command("cancel")
@click.argument("name", required=False)
@click.option("--session", "session_id", default=None, help="Cancel this parked session.")
@connection_options
def cancel(name: str | None, session_id: str | None, socket_path: str | None, url: str | None,
           token: str | None) -> None:
    """Cancel the started task NAME (its cleanup code runs)."""
    calls.cancel(name, session_id, socket_path, url, token)


@click.command()
@click.option("--module", "module", default=None,
              help="Load this environment in-process instead of asking a daemon.")
@connection_options
def manifest(module: str | None, socket_path: str | None, url: str | None,
             token: str | None) -> None:
    """Print the environment's manifest as JSON."""
    if module is not None:
        from hud.serve.loader import load_environment

        calls.echo_json(load_environment(module).manifest().model_dump(mode="json"))
        return
    calls.manifest(socket_path, url, token)


@click.command()
@connection_options
def health(socket_path: str | None, url: str | None, token: str | None) -> None:
    """Exit 0 when the daemon answers and its environment loaded; else say why, exit 1."""
    calls.health(socket_path, url, token)

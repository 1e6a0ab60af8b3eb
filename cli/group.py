"""The `hud` click group: subcommands that load on first use, errors reported once.

Loading every command module up front would import pydantic, rich and Docker helpers
just to send one line to the control socket, so each command lives in its own module and
is imported only when invoked (or for --help). The per-exec commands with plain
arguments do not come here at all (hud.cli.main runs them through hud.cli.fast).

The group also reports errors, once for every command (those of `hud task` and
`hud images` too): a HudError becomes `error: ...` on stderr and exit 1 (see
`hud.cli.plain.report`); click's usage errors keep exit 2.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from hud.cli.plain import report
from hud.errors import HudError

# command name -> (module, attribute, one-line help shown in `hud --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("hud.cli.serve", "serve", "Run the runtime daemon for an environment."),
    "task": ("hud.cli.task", "task", "List, start, grade and cancel tasks on a running daemon."),
    "manifest": ("hud.cli.task", "manifest", "Print the manifest of a running daemon."),
    "connect": ("hud.cli.connect", "connect", "Bridge stdin/stdout to the control channel."),
    "health": ("hud.cli.task", "health", "Exit 0 when the daemon answers and its env loaded."),
    "eval": ("hud.cli.eval", "eval_command", "Run tasks with an agent; rewards, traces, groups."),
    "jobs": ("hud.cli.eval", "jobs", "List eval jobs in the local trace store."),
    "trace": ("hud.cli.eval", "trace", "Render one rollout's trace."),
    "view": ("hud.cli.view", "view", "Browse jobs, runs and comparisons in a local web viewer."),
    "prune": ("hud.cli.eval", "prune", "Remove containers left by killed eval jobs."),
    "ssh": ("hud.cli.ssh", "ssh", "Open an ssh session in a container's workspace."),
    "build": ("hud.cli.build", "build", "Build an environment's Docker image."),
    "images": ("hud.cli.images", "images", "Bootstrap, build, list, save and load hud images."),
    "init": ("hud.cli.init", "init", "Scaffold a new environment from a template."),
    "harbor": ("hud.cli.harbor", "harbor", "Import Harbor tasks as a hud env; export them back."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used, and
    reports the HudError that ends any command it runs."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HudError as exc:
            report(exc)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr, _ = COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hud-python", prog_name="hud")
def cli() -> None:
    """hud: build, serve, run and grade RL environments for AI agents, offline."""

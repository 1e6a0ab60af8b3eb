"""`hud harbor import` / `hud harbor export`: Harbor task folders in and out (hud.harbor).

    hud harbor import TASK_DIR... -o ENV     one hud env from Harbor tasks sharing an image
    hud build ENV                            the tasks' image + hud's runtime + the tasks
    hud eval ENV oracle                      solution/solve.sh, graded by tests/test.sh
    hud harbor export ENV -o DIR             the Harbor task folders back

stdout carries the result (what was written, or one JSON document with --json); notes
and refusals go to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def harbor() -> None:
    """Import Harbor tasks as a hud environment, and export them back."""


@harbor.command("import")
@click.argument("task_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="The env directory to create (new, or empty).")
@click.option("--name", default=None, help="The env's name [default: the output folder's].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
def import_command(task_dirs: tuple[str, ...], output: str, name: str | None,
                   as_json: bool) -> None:
    """Turn Harbor task folders (task.toml, instruction.md, environment/, tests/test.sh,
    solution/solve.sh) into one hud env directory; they must share one environment."""
    from hud.harbor.importer import import_tasks

    result = import_tasks(task_dirs, output, name=name)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        click.echo(json.dumps({"env_dir": str(result.env_dir),
                               **result.spec.model_dump(mode="json"), "notes": result.notes},
                              indent=2))
        return
    click.echo(f"env      {result.env_dir} ({result.spec.name})")
    click.echo(f"tasks    {len(result.spec.tasks)}: {', '.join(result.spec.tasks)}")
    click.echo(f"next     hud build {result.env_dir} && hud eval {result.env_dir} oracle")


@harbor.command("export")
@click.argument("env_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="The folder to write one Harbor task folder per task into (new, or empty).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
def export_command(env_dir: str, output: str, as_json: bool) -> None:
    """Write one Harbor task folder per task of ENV_DIR that Harbor's format can express
    (tasks imported from Harbor); every other task is named with the reason it cannot."""
    from hud.harbor.exporter import export_env

    result = export_env(Path(env_dir), Path(output))
    for slug, reason in result.refused.items():
        click.echo(f"refused: {slug}: {reason}", err=True)
    if as_json:
        click.echo(json.dumps({"written": [str(p) for p in result.written],
                               "refused": result.refused}, indent=2))
        return
    for path in result.written:
        click.echo(f"wrote    {path}")

"""`hud init NAME [--template T]`: scaffold an environment (thin over hud.build.scaffold)."""

from __future__ import annotations

import click


@click.command()
@click.argument("name", required=False)
@click.option("-t", "--template", "template", default="coding", show_default=True,
              help="Template to start from (see --list).")
@click.option("--list", "list_only", is_flag=True, help="List the templates and exit.")
def init(name: str | None, template: str, list_only: bool) -> None:
    """Create the environment directory NAME from a template.

    The environment is named after the directory; `hud build NAME` then makes an image
    with that name.
    """
    from hud.build.scaffold import scaffold, templates

    if list_only:
        for key, meta in templates().items():
            click.echo(f"{key}\t{meta.description}")
        return
    if not name:
        raise click.UsageError("missing NAME (the new directory), or pass --list")
    target, meta = scaffold(name, template)
    env_name = target.resolve().name
    click.echo(f"created {target} from template {meta.key!r}: {meta.description}")
    click.echo("next:")
    click.echo(f"    cd {target} && hud build .")
    click.echo(f"    docker run -d --name run1 {env_name}")
    click.echo(f"    docker exec run1 hud task start {meta.example_task}")

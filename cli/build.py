"""`hud build [DIR]`: build an environment's image (thin over hud.build.env_image).

Progress goes to stderr: a rich spinner on a terminal (when rich is installed; rich is a
host-only dependency and is imported only here), plain lines otherwise. The result goes
to stdout: a summary, or one JSON document with --json.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator

import click


@contextlib.contextmanager
def progress(quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """Yield a `notify(message)` that shows build progress on stderr."""
    if quiet:
        yield lambda _message: None
        return
    started = time.monotonic()
    if sys.stderr.isatty():
        try:
            from rich.console import Console
        except ImportError:  # rich is optional: plain lines below
            pass
        else:
            console = Console(stderr=True)
            with console.status("starting") as status:
                def notify(message: str) -> None:
                    console.print(f"[{time.monotonic() - started:6.1f}s] {message}",
                                  markup=False, highlight=False)
                    status.update(message, spinner="dots")

                yield notify
            return

    def plain(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)

    yield plain


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("-t", "--tag", default=None, help="Image name [default: the environment's name].")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer without Docker's cache.")
@click.option("--base-image", default=None, envvar="HUD_BASE_IMAGE",
              help="Root image: any local image (not Debian 12: the runtime is carried in, "
                   "self-contained) [default: debian:bookworm-slim if present, else a "
                   "bootstrapped hud-rootfs:bookworm].")
@click.option("--pull/--no-pull", default=None,
              help="May hud pull the root image (the default one, or a --base-image that is "
                   "not local) from a registry? [default: no, bootstrap offline; HUD_PULL=1 "
                   "to allow]")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
def build(directory: str, tag: str | None, no_cache: bool, base_image: str | None,
          pull: bool | None, as_json: bool) -> None:
    """Build the environment in DIRECTORY (default: .) into a Docker image.

    Builds the hud layers it needs on first use, validates the environment inside the
    image, labels the image with the manifest and writes DIRECTORY/hud.lock.json.
    """
    from hud.build.env_image import LOCK_FILE, build_env

    with progress(quiet=False) as notify:
        result = build_env(directory, tag=tag, no_cache=no_cache, base_image=base_image,
                           pull=pull, notify=notify)
    if as_json:
        click.echo(json.dumps(result.lock(), indent=2))
        return
    click.echo(f"image    {result.tag} ({result.image_id[7:19]}, {result.size_mb:.0f} MB, "
               f"FROM {result.layers[result.layer]})")
    click.echo(f"tasks    {len(result.tasks)}: "
               + ", ".join(t["slug"] for t in result.tasks[:6])
               + (" ..." if len(result.tasks) > 6 else ""))
    click.echo(f"lock     {directory.rstrip('/')}/{LOCK_FILE}")
    click.echo(f"time     {result.seconds:.1f}s")
    click.echo(f"next     docker run -d --name run1 {result.tag} && "
               f"docker exec run1 hud task list")

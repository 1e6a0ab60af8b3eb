"""`hud images ...`: bootstrap, build, list, save, load and prune the hud layers.

Thin over hud.build.rootfs and hud.build.layers. Results on stdout (`--json` for one JSON
document), progress on stderr.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from hud.cli.build import progress


@click.group()
def images() -> None:
    """Bootstrap, build, list, save, load and prune hud's Docker images."""


@images.command("bootstrap")
@click.option("--suite", default="bookworm", show_default=True,
              help="Debian suite (bookworm for hud's layers; e.g. bullseye for a root of "
                   "your own, used with --base-image).")
@click.option("--mirror", default=None, metavar="URL",
              help="Debian mirror [default: the host's apt sources].")
@click.option("-t", "--tag", default=None, help="Image tag [default: hud-rootfs:SUITE].")
def bootstrap_command(suite: str, mirror: str | None, tag: str | None) -> None:
    """Build a Debian root image with debootstrap + docker import (no registry needed)."""
    from hud.build.rootfs import bootstrap, default_mirror

    source = mirror or default_mirror()
    with progress() as notify:
        notify(f"debootstrap {suite} (minbase) from {source}")
        made = bootstrap(suite, source, tag)
    click.echo(made)


@images.command("build")
@click.argument("layer", default="all",
                type=click.Choice(["base", "browser", "desktop", "all"]))
@click.option("--rebuild", is_flag=True, help="Build even when the layer is current.")
@click.option("--no-cache", is_flag=True, help="Build without Docker's layer cache.")
@click.option("--base-image", default=None, envvar="HUD_BASE_IMAGE",
              help="Root image for the base layer: any local image (not Debian 12: the "
                   "runtime is carried in; base only) [default: debian:bookworm-slim if "
                   "present, else a bootstrapped hud-rootfs:bookworm].")
@click.option("--pull/--no-pull", default=None,
              help="May hud pull the root image from a registry? [default: no]")
@click.option("--json", "as_json", is_flag=True, help="Print the layers as JSON.")
def build_command(layer: str, rebuild: bool, no_cache: bool, base_image: str | None,
                  pull: bool | None, as_json: bool) -> None:
    """Build LAYER (and the layers under it); `all` builds base, browser and desktop."""
    from hud.build.layers import ensure_layers

    with progress() as notify:
        results = ensure_layers("desktop" if layer == "all" else layer, rebuild=rebuild,
                                no_cache=no_cache, base_image=base_image, pull=pull,
                                notify=notify)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2))
        return
    for r in results:
        state = f"built in {r.seconds:.1f}s" if r.built else "up to date"
        click.echo(f"{r.tag}\t{r.image_id[7:19]}\t{state}")


@images.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the images as JSON.")
def list_command(as_json: bool) -> None:
    """List hud's images: root filesystems, layers, and built environments."""
    from hud.build.layers import list_images

    rows = list_images()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max([40, *(len(row["image"]) + 2 for row in rows)])  # carried tags run long
    for row in rows:
        click.echo(f"{row['kind']:<7}{row['image']:<{width}}{row['id']:<14}{row['size']:>9}  "
                   f"{row['created']}")


@images.command("save")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Tarball to write.")
@click.argument("refs", nargs=-1)
def save_command(output: str, refs: tuple[str, ...]) -> None:
    """Save images (default: this version's hud layers) to one tarball for another host."""
    from hud.build.layers import save

    saved = save(Path(output), list(refs) or None)
    click.echo(f"saved {', '.join(saved)} to {output}")


@images.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
def load_command(file: str) -> None:
    """Check and load a tarball made by `hud images save`."""
    from hud.build.layers import load

    for name in load(Path(file)):
        click.echo(name)


@images.command("prune")
@click.option("--all", "everything", is_flag=True,
              help="Also remove this version's layers and the bootstrapped root images.")
def prune_command(everything: bool) -> None:
    """Remove hud layers of other hud versions (and dangling hud layers)."""
    from hud.build.layers import prune

    removed = prune(everything)
    click.echo("\n".join(removed) if removed else "nothing to remove")

"""The hud image layers: names, building them in order, listing, save/load, prune.

    hud-rootfs:bookworm     optional: a debootstrapped Debian (hud.build.rootfs), no registry
    hud-base:<version>      FROM a Debian root + python3, tini, the hud runtime, user agent
    hud-browser:<version>   FROM hud-base + Chromium and fonts
    hud-desktop:<version>   FROM hud-browser + Xvnc, openbox, xdotool
    <env image>             FROM the layer the environment needs + its files (hud.build.env_image)

Design decisions:
- Tags follow the installed hud version, so an upgrade never runs an old runtime. Within
  one version a layer is also rebuilt when the installed hud changed (the label
  `org.hud.source` holds the source fingerprint) or its parent image changed
  (`org.hud.parent` holds the parent's id); Docker's layer cache keeps that cheap.
- Offline first: the default root is `debian:bookworm-slim` when the engine already has
  it, else the bootstrapped `hud-rootfs:bookworm`, bootstrapped on first use with a
  one-line notice. hud contacts a registry only when asked (`pull=True`, `--pull`,
  `HUD_PULL=1`, or an explicit base image that is not present locally).
- No wheel is left in a layer: the base layer's wheelhouse lives only in throwaway build
  stages (a multi-stage Dockerfile; the classic builder has no `RUN --mount`).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hud import __version__
from hud.build.assets import asset_dir
from hud.build.docker import build, check, docker, ensure_engine, inspect_image
from hud.build.rootfs import bootstrap, rootfs_tag
from hud.build.wheelhouse import fingerprint, make_wheelhouse
from hud.errors import ConfigError, DockerError

LAYERS = ("base", "browser", "desktop")
PARENT: dict[str, str | None] = {"base": None, "browser": "base", "desktop": "browser"}
DEFAULT_BASE = "debian:bookworm-slim"
LAYER_LABEL = "org.hud.layer"
VERSION_LABEL = "org.hud.version"
SOURCE_LABEL = "org.hud.source"
PARENT_LABEL = "org.hud.parent"
MANIFEST_LABEL = "org.hud.manifest"

Notify = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class LayerResult:
    """One layer after `ensure_layers`: its tag and id, and whether it was (re)built."""

    layer: str
    tag: str
    image_id: str
    built: bool
    seconds: float


def layer_tag(layer: str, version: str = __version__) -> str:
    """`hud-<layer>:<version>`.

    Raises:
        ConfigError: `layer` is not one of base, browser, desktop.
    """
    if layer not in LAYERS:
        raise ConfigError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
    return f"hud-{layer}:{version}"


def chain(layer: str) -> list[str]:
    """The layers `layer` is built on, root first, ending with `layer` itself."""
    layer_tag(layer)
    out: list[str] = []
    current: str | None = layer
    while current is not None:
        out.insert(0, current)
        current = PARENT[current]
    return out


def resolve_base_image(base_image: str | None = None, pull: bool | None = None,
                       notify: Notify = _quiet) -> str:
    """The root image the base layer is built FROM, bootstrapping one when needed.

    Raises:
        DockerError: an explicit base image is neither local nor pullable.
        ConfigError / InfraError: bootstrapping failed (see hud.build.rootfs.bootstrap).
    """
    pull = os.environ.get("HUD_PULL") == "1" if pull is None else pull
    explicit = base_image or os.environ.get("HUD_BASE_IMAGE")
    if explicit:
        if inspect_image(explicit) is None:
            done = docker("pull", explicit, timeout=600)
            if not done.ok:
                raise DockerError(
                    f"base image {explicit!r} is not in the local engine and cannot be pulled "
                    f"({done.tail(2)}); bootstrap one offline with `hud images bootstrap` and "
                    f"pass --base-image {rootfs_tag()}, or `hud images load FILE`")
        return explicit
    for candidate in (DEFAULT_BASE, rootfs_tag()):
        if inspect_image(candidate) is not None:
            return candidate
    if pull and docker("pull", DEFAULT_BASE, timeout=600).ok:
        return DEFAULT_BASE
    notify(f"{DEFAULT_BASE} is not available locally: bootstrapping {rootfs_tag()} from "
           f"Debian packages (debootstrap, about a minute, once)")
    return bootstrap()


def _parent_ref(layer: str, base_image: str | None, pull: bool | None, notify: Notify) -> str:
    parent = PARENT[layer]
    if parent is None:
        return resolve_base_image(base_image, pull, notify)
    return layer_tag(parent)


def is_current(layer: str, parent_id: str | None = None) -> bool:
    """Whether `hud-<layer>:<version>` exists and was built from this hud (and parent)."""
    info = inspect_image(layer_tag(layer))
    if info is None:
        return False
    labels = (info.get("Config") or {}).get("Labels") or {}
    if labels.get(SOURCE_LABEL) != fingerprint():
        return False
    return parent_id is None or labels.get(PARENT_LABEL) == parent_id


def build_layer(layer: str, *, base_image: str | None = None, no_cache: bool = False,
                pull: bool | None = None, notify: Notify = _quiet,
                tag: str | None = None) -> LayerResult:
    """Build one layer from the shipped `images/<layer>/` onto its parent (which must exist,
    except the root image, which is resolved or bootstrapped). `tag` overrides the
    standard `hud-<layer>:<version>` (for trying a layer on another root).

    Raises:
        DockerError: the build failed (the failing step and its output tail) or Docker is down.
        InfraError: the wheelhouse could not be made.
    """
    tag = tag or layer_tag(layer)
    parent = _parent_ref(layer, base_image, pull, notify)
    parent_info = inspect_image(parent)
    if parent_info is None:
        raise DockerError(f"cannot build {tag}: its parent {parent} does not exist; run "
                          f"`hud images build {layer}` (it builds the parents first)")
    started = time.monotonic()
    context = Path(tempfile.mkdtemp(prefix=f"hud-{layer}-ctx-"))
    try:
        shutil.copytree(asset_dir("images") / layer, context, dirs_exist_ok=True)
        if layer == "base":
            notify("preparing the wheelhouse (hud wheel + dependencies)")
            # two folders, installed in separate stages (see images/base/Dockerfile)
            make_wheelhouse(context / "wheelhouse", hud_dest=context / "hud-wheel")
        notify(f"building {tag} FROM {parent}")
        image_id = build(context, tag, no_cache=no_cache, build_args={"BASE_IMAGE": parent},
                         labels={LAYER_LABEL: layer, VERSION_LABEL: __version__,
                                 SOURCE_LABEL: fingerprint(), PARENT_LABEL: parent_info["Id"]})
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return LayerResult(layer, tag, image_id, True, round(time.monotonic() - started, 1))


def ensure_layers(layer: str, *, rebuild: bool = False, no_cache: bool = False,
                  base_image: str | None = None, pull: bool | None = None,
                  notify: Notify = _quiet) -> list[LayerResult]:
    """Make sure `layer` and every layer under it exist and are current; build what is not.

    Raises:
        DockerError: Docker is down or a build failed.
        InfraError / ConfigError: bootstrapping or the wheelhouse failed.
    """
    ensure_engine()
    results: list[LayerResult] = []
    parent_id: str | None = None
    if base_image:
        parent_id = (inspect_image(resolve_base_image(base_image, pull, notify)) or {}).get("Id")
    for name in chain(layer):
        if not rebuild and not no_cache and is_current(name, parent_id):
            info = inspect_image(layer_tag(name)) or {}
            results.append(LayerResult(name, layer_tag(name), info.get("Id", ""), False, 0.0))
        else:
            results.append(build_layer(name, base_image=base_image, no_cache=no_cache,
                                       pull=pull, notify=notify))
        parent_id = results[-1].image_id
    return results


def list_images() -> list[dict[str, str]]:
    """hud's images in the local engine: the root filesystems, the layers, env images.

    Raises:
        DockerError: Docker is down.
    """
    ensure_engine()
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    # Env images inherit the layer labels, so they are claimed first.
    queries = (("env", ["--filter", f"label={MANIFEST_LABEL}"]),
               ("layer", ["--filter", f"label={LAYER_LABEL}"]),
               ("rootfs", ["--filter", f"reference={rootfs_tag('*')}"]))
    for kind, filters in queries:
        done = check("images", *filters, "--format", "{{json .}}", what="docker images")
        for line in done.stdout.splitlines():
            item = json.loads(line)
            ref = f"{item['Repository']}:{item['Tag']}"
            if ref in seen or item["Repository"] == "<none>":
                continue
            if kind == "layer" and item["Repository"] not in {f"hud-{n}" for n in LAYERS}:
                continue
            seen.add(ref)
            rows.append({"kind": kind, "image": ref, "id": item["ID"], "size": item["Size"],
                         "created": item["CreatedSince"]})
    return rows


def save(output: Path, refs: list[str] | None = None) -> list[str]:
    """Write images (default: this version's hud layers that exist) to one tarball.

    Raises:
        ConfigError: nothing to save.
        DockerError: `docker save` failed.
    """
    ensure_engine()
    refs = refs or [layer_tag(n) for n in LAYERS if inspect_image(layer_tag(n)) is not None]
    if not refs:
        raise ConfigError("no hud images to save; build them first with `hud images build`")
    check("save", "-o", str(output), *refs, timeout=1800, what=f"docker save -o {output}")
    return refs


def verify_archive(path: Path) -> None:
    """Check that `path` is a complete image tarball (as `docker save` writes it).

    Raises:
        ConfigError: it is missing, truncated, or not an image archive.
    """
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    size = path.stat().st_size
    fix = "copy it again from the source host (made with `hud images save -o FILE`)"
    try:
        with tarfile.open(path, "r:") as tar:
            names = set()
            for member in tar:
                names.add(member.name)
                if member.isfile() and member.offset_data + member.size > size:
                    raise ConfigError(f"{path} is truncated ({size} bytes; {member.name} "
                                      f"needs {member.offset_data + member.size}); {fix}")
    except tarfile.TarError as exc:
        what = "is truncated" if "end of data" in str(exc) else "is not an image archive"
        raise ConfigError(f"{path} {what} ({exc}); {fix}") from exc
    if "manifest.json" not in names:
        raise ConfigError(f"{path} is not an image archive (no manifest.json); {fix}")


def load(path: Path) -> list[str]:
    """Verify and load an image tarball; return the loaded image names.

    Raises:
        ConfigError: the file is truncated or not an image archive.
        DockerError: `docker load` failed.
    """
    verify_archive(path)
    ensure_engine()
    done = check("load", "-i", str(path), timeout=1800, what=f"docker load -i {path}")
    return [line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
            if line.startswith("Loaded image")]


def prune(everything: bool = False) -> list[str]:
    """Remove hud layers of other hud versions (all hud layers and rootfs with `everything`).

    Raises:
        DockerError: an image is still used by a container, or Docker is down.
    """
    doomed = [row["image"] for row in list_images()
              if (row["kind"] == "layer" and (everything or
                                              not row["image"].endswith(f":{__version__}")))
              or (row["kind"] == "rootfs" and everything)]
    removed: list[str] = []
    for ref in doomed:
        done = docker("rmi", ref, timeout=300)
        if not done.ok:
            raise DockerError(f"cannot remove {ref}: {done.tail(2)}; remove the containers "
                              f"using it first (`docker ps -a --filter ancestor={ref}`)")
        removed.append(ref)
    docker("image", "prune", "-f", "--filter", f"label={LAYER_LABEL}", timeout=300)
    return removed

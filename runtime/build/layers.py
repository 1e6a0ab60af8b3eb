"""The hud image layers: names, building them in order, listing, save/load, prune.

    hud-rootfs:bookworm     optional: a debootstrapped Debian (hud.build.rootfs), no registry
    hud-base:<version>      FROM a Debian root + python3, tini, the hud runtime, user agent
    hud-browser:<version>   FROM hud-base + Chromium and fonts
    hud-desktop:<version>   FROM hud-browser + Xvnc, openbox, xdotool
    <env image>             FROM the layer the environment needs + its files (hud.build.env_image)

    on a root given with `--base-image IMAGE`, the same chain tagged `-on-<image>`:
    hud-base:<version>-on-<image>   a Debian 12 root: FROM IMAGE + images/base as above;
                                    any other root: FROM IMAGE + the portable runtime
    hud-portable:<version>          that runtime as one self-contained tree, from hud-base
                                    (hud.build.foreign)

Design decisions:
- Tags follow the installed hud version, so an upgrade never runs an old runtime. Within
  one version a layer is also rebuilt when the installed hud changed (the label
  `org.hud.source` holds the source fingerprint) or its parent image changed
  (`org.hud.parent` holds the parent's id); Docker's layer cache keeps that cheap.
- Offline first: the default root is `debian:bookworm-slim` when the engine already has
  it, else the bootstrapped `hud-rootfs:bookworm`, bootstrapped on first use with a
  one-line notice. hud contacts a registry only when asked (`pull=True`, `--pull`,
  `HUD_PULL=1`); an explicit base image that is not local is an error that says so.
- Any root: an explicit base image that is not Debian 12 gets the portable runtime
  carried in (hud.build.foreign) rather than the Debian layer built on it. Layers on an
  explicit root are tagged after it, never `hud-<layer>:<version>`: a build on another
  root (a Harbor task's image, say) must not replace what every default build uses.
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
from hud.build.foreign import (
    PORTABLE_REPO,
    build_carried,
    build_portable,
    describe,
    image_id,
    is_debian12,
    os_release,
    portable_tag,
    root_slug,
)
from hud.build.rootfs import bootstrap, rootfs_tag
from hud.build.wheelhouse import fingerprint, make_wheelhouse
from hud.errors import ConfigError, DockerError
from hud.serve.attached import CONNECT_LABEL, STDIO

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


def layer_tag(layer: str, version: str = __version__, root: str | None = None) -> str:
    """`hud-<layer>:<version>`; on a root given with --base-image,
    `hud-<layer>:<version>-on-<root as a tag>` (so the standard tags always mean the
    default root).

    Raises:
        ConfigError: `layer` is not one of base, browser, desktop.
    """
    if layer not in LAYERS:
        raise ConfigError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
    return f"hud-{layer}:{version}" + (f"-on-{root_slug(root)}" if root else "")


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
    """The root image the base layer is built FROM: `base_image` (which must be local,
    or pulled when `pull` allows), else the default root, bootstrapped when needed.

    Raises:
        DockerError: an explicit base image is not local (and pulling is not allowed or
            failed).
        ConfigError / InfraError: bootstrapping failed (see hud.build.rootfs.bootstrap).
    """
    pull = os.environ.get("HUD_PULL") == "1" if pull is None else pull
    if base_image:
        if inspect_image(base_image) is None:
            if not pull:
                raise DockerError(
                    f"base image {base_image!r} is not in the local Docker engine; load it "
                    f"(`docker load -i FILE` or `hud images load FILE`), or pass --pull "
                    f"(HUD_PULL=1) to pull it from its registry")
            done = docker("pull", base_image, timeout=600)
            if not done.ok:
                raise DockerError(
                    f"base image {base_image!r} is not in the local Docker engine and cannot "
                    f"be pulled ({done.tail(2)}); load it with `docker load -i FILE` (or "
                    f"`hud images load FILE`), or bootstrap a Debian root offline with `hud "
                    f"images bootstrap` and pass --base-image {rootfs_tag()}")
        return base_image
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
    return layer_tag(parent, root=base_image)


def is_current(layer: str, parent_id: str | None = None, tag: str | None = None) -> bool:
    """Whether `hud-<layer>:<version>` (or `tag`) exists and was built from this hud (and
    parent)."""
    info = inspect_image(tag or layer_tag(layer))
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
    except the root image, which is resolved or bootstrapped). On `base_image` the chain is
    the `-on-<root>` one (see layer_tag); `tag` overrides the tag.

    Raises:
        DockerError: the build failed (the failing step and its output tail) or Docker is down.
        InfraError: the wheelhouse could not be made.
    """
    tag = tag or layer_tag(layer, root=base_image)
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
                                 SOURCE_LABEL: fingerprint(), PARENT_LABEL: parent_info["Id"],
                                 CONNECT_LABEL: STDIO})
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return LayerResult(layer, tag, image_id, True, round(time.monotonic() - started, 1))


def ensure_layers(layer: str, *, rebuild: bool = False, no_cache: bool = False,
                  base_image: str | None = None, pull: bool | None = None,
                  notify: Notify = _quiet) -> list[LayerResult]:
    """Make sure `layer` and every layer under it exist and are current; build what is not.

    `base_image` (default `$HUD_BASE_IMAGE`) is the root: a Debian 12 root gets the
    Debian layers built on it; any other root gets the portable runtime carried in (the
    last result is then `hud-base:<version>-on-<root>`). The last result is `layer`'s.

    Raises:
        DockerError: Docker is down, a build failed, or `base_image` is not local (and
            pulling is not allowed).
        ConfigError: a browser or desktop layer on a root that is not Debian 12.
        InfraError / ConfigError: bootstrapping or the wheelhouse failed.
    """
    ensure_engine()
    layer_tag(layer)
    base_image = base_image or os.environ.get("HUD_BASE_IMAGE") or None
    if base_image:
        resolve_base_image(base_image, pull, notify)
        release = os_release(base_image)
        if not is_debian12(release):
            if layer != "base":
                raise ConfigError(
                    f"the {layer} layer needs a Debian 12 root (it installs Debian 12's "
                    f"Chromium and X packages), and --base-image {base_image} is "
                    f"{describe(release)}; build this environment without --base-image, or "
                    f"on a Debian 12 image")
            notify(f"{base_image} is {describe(release)}, not Debian 12: carrying the "
                   f"portable hud runtime into it")
            return _ensure_carried(base_image, rebuild=rebuild, no_cache=no_cache, pull=pull,
                                   notify=notify)
    return _ensure_chain(layer, base_image, rebuild=rebuild, no_cache=no_cache, pull=pull,
                         notify=notify)


def _ensure_chain(layer: str, base_image: str | None, *, rebuild: bool, no_cache: bool,
                  pull: bool | None, notify: Notify) -> list[LayerResult]:
    """The Debian layers up to `layer`, on `base_image` (None: the default root), tagged
    `hud-<layer>:<version>[-on-<root>]`."""
    results: list[LayerResult] = []
    parent_id: str | None = None
    if base_image:
        parent_id = image_id(base_image)
    for name in chain(layer):
        tag = layer_tag(name, root=base_image)
        if not rebuild and not no_cache and is_current(name, parent_id, tag=tag):
            results.append(LayerResult(name, tag, image_id(tag) or "", False, 0.0))
        else:
            results.append(build_layer(name, base_image=base_image, no_cache=no_cache,
                                       pull=pull, notify=notify))
        parent_id = results[-1].image_id
    return results


def _ensure_one(layer: str, tag: str, parent_id: str, make: Callable[[dict[str, str]], str],
                *, rebuild: bool, no_cache: bool, notify: Notify, what: str) -> LayerResult:
    """`tag` as it is when current (this hud, this parent), else built by `make(labels)`."""
    if not rebuild and not no_cache and is_current(layer, parent_id, tag=tag):
        return LayerResult(layer, tag, image_id(tag) or "", False, 0.0)
    notify(f"building {tag} ({what})")
    started = time.monotonic()
    built = make({LAYER_LABEL: layer, VERSION_LABEL: __version__, SOURCE_LABEL: fingerprint(),
                  PARENT_LABEL: parent_id, CONNECT_LABEL: STDIO})
    return LayerResult(layer, tag, built, True, round(time.monotonic() - started, 1))


def _ensure_carried(root: str, *, rebuild: bool, no_cache: bool, pull: bool | None,
                    notify: Notify) -> list[LayerResult]:
    """hud-base on the default root, the portable runtime from it, and `root` with that
    runtime carried in (the last result)."""
    results = _ensure_chain("base", None, rebuild=rebuild, no_cache=no_cache, pull=pull,
                            notify=notify)
    base = results[-1]
    base_root = (((inspect_image(base.tag) or {}).get("Config") or {}).get("Labels")
                 or {}).get(PARENT_LABEL) or ""
    # patchelf comes from hud-base's own root when the engine still has it (no apt rerun)
    patch_root = base_root if base_root and image_id(base_root) else base.tag
    portable = portable_tag()
    results.append(_ensure_one(
        "portable", portable, base.image_id,
        lambda lab: build_portable(portable, base.tag, patch_root, labels=lab,
                                   no_cache=no_cache),
        rebuild=rebuild, no_cache=no_cache, notify=notify,
        what=f"the self-contained runtime, from {base.tag}"))
    tag = layer_tag("base", root=root)
    results.append(_ensure_one(
        "base", tag, image_id(root) or "",
        lambda lab: build_carried(tag, root, portable, labels=lab, no_cache=no_cache),
        rebuild=rebuild, no_cache=no_cache, notify=notify,
        what=f"{root} + the runtime from {portable}"))
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
            if kind == "layer" and item["Repository"] not in {
                    *(f"hud-{n}" for n in LAYERS), PORTABLE_REPO}:
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
    def this_version(ref: str) -> bool:  # hud-base:V, or a carried hud-base:V-on-IMAGE
        tag = ref.rsplit(":", 1)[-1]
        return tag == __version__ or tag.startswith(f"{__version__}-on-")

    doomed = [row["image"] for row in list_images()
              if (row["kind"] == "layer" and (everything or not this_version(row["image"])))
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

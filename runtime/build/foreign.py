"""`--base-image` on any root: which way hud goes in, and the two images of the carried way.

The Debian base layer (images/base) installs hud with the root's own apt and python3: it
needs a Debian 12 root (the wheelhouse is for Debian 12's CPython 3.11 and glibc). Any
other root (Debian 11 with Python 3.9, a root with no Python, another distribution) gets
the portable runtime instead:

    hud-portable:<version>           the runtime as one self-contained tree (FROM scratch),
                                     assembled from hud-base (hud.build.portable)
    hud-base:<version>-on-<image>    the user's image + that tree at /opt/hud, fitted in
                                     by hud.build.graft: users, folders, tini, healthcheck

Design decisions:
- The way is chosen by the root's /etc/os-release (read with `cat` in a throwaway
  container, no network): Debian 12 keeps the Debian layer (shared layers, the image's
  own python3 runs hud, the browser and desktop layers work on it); anything else, or a
  root with no os-release or no `cat`, is carried.
- Only the base layer can be carried: the browser and desktop layers install Debian 12's
  Chromium and X stack, so an env that needs them on another root is refused up front.
- The carried layer is tagged after the root (hud.build.layers.layer_tag) and labelled
  with its id (org.hud.parent), like the other layers: a new hud or a changed root
  rebuilds it, nothing else does.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hud import __version__
from hud.build.assets import asset_dir
from hud.build.docker import build, docker, inspect_image

PORTABLE_REPO = "hud-portable"
CARRIED_DOCKERFILE = "base.Dockerfile"
DEBIAN_12 = ("debian", "12")
PROBE_TIMEOUT = 120.0


def portable_tag(version: str = __version__) -> str:
    """`hud-portable:<version>`."""
    return f"{PORTABLE_REPO}:{version}"


def root_slug(root: str) -> str:
    """An image reference as the tail of a tag: `Team/img:1.2` -> `team-img-1.2`."""
    return re.sub(r"[^a-z0-9_.-]+", "-", root.lower()).strip("-._")[:96] or "root"


def parse_os_release(text: str) -> dict[str, str]:
    """`KEY=value` lines (values optionally quoted) as a dict; comments and junk skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and key and not key.startswith("#"):
            fields[key] = value.strip().strip("'\"")
    return fields


def os_release(image: str) -> dict[str, str]:
    """The root's /etc/os-release, or {} when it has none (or no `cat` to read it with).

    Raises:
        DockerError: the docker client is missing or the engine did not answer in time.
    """
    done = docker("run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "cat",
                  image, "/etc/os-release", timeout=PROBE_TIMEOUT)
    return parse_os_release(done.stdout) if done.ok else {}


def describe(release: Mapping[str, str]) -> str:
    """`Debian GNU/Linux 11 (bullseye)`, or what is known of the root."""
    return release.get("PRETTY_NAME") or " ".join(
        v for v in (release.get("ID"), release.get("VERSION_ID")) if v) or "no /etc/os-release"


def is_debian12(release: Mapping[str, str]) -> bool:
    """Whether a root's os-release says Debian 12 (bookworm)."""
    return (release.get("ID"), release.get("VERSION_ID")) == DEBIAN_12


def _context() -> Path:
    context = Path(tempfile.mkdtemp(prefix="hud-portable-ctx-"))
    shutil.copytree(asset_dir("images") / "portable", context, dirs_exist_ok=True)
    return context


def build_portable(tag: str, base: str, root: str, *, labels: Mapping[str, str],
                   no_cache: bool = False) -> str:
    """Build the portable runtime image `tag` from the hud-base layer `base`, taking
    patchelf from `root` (the Debian 12 root `base` was built on); return its id.

    Raises:
        DockerError: the build failed (the failing step and its output tail).
    """
    context = _context()
    try:
        return build(context, tag, no_cache=no_cache, labels=labels,
                     build_args={"BASE_IMAGE": base, "ROOT_IMAGE": root})
    finally:
        shutil.rmtree(context, ignore_errors=True)


def build_carried(tag: str, root: str, portable: str, *, labels: Mapping[str, str],
                  no_cache: bool = False) -> str:
    """Build the base layer `tag`: the image `root` with the portable runtime `portable`
    carried in; return its id.

    Raises:
        DockerError: the build failed; when the runtime is not self-contained on `root`,
            the failing step's output names the library that leaked in.
    """
    context = _context()
    try:
        return build(context, tag, dockerfile=context / CARRIED_DOCKERFILE, no_cache=no_cache,
                     labels=labels, build_args={"BASE_IMAGE": root, "PORTABLE_IMAGE": portable})
    finally:
        shutil.rmtree(context, ignore_errors=True)


def image_id(ref: str) -> str | None:
    """The id of `ref`, or None when the engine has no such image."""
    info = inspect_image(ref)
    return None if info is None else str(info["Id"])

"""Where an eval's tasks come from, without importing the environment on the host.

    DIR (or DIR/env.py) with hud.lock.json   the tasks `hud build` recorded in the lock
    IMAGE, docker:IMAGE                      the image's `org.hud.manifest` label
    CONTAINER                                a running container's manifest (`hud manifest`
                                             in it, over `docker exec`)
    tcp://HOST:PORT                          the daemon's manifest (`hello`)
    FILE.py, or DIR without a lock           the module, imported on the host (what the
                                             local placement runs)

A name that is no file or directory here is looked up in Docker: an image first, then a
running container (`--runtime CONTAINER` attaches to a container that shares a name with
an image). Only the local placement imports an environment: an env whose module needs
packages that only its image has (a `requirements.txt`) is evaluated in Docker from a
host that lacks them. A directory without a lock evaluated on an image, a container or a
daemon (`--runtime`) takes the tasks from there. A `.py` file other than a directory's
own module is a task list written in Python: it is imported.

Every manifest read here is untrusted input (`hud.clients.untrusted.loads`, which refuses
absurdly deep JSON, and `parse_manifest`, then strict task rows), whoever built the image,
and every image or container name is checked before it reaches docker's argv
(`hud.build.docker.checked_ref`: never an option).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hud.build import docker as hd
from hud.clients.untrusted import loads, parse_manifest
from hud.errors import ConfigError, DockerError, HudError, InfraError, ProtocolError
from hud.eval.placement import AttachPlacement, DockerPlacement, Placement
from hud.eval.taskfile import ImageRef, drift_warning, manifest_rows
from hud.serve.loader import DEFAULT_FILES
from hud.task import Task

LOCK_FILE = "hud.lock.json"
MANIFEST_LABEL = "org.hud.manifest"
#: seconds for `docker exec C hud manifest` or a daemon's `hello`
LIST_TIMEOUT = 60.0
SOURCES = ("tasks.py, an env directory, a .jsonl task file, an image (IMAGE or docker:IMAGE), "
           "a running container's name, or tcp://HOST:PORT")


@dataclass
class Listing:
    """What a source gave: its tasks, or the module to import for them (`load`).

    `images` are the images the tasks were listed from (with their IDs then); `target`
    is the running container or daemon they were listed from (the default placement);
    `source` is the env directory or file, imported only for the local placement.
    """

    tasks: list[Task] = field(default_factory=list)
    images: tuple[ImageRef, ...] = ()
    target: str | None = None
    source: Path | None = None
    load: Path | None = None


def resolve(source: str, runtime: str | None = None) -> Listing:
    """The tasks of `source` (see the module docstring); `runtime` is the placement asked
    for, if any ("local" imports a built directory's module instead of reading its lock).

    Raises:
        ConfigError: the source does not exist, or is not an env, image or container.
        ProtocolError: the image's or container's manifest is invalid (untrusted input).
        InfraError: a container or daemon did not answer.
    """
    if source.startswith("docker:"):
        return image_listing(source.split(":", 1)[1])
    if source.startswith("tcp://"):
        return daemon_listing(source)
    path = Path(source)
    if path.exists():
        return _path_listing(path, runtime)
    if path.suffix in (".py", ".json", ".jsonl") or source.startswith((".", "/", "~")):
        raise ConfigError(f"task source {source} does not exist; pass {SOURCES}")
    return named_listing(source)


def env_directory(path: Path) -> Path | None:
    """The env directory `path` is, or whose own module it is; None for another file."""
    if path.is_dir():
        return path
    own = next((path.parent / n for n in DEFAULT_FILES if (path.parent / n).is_file()), None)
    return path.parent if own is not None and own.resolve() == path.resolve() else None


def _path_listing(path: Path, runtime: str | None) -> Listing:
    directory = env_directory(path)
    if directory is None or runtime == "local":
        return Listing(load=path, source=path)
    lock = directory / LOCK_FILE
    if lock.is_file():
        return lock_listing(lock, path)
    if runtime == "docker":
        raise ConfigError(f"{directory} has no {LOCK_FILE}, so the image to run is unknown: "
                          f"build it (`hud build {directory}`) or name the image "
                          f"(--runtime docker:IMAGE)")
    if runtime is not None:  # the env's image, container or daemon lists its tasks
        listing = target_listing(runtime)
        listing.source = path
        return listing
    return Listing(load=path, source=path)


def lock_listing(lock: Path, source: Path) -> Listing:
    """The tasks `hud build` recorded in `lock`, and the image it built.

    Raises:
        ConfigError: the lock file is unreadable or its tasks are invalid.
    """
    fix = f"run `hud build {lock.parent}` again"
    try:
        data = loads(lock.read_text(encoding="utf-8"))
        image = str(data.get("tag") or data["image"])
        env = data["env"]["name"]
        items = list(data.get("tasks", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{lock} is not a lock file hud build wrote ({type(exc).__name__}: "
                          f"{exc}); {fix}") from exc
    ref = ImageRef(image, data.get("image_id"), str(lock))
    try:
        rows = manifest_rows({"env": {"name": env}, "tasks": items}, str(lock), ref)
    except ProtocolError as exc:
        raise ConfigError(f"{exc}; {fix}") from None
    return Listing(tasks=[row.task() for row in rows], images=(ref,), source=source)


def image_listing(ref: str) -> Listing:
    """The tasks in image `ref`'s manifest label (no container is started).

    Raises:
        DockerError: there is no such image, or Docker is unreachable.
        ConfigError: the image has no manifest label.
        ProtocolError: the label is not a valid manifest.
    """
    info = hd.inspect_image(ref)
    if info is None:
        raise DockerError(f"no image {ref!r} in the local Docker engine; build it first "
                          f"(`hud build`), or load it (`hud images load FILE.tar`)")
    return _labelled(ref, info)


def _labelled(ref: str, info: dict[str, Any]) -> Listing:
    """The tasks in the manifest label of image `ref` (`info`: its `docker image inspect`)."""
    labels = (info.get("Config") or {}).get("Labels") or {}
    if MANIFEST_LABEL not in labels:
        raise ConfigError(f"image {ref!r} has no {MANIFEST_LABEL} label, so its tasks are "
                          f"unknown; build it with `hud build`, or pass a task file (.jsonl)")
    source = f"image {ref!r}"
    try:
        data = loads(labels[MANIFEST_LABEL])
    except ValueError as exc:
        raise ConfigError(f"{source}'s {MANIFEST_LABEL} label is not JSON hud reads ({exc}); "
                          f"rebuild it with `hud build`") from None
    return _manifest_listing(parse_manifest(data, source), source,
                             ImageRef(ref, str(info.get("Id") or "") or None, source))


def container_listing(name: str) -> Listing | None:
    """The tasks of the running container `name` (its daemon's manifest); None when no
    container has that name.

    Raises:
        ConfigError: the container exists but is not running, or `name` is no reference.
        InfraError: its daemon did not answer `hud manifest`.
        ProtocolError: the manifest is invalid.
    """
    hd.checked_ref(name, "container")
    done = hd.docker("container", "inspect", "--", name)
    if not done.ok:
        if "no such" in done.stderr.lower() or "not found" in done.stderr.lower():
            return None
        raise DockerError(f"docker container inspect {name} failed: {done.tail(3)}")
    info = (loads(done.stdout or "[]") or [{}])[0]
    state = info.get("State") or {}
    if not state.get("Running"):
        raise ConfigError(f"container {name!r} is not running (status "
                          f"{state.get('Status', '?')}); start it (`docker start {name}`) or "
                          f"evaluate its image: hud eval {(info.get('Config') or {}).get('Image', 'IMAGE')}")
    source = f"container {name!r}"
    done = hd.docker("exec", "--", name, "hud", "manifest", timeout=LIST_TIMEOUT)
    if not done.ok:
        raise InfraError(f"{source} did not list its tasks (`hud manifest` exited {done.code}: "
                         f"{done.tail(3)}); is it a hud image? `docker logs {name}` shows why")
    try:
        data = loads(done.stdout)
    except ValueError as exc:
        raise ConfigError(f"{source} answered `hud manifest` with no usable JSON ({exc}); is "
                          f"it a hud image you trust?") from None
    image = ImageRef(str((info.get("Config") or {}).get("Image") or info.get("Image")),
                     info.get("Image"), source)
    listing = _manifest_listing(parse_manifest(data, source), source, image)
    listing.target = name
    return listing


def daemon_listing(url: str) -> Listing:
    """The tasks of the daemon at `url` (tcp://HOST:PORT; its token from HUD_TOKEN).

    Raises:
        DaemonUnavailable: nothing answers there.
        ProtocolError: the manifest is invalid.
    """
    from hud.clients.control import ControlClient

    with ControlClient.connect(url=url) as client:
        client.sock.settimeout(LIST_TIMEOUT)
        hello = client.call("hello", {"client": "hud-eval"})
    source = f"the daemon at {url}"
    listing = _manifest_listing(parse_manifest(hello, source), source, None)
    listing.target = url
    return listing


def target_listing(runtime: str) -> Listing:
    """The tasks of what `--runtime` names: docker:IMAGE, tcp://..., or a container.

    Raises:
        ConfigError: no container has that name.
        ProtocolError: the manifest is invalid.
        InfraError: the container or daemon did not answer.
    """
    if runtime.startswith("docker:"):
        return image_listing(runtime.split(":", 1)[1])
    if runtime.startswith("tcp://"):
        return daemon_listing(runtime)
    listing = container_listing(runtime)
    if listing is None:
        raise ConfigError(f"--runtime {runtime!r}: no container has that name; use local, "
                          f"docker, docker:IMAGE, a running container's name or tcp://HOST:PORT")
    return listing


def named_listing(name: str) -> Listing:
    """The tasks of `name`, an image or else a running container.

    Raises:
        ConfigError: it is neither (or Docker cannot be asked).
        ProtocolError: the manifest is invalid.
        InfraError: the container did not answer.
    """
    not_here = f"task source {name!r} is not a file or directory here"
    try:
        info = hd.inspect_image(name)
        listing = _labelled(name, info) if info is not None else container_listing(name)
    except DockerError as exc:
        raise ConfigError(f"{not_here}, and Docker cannot say whether it is an image or a "
                          f"container ({exc}); pass {SOURCES}") from exc
    if listing is None:
        raise ConfigError(f"{not_here}, nor an image or a container in the local Docker "
                          f"engine; pass {SOURCES} (load a saved image with "
                          f"`hud images load FILE.tar`)")
    return listing


def _manifest_listing(manifest: dict[str, Any], source: str, image: ImageRef | None) -> Listing:
    rows = manifest_rows(manifest, source, image)
    return Listing(tasks=[row.task() for row in rows], images=(image,) if image else ())


def image_drift(images: list[ImageRef], placement: Placement) -> str | None:
    """The warning lines (hud.eval.taskfile.drift_warning) when `placement` runs another
    image than any of `images`, the ones the tasks were listed from (one line per image
    that differs); None when it runs every one of them, nothing was recorded, or the
    placement runs no image hud can ask about.

    Raises:
        ConfigError: the docker placement's image is not on this host.
    """
    recorded = [image for image in images if image.id]
    if not recorded:
        return None
    if isinstance(placement, DockerPlacement):
        current = image_id(placement.image)
        if current is None:
            raise ConfigError(f"image {placement.image!r} is not in the local Docker engine; "
                              f"load it (`hud images load FILE.tar`), build it (`hud build`), "
                              f"or name another (--runtime docker:IMAGE)")
        return drift_warning(recorded, placement.image, current)
    if isinstance(placement, AttachPlacement) and not placement.target.startswith("tcp://"):
        running = container_image_id(placement.target)
        if running is not None:
            return drift_warning(recorded, placement.target, running, container=True)
    return None


def image_id(ref: str) -> str | None:
    """The ID image `ref` has now; None when there is no such image.

    Raises:
        DockerError: Docker is unreachable.
    """
    info = hd.inspect_image(ref)
    return None if info is None else str(info.get("Id") or "") or None


def container_image_id(name: str) -> str | None:
    """The ID of the image a container runs; None when it cannot be told."""
    try:
        done = hd.docker("container", "inspect", "--format", "{{.Image}}", "--",
                         hd.checked_ref(name, "container"))
    except HudError:
        return None
    if not done.ok:
        return None
    return done.stdout.strip() or None

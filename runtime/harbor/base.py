"""`hud build` of an env made by `hud harbor import`: the tasks' own image is its base.

`hud build ENV` (hud.build.env_image) asks `harbor_base_image(ENV, ...)` for the base
image before it builds the hud layers. For a directory with a `harbor.json` it:

1. builds the tasks' image from the env's `environment/` folder (their Dockerfile and
   build context, as Harbor builds it), or takes the prebuilt `docker_image` their
   task.toml names, which must be in the local engine (no registry is assumed);
2. builds a thin image on top (`hud-harbor-<name>:base`) that records the tasks'
   image's WORKDIR and environment in /etc/hud/harbor/image.json (the runtime's layer
   resets both; hud.harbor.env gives them back to the agent and the verifier) and gives
   the workdir to uid 1000, hud's `agent` user, at build time, when no agent exists to
   plant a symlink in it. Never what root executes: a workdir that is, holds or lies in
   a system folder or one on root's PATH (/usr/local/bin, /opt/hud, /etc/...) is refused
   with a ConfigError (`root_location`); `/` and the bare top-level folders (/home,
   /srv, /tmp, ...) are left root's, as they were;
3. returns that image: hud adds its runtime onto it (`--base-image`) and then the env.

Any other directory returns the caller's base image unchanged. A Dockerfile that fails,
or names a FROM image that is not in the engine, is a `DockerError` that names the file
and the fix.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hud.build.docker import build, inspect_image
from hud.capabilities.users import ROOT_PATH
from hud.errors import ConfigError, DockerError
from hud.harbor.config import ENVIRONMENT, IMAGE_INFO, SPEC_FILE, EnvSpec, read_spec

#: a workdir hud passes to a RUN instruction (an exec-form argument, never a shell word)
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./-]{0,255}")
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.I | re.M)
LABEL = "org.hud.harbor"
WRAPPER = """\
# hud.harbor.base: the tasks' image, its WORKDIR and environment recorded for hud's runtime
ARG TASK_IMAGE
FROM ${{TASK_IMAGE}}
USER root
COPY image.json {info}
"""
# the workdir becomes the agent's (uid 1000): an exec-form RUN, the path an argument
OWN_WORKDIR = """\
RUN ["/bin/sh", "-c", "mkdir -p \\"$0\\" && chown -R 1000:1000 \\"$0\\"", "{workdir}"]
"""
#: folders never given to the agent, even when they are the workdir: the system's own
SYSTEM_DIRS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64",
                         "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
                         "/usr", "/var"})


#: what root executes or hud's runtime keeps: never given to the agent, nor any folder in
#: or above one (every folder on root's PATH is among them, and /lib*)
ROOT_LOCATIONS = tuple(dict.fromkeys([
    "/usr", "/opt/hud", "/etc", "/var/lib", "/bin", "/sbin", "/boot", "/root", "/proc",
    "/sys", "/dev", "/run", *ROOT_PATH.split(":")]))


def root_location(workdir: str) -> str | None:
    """The system or root-executed location that `workdir` is, holds, or lies inside
    (`ROOT_LOCATIONS`, or a top-level /lib* folder), said as "is /usr/local/bin" or
    "lies inside /usr"; None when it has nothing to do with one."""
    path = os.path.normpath(workdir)
    top = "/" + path.split("/")[1] if path != "/" else "/"
    # the most precise first: /usr/local/bin/x lies inside /usr/local/bin, not just /usr
    locations = sorted(ROOT_LOCATIONS + ((top,) if top.startswith("/lib") else ()),
                       key=len, reverse=True)
    for location in locations:
        if path == location:
            return f"is {location}"
        if path.startswith(location + "/"):
            return f"lies inside {location}"
    held = [location for location in locations if location.startswith(path.rstrip("/") + "/")]
    return f"holds {held[-1]}" if held else None


def agent_may_own(workdir: str) -> bool:
    """Whether the build gives `workdir` to the agent: not `/`, a top-level system
    folder, nor anything root executes (`root_location`)."""
    return os.path.normpath(workdir) not in SYSTEM_DIRS and root_location(workdir) is None


def check_workdir(workdir: str, where: str) -> None:
    """Refuse a workdir that `hud build` would give to the agent although root executes
    from it (it is, holds or lies inside such a folder; `/` and the bare top-level folders
    are only left root's).

    Raises:
        ConfigError: naming the value, where it came from, and the fix.
    """
    path = os.path.normpath(workdir)
    relation = root_location(path)
    if relation is None or path in SYSTEM_DIRS:
        return
    raise ConfigError(f"workdir {workdir!r} ({where}) {relation}: a system folder, one on "
                      f"root's PATH or hud's own runtime. `hud build` gives the workdir to "
                      f"the agent (uid 1000), and the agent would then own what root runs. "
                      f"Keep the task's files in a folder of their own: WORKDIR /app in "
                      f"environment/Dockerfile and workdir = \"/app\" in task.toml")


def _quiet(_: str) -> None:
    return None


def base_tags(name: str) -> tuple[str, str]:
    """The tags of an env's tasks image and of the image hud builds on (`:task`, `:base`)."""
    repo = "hud-harbor-" + (re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "env")
    return f"{repo}:task", f"{repo}:base"


def missing_from_images(dockerfile: Path) -> list[str]:
    """The images `dockerfile`'s FROM lines name that are not in the local engine (build
    stages and `scratch` excluded; a `${ARG}` reference cannot be checked and is skipped)."""
    stages: set[str] = set()
    missing: list[str] = []
    for match in _FROM.finditer(dockerfile.read_text(errors="replace")):
        ref, alias = match.group(1), match.group(2)
        if ref.lower() not in stages and ref != "scratch" and "$" not in ref \
                and inspect_image(ref) is None:
            missing.append(ref)
        if alias:
            stages.add(alias.lower())
    return missing


def _task_image(directory: Path, spec: EnvSpec, tag: str, no_cache: bool,
                notify: Callable[[str], None]) -> str:
    """Build (or find) the tasks' own image; its reference."""
    if spec.docker_image is not None:
        if inspect_image(spec.docker_image) is None:
            raise DockerError(
                f"the image {spec.docker_image!r} that the tasks' task.toml names "
                f"([environment] docker_image) is not in the local Docker engine; load it "
                f"(`docker load -i FILE` or `hud images load FILE`) or pull it, then build again")
        return spec.docker_image
    context = directory / ENVIRONMENT
    dockerfile = context / "Dockerfile"
    if not dockerfile.is_file():
        raise ConfigError(f"{dockerfile} is missing: the tasks' environment; import the tasks "
                          f"again with `hud harbor import`")
    notify(f"building the tasks' image {tag} from {dockerfile}")
    try:
        return build(context, tag, dockerfile=dockerfile, no_cache=no_cache)
    except DockerError as exc:
        missing = missing_from_images(dockerfile)
        if missing:
            raise DockerError(
                f"{dockerfile}: its base image {', '.join(missing)} is not in the local "
                f"Docker engine and could not be pulled; load it (`docker load -i FILE`, "
                f"`hud images load FILE`) or change the FROM line (an offline host has "
                f"{'hud-rootfs:bookworm'} after `hud images bootstrap`)\n{exc}") from None
        raise DockerError(f"{dockerfile} failed to build; fix the Dockerfile (try it alone: "
                          f"`docker build {context}`)\n{exc}") from None


def _image_info(ref: str, spec: EnvSpec) -> dict[str, Any]:
    info = inspect_image(ref) or {}
    config = info.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    workdir = os.path.normpath(spec.workdir or config.get("WorkingDir") or "/")
    if not _SAFE_PATH.fullmatch(workdir):
        raise ConfigError(f"workdir {workdir!r} (of the tasks' task.toml or their image's "
                          f"WORKDIR) is not an absolute path of letters, digits and _./-; "
                          f"set [environment] workdir in task.toml to one")
    check_workdir(workdir, "[environment] workdir in task.toml" if spec.workdir
                  else f"the WORKDIR of image {ref}")
    return {"workdir": workdir, "env": env, "user": config.get("User") or "root"}


def harbor_base_image(directory: Path, base_image: str | None, *, no_cache: bool = False,
                      notify: Callable[[str], None] = _quiet) -> str | None:
    """The base image `hud build` adds its runtime onto: for an env made by
    `hud harbor import`, its tasks' image (built here); else `base_image` unchanged.

    Raises:
        ConfigError: --base-image was given for such an env, or its files are malformed.
        DockerError: the tasks' Dockerfile failed to build, or an image it needs is not
            in the local engine (the message names which and the fix).
    """
    if not (directory / SPEC_FILE).is_file():
        return base_image
    if base_image:
        raise ConfigError(f"{directory} holds Harbor tasks: its base image is built from "
                          f"{directory / ENVIRONMENT / 'Dockerfile'} (or their docker_image); "
                          f"build it without --base-image / HUD_BASE_IMAGE")
    spec = read_spec(directory)
    task_tag, base_tag = base_tags(spec.name)
    task_ref = _task_image(directory, spec, task_tag, no_cache, notify)
    info = _image_info(task_ref, spec)
    with tempfile.TemporaryDirectory(prefix="hud-harbor-base-") as work:
        Path(work, "image.json").write_text(json.dumps(info, indent=2) + "\n")
        dockerfile = WRAPPER.format(info=IMAGE_INFO)
        if agent_may_own(info["workdir"]):
            dockerfile += OWN_WORKDIR.format(workdir=info["workdir"])
        Path(work, "Dockerfile").write_text(dockerfile)
        notify(f"recording the tasks' WORKDIR ({info['workdir']}) and environment in {base_tag}")
        build(Path(work), base_tag, no_cache=no_cache, build_args={"TASK_IMAGE": task_ref},
              labels={LABEL: spec.name})
    return base_tag

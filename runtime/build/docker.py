"""The Docker CLI, wrapped: engine check, build, inspect, run/rm, labels, save/load.

Design decisions:
- We drive the `docker` command line (through `hud.proc`), not the Engine API: it is what
  users have, it honours their contexts and config, and it needs no extra dependency.
- Builds use the classic builder (`DOCKER_BUILDKIT=0`): Debian 12's docker.io ships no
  buildx, and a newer client without buildx refuses BuildKit builds. Both a 20.10 and a
  28.x client work against a 20.10 engine (the client negotiates the API version down).
  `HUD_DOCKER` names another client binary when PATH picks the wrong one.
- A failed build is reported as the step that failed (`Step 4/9 : RUN ...`) plus the tail
  of that step's output, not the whole log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hud.errors import DockerError
from hud.proc import Completed, run

BUILD_TIMEOUT = 3600.0
QUICK_TIMEOUT = 60.0
FIX_INSTALL = "install it as root with `bash scripts/setup` (or `apt-get install docker.io`)"
FIX_START = ("start the engine as root with `bash scripts/setup` (or `dockerd >/var/log/"
             "dockerd.log 2>&1 &`, or `systemctl start docker`)")

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_checked: set[str] = set()


def docker_bin() -> str:
    """The docker client to run: `$HUD_DOCKER`, else the first `docker` on PATH.

    Raises:
        DockerError: no docker client is installed.
    """
    override = os.environ.get("HUD_DOCKER")
    found = override or shutil.which("docker")
    if not found:
        raise DockerError(f"Docker is not installed (no `docker` on PATH); {FIX_INSTALL}")
    return found


def _env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"}


def docker(*args: str, timeout: float = QUICK_TIMEOUT, input: bytes | str | None = None,
           cwd: str | os.PathLike[str] | None = None) -> Completed:
    """Run one docker command and return its result (failure is the caller's to judge).

    Raises:
        DockerError: the client is missing.
        InfraError: the command ran past `timeout`.
    """
    return run([docker_bin(), *args], timeout=timeout, input=input, env=_env(), cwd=cwd)


def check(*args: str, timeout: float = QUICK_TIMEOUT, what: str | None = None) -> Completed:
    """Run a docker command that must succeed.

    Raises:
        DockerError: it failed; the message quotes the tail of its output.
    """
    done = docker(*args, timeout=timeout)
    if not done.ok:
        raise DockerError(f"{what or 'docker ' + ' '.join(args[:3])} failed "
                          f"(exit {done.code}): {done.tail(8)}")
    return done


def ensure_engine() -> str:
    """Check that the client exists and the engine answers; return the server version.

    Raises:
        DockerError: Docker is missing or the engine is not running, with the fix.
    """
    binary = docker_bin()
    if binary in _checked:
        return "ok"
    done = run([binary, "version", "--format", "{{.Server.Version}}"], timeout=30, env=_env())
    version = done.stdout.strip()
    if not done.ok or not version:
        detail = done.tail(3) or f"exit {done.code}"
        raise DockerError(f"the Docker engine is not reachable ({binary} version: {detail}); "
                          f"{FIX_START}")
    _checked.add(binary)
    return version


def _failed_step(log: str) -> tuple[str, str]:
    """The last `Step N/M : ...` line of a classic-builder log and the output after it."""
    lines = log.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if _STEP.match(lines[index]):
            body = [ln for ln in lines[index + 1:] if not ln.startswith(" ---> ")]
            return lines[index], "\n".join(body[-25:])
    return "", "\n".join(lines[-25:])


def build(context: Path, tag: str, *, dockerfile: Path | None = None,
          build_args: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
          no_cache: bool = False, timeout: float = BUILD_TIMEOUT) -> str:
    """Build `context` (classic builder), tag it, and return the image id.

    Raises:
        DockerError: the build failed; the message names the failing step and quotes the
            tail of its output.
    """
    ensure_engine()
    argv = ["build", "--force-rm", "-t", tag]
    if dockerfile is not None:
        argv += ["-f", str(dockerfile)]
    if no_cache:
        argv.append("--no-cache")
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        argv += ["--label", f"{key}={value}"]
    done = docker(*argv, str(context), timeout=timeout)
    if not done.ok:
        step, output = _failed_step(done.stdout)
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.code}"
        where = f" at {step}" if step else ""
        raise DockerError(f"building {tag} failed{where}\n{output}\n{reason}".rstrip())
    # The id of what `tag` now names (not parsed from the log: its format varies by client).
    info = inspect_image(tag)
    if info is None:
        raise DockerError(f"docker build reported success but {tag} does not exist: "
                          f"{done.tail(3)}")
    return str(info["Id"])


def inspect_image(ref: str) -> dict[str, Any] | None:
    """`docker image inspect REF` as a dict, or None when there is no such image.

    Raises:
        DockerError: the engine is unreachable.
    """
    ensure_engine()
    done = docker("image", "inspect", ref)
    if not done.ok:
        if "no such image" in done.stderr.lower() or "not found" in done.stderr.lower():
            return None
        raise DockerError(f"docker image inspect {ref} failed: {done.tail(3)}")
    data = json.loads(done.stdout or "[]")
    return data[0] if data else None


def image_exists(ref: str) -> bool:
    """Whether `ref` names an image in the local engine."""
    return inspect_image(ref) is not None


def image_labels(ref: str) -> dict[str, str]:
    """The labels of image `ref` (empty when it has none).

    Raises:
        DockerError: there is no such image.
    """
    info = inspect_image(ref)
    if info is None:
        raise DockerError(f"no image {ref!r} in the local Docker engine; build it first")
    return dict((info.get("Config") or {}).get("Labels") or {})


def image_size_mb(ref: str) -> float:
    """The image's size (all its layers) in MB, as `docker images` reports it."""
    info = inspect_image(ref)
    return round((info or {}).get("Size", 0) / 1e6, 1)


def run_container(image: str, *args: str, name: str | None = None, detach: bool = False,
                  entrypoint: str | None = None, options: Sequence[str] = (),
                  timeout: float = 300.0) -> Completed:
    """`docker run` IMAGE ARGS; removed on exit unless detached. Failure is the caller's.

    Raises:
        DockerError: the client is missing.
        InfraError: the container ran past `timeout`.
    """
    argv = ["run", "-d" if detach else "--rm"]
    if name:
        argv += ["--name", name]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    return docker(*argv, *options, image, *args, timeout=timeout)


def remove_container(name: str) -> None:
    """Force-remove a container; a missing one is not an error."""
    docker("rm", "-f", name, timeout=QUICK_TIMEOUT)


def remove_images(refs: Sequence[str]) -> list[str]:
    """Remove images by tag or id; return the ones that were removed.

    Raises:
        DockerError: one could not be removed (e.g. a container still uses it).
    """
    if not refs:
        return []
    check("rmi", *refs, timeout=300, what=f"docker rmi {' '.join(refs)}")
    return list(refs)

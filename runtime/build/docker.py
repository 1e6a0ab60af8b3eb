"""The one module that runs the docker CLI, sync and async: every hud docker command.

Design decisions:
- We drive the `docker` command line (through `hud.proc`), not the Engine API: it is what
  users have, it honours their contexts and config, and it needs no extra dependency.
- **One path.** Every docker command hud runs starts here, so `HUD_DOCKER` (another client
  binary, when PATH picks the wrong one) and the translation of docker's failures into
  `DockerError` hold everywhere: the image build, the docker and attach placements and
  their `docker exec` pipes, `hud prune`, `hud ssh`'s ProxyCommand, `hud task list
  --image`. A static test (tests/build/test_docker_single_path.py) keeps it that way.
  Callers that need one particular client (e.g. `DockerPlacement(docker=...)`) pass
  `binary=`; otherwise it is `docker_bin()`.
- **Typed failures.** A missing client, a command that ran past its timeout, and (through
  `check`/`acheck`) a command that failed are `DockerError`s that quote docker's own words
  and, when the engine is down, say how to start it.
- Builds use the classic builder (`DOCKER_BUILDKIT=0`): Debian 12's docker.io ships no
  buildx, and a newer client without buildx refuses BuildKit builds. Both a 20.10 and a
  28.x client work against a 20.10 engine (the client negotiates the API version down).
- A failed build is reported as the step that failed (`Step 4/9 : RUN ...`) plus the tail
  of that step's output, not the whole log.
- **A reference is never an option.** An image or container name from a user, a task
  file, a Harbor task.toml or a label lands on docker's argv: `checked_ref` refuses one
  that starts with `-` (docker would read `--help` as its own option), and the inspect
  helpers put `--` before it as well.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hud.errors import ConfigError, DockerError, InfraError
from hud.proc import Completed, arun, run

BUILD_TIMEOUT = 3600.0
QUICK_TIMEOUT = 60.0
#: bytes a spawned process's stdout reader buffers per line (frames are lines)
STREAM_LIMIT = 1 << 20
FIX_INSTALL = ("install it as root: `apt-get install docker.io` (in a hud source checkout, "
               "`bash scripts/setup` does it)")
FIX_START = ("start it as root: `systemctl start docker` or `dockerd >/var/log/dockerd.log "
             "2>&1 &` (in a hud source checkout, `bash scripts/setup` does it)")

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
# what a client says when it cannot reach its engine (20.10 to 28.x)
_ENGINE_DOWN = ("cannot connect to the docker daemon", "is the docker daemon running",
                "error during connect")
_checked: set[str] = set()
#: what an image or container reference may hold: printable, no spaces (docker's own
#: grammar is checked by docker; this only keeps a reference from being an option)
_REF = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]{1,1024}")


def checked_ref(ref: str, what: str = "image") -> str:
    """`ref` unchanged when it can be passed to docker as a reference, never as an option.

    Raises:
        ConfigError: it is empty, starts with '-', or holds spaces or control characters.
    """
    if ref.startswith("-") or not _REF.fullmatch(ref):
        raise ConfigError(f"{what} reference {ref[:200]!r} is not one docker can take: it is "
                          f"empty, starts with '-' (docker would read it as an option) or "
                          f"holds spaces or control characters; name the {what} by its "
                          f"name:tag or ID")
    return ref


def docker_bin() -> str:
    """The docker client to run: `$HUD_DOCKER` (a path or a name on PATH), else `docker`.

    Raises:
        DockerError: no docker client is installed, or `HUD_DOCKER` names no executable.
    """
    override = os.environ.get("HUD_DOCKER")
    if override:
        found = shutil.which(override)
        if not found:
            raise DockerError(f"HUD_DOCKER={override!r} is not an executable docker client; "
                              f"point it at one (e.g. /usr/bin/docker) or unset it")
        return found
    found = shutil.which("docker")
    if not found:
        raise DockerError(f"Docker is not installed (no `docker` on PATH); {FIX_INSTALL}")
    return found


def argv(*args: str, binary: str | None = None) -> list[str]:
    """The full command line of `docker ARGS` (the client resolved as everywhere else).

    Raises:
        DockerError: no docker client is installed.
    """
    return [binary or docker_bin(), *args]


def command_line(*args: str, binary: str | None = None) -> str:
    """`docker ARGS` as one shell-quoted string (for an ssh ProxyCommand and the like).

    Raises:
        DockerError: no docker client is installed.
    """
    return shlex.join(argv(*args, binary=binary))


def _env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"}


def _stuck(exc: InfraError) -> DockerError:
    """A docker command that timed out (or whose client vanished), as a DockerError."""
    return DockerError(f"{exc}; check that the Docker engine answers (`docker info`) and "
                       f"read its log")


def docker(*args: str, timeout: float = QUICK_TIMEOUT, input: bytes | str | None = None,
           cwd: str | os.PathLike[str] | None = None, binary: str | None = None) -> Completed:
    """Run one docker command and return its result (failure is the caller's to judge).

    Args:
        args: the docker arguments (`"ps", "-aq"`), never through a shell.
        timeout: seconds before the client is killed.
        input: bytes or text for its stdin.
        cwd: working directory.
        binary: this client instead of `docker_bin()`.

    Raises:
        DockerError: the client is missing, or it ran past `timeout` (it is killed).
    """
    command = argv(*args, binary=binary)
    try:
        return run(command, timeout=timeout, input=input, env=_env(), cwd=cwd)
    except InfraError as exc:
        raise _stuck(exc) from exc


async def adocker(*args: str, timeout: float = QUICK_TIMEOUT, input: bytes | str | None = None,
                  cwd: str | os.PathLike[str] | None = None,
                  binary: str | None = None) -> Completed:
    """`docker` without blocking the event loop; same arguments.

    Raises:
        DockerError: the client is missing, or it ran past `timeout` (it is killed).
    """
    command = argv(*args, binary=binary)
    try:
        return await arun(command, timeout=timeout, input=input, env=_env(), cwd=cwd)
    except InfraError as exc:
        raise _stuck(exc) from exc


def engine_down(output: str) -> bool:
    """Whether a docker client's output says it cannot reach its engine."""
    return any(sign in output.lower() for sign in _ENGINE_DOWN)


def failure(done: Completed, what: str | None = None) -> DockerError:
    """The DockerError for a failed docker command: what failed, the exit code, the tail
    of docker's output, and the fix when the engine is down."""
    what = what or "docker " + " ".join(done.argv[1:4])
    if engine_down(done.stderr):  # one line: what docker said is the same every time
        said = next((line.strip() for line in done.stderr.splitlines() if line.strip()), "")
        return DockerError(f"{what} failed: the Docker engine is not reachable ({said}); "
                           f"{FIX_START}")
    return DockerError(f"{what} failed (exit {done.code}): {done.tail(8)}")


def check(*args: str, timeout: float = QUICK_TIMEOUT, what: str | None = None,
          binary: str | None = None) -> Completed:
    """Run a docker command that must succeed.

    Raises:
        DockerError: it failed (the message quotes the tail of its output), ran past
            `timeout`, or the client is missing.
    """
    done = docker(*args, timeout=timeout, binary=binary)
    if not done.ok:
        raise failure(done, what)
    return done


async def acheck(*args: str, timeout: float = QUICK_TIMEOUT, what: str | None = None,
                 binary: str | None = None) -> Completed:
    """`check` without blocking the event loop; same arguments.

    Raises:
        DockerError: it failed (the message quotes the tail of its output), ran past
            `timeout`, or the client is missing.
    """
    done = await adocker(*args, timeout=timeout, binary=binary)
    if not done.ok:
        raise failure(done, what)
    return done


async def spawn(*args: str, binary: str | None = None, limit: int = STREAM_LIMIT,
                stdio: socket.socket | None = None) -> asyncio.subprocess.Process:
    """Start a long-lived `docker ARGS` with pipes on stdin, stdout and stderr.

    For `docker exec -i CONTAINER hud connect`: the caller speaks over the pipes and must
    kill and wait for the process when done. With `stdio`, the process's stdin and stdout
    are that socket instead (the caller keeps the other end of a socketpair).

    Raises:
        DockerError: the client is missing or cannot be started.
    """
    command = argv(*args, binary=binary)
    try:
        return await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE if stdio is None else stdio.fileno(),
            stdout=asyncio.subprocess.PIPE if stdio is None else stdio.fileno(),
            stderr=asyncio.subprocess.PIPE, env=_env(), limit=limit)
    except OSError as exc:
        raise DockerError(f"cannot start the docker client {command[0]!r}: {exc}; "
                          f"{FIX_INSTALL}") from exc


def detached(*args: str, binary: str | None = None) -> subprocess.Popen[bytes]:
    """Start `docker ARGS` that finishes even if this process or its event loop ends
    first (output discarded): for cleanup, like removing a used container, that nothing
    waits on. The caller may `wait()` for it.

    Raises:
        DockerError: the client is missing or cannot be started.
    """
    command = argv(*args, binary=binary)
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    except OSError as exc:
        raise DockerError(f"cannot start the docker client {command[0]!r}: {exc}; "
                          f"{FIX_INSTALL}") from exc


def ensure_engine() -> str:
    """Check that the client exists and the engine answers; return the server version.

    Raises:
        DockerError: Docker is missing or the engine is not running, with the fix.
    """
    binary = docker_bin()
    if binary in _checked:
        return "ok"
    done = docker("version", "--format", "{{.Server.Version}}", timeout=30, binary=binary)
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
    args = ["build", "--force-rm", "-t", tag]
    if dockerfile is not None:
        args += ["-f", str(dockerfile)]
    if no_cache:
        args.append("--no-cache")
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    done = docker(*args, str(context), timeout=timeout)
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
        ConfigError: `ref` is not a reference (`checked_ref`: it starts with '-', ...).
        DockerError: the engine is unreachable.
    """
    checked_ref(ref)
    ensure_engine()
    done = docker("image", "inspect", "--", ref)
    if not done.ok:
        if "no such image" in done.stderr.lower() or "not found" in done.stderr.lower():
            return None
        raise DockerError(f"docker image inspect {ref} failed: {done.tail(3)}")
    data = json.loads(done.stdout or "[]")
    return data[0] if data else None


def image_labels(ref: str) -> dict[str, str]:
    """The labels of image `ref` (empty when it has none).

    Raises:
        DockerError: there is no such image.
    """
    info = inspect_image(ref)
    if info is None:
        raise DockerError(f"no image {ref!r} in the local Docker engine; build it first")
    return dict((info.get("Config") or {}).get("Labels") or {})


async def aimage_labels(ref: str, *, binary: str | None = None) -> dict[str, str] | None:
    """The labels of image `ref` read with `binary` without blocking the event loop
    (empty when it has none); None when docker cannot read them (no such image, the
    engine down: the caller decides what that means).

    Raises:
        ConfigError: `ref` is not a reference (`checked_ref`).
    """
    checked_ref(ref)
    done = await adocker("image", "inspect", "--", ref, timeout=60, binary=binary)
    if not done.ok:
        return None
    try:
        labels = (json.loads(done.stdout)[0].get("Config") or {}).get("Labels") or {}
    except (ValueError, IndexError, AttributeError, TypeError):
        return None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def image_size_mb(ref: str) -> float:
    """The image's size (all its layers) in MB, as `docker images` reports it."""
    info = inspect_image(ref)
    return round(float((info or {}).get("Size", 0)) / 1e6, 1)


def labelled(label: str, *, binary: str | None = None) -> list[str]:
    """Ids of the containers (any state) that carry `label` (`KEY` or `KEY=VALUE`).

    Raises:
        DockerError: docker could not list them (e.g. the engine is down).
    """
    return check("ps", "-aq", "--filter", f"label={label}", binary=binary,
                 what=f"listing the containers labelled {label}").stdout.split()


async def alabelled(label: str, *, binary: str | None = None) -> list[str]:
    """`labelled` without blocking the event loop.

    Raises:
        DockerError: docker could not list them (e.g. the engine is down).
    """
    done = await acheck("ps", "-aq", "--filter", f"label={label}", binary=binary,
                        what=f"listing the containers labelled {label}")
    return done.stdout.split()


def remove_images(refs: Sequence[str]) -> list[str]:
    """Remove images by tag or id; return the ones that were removed.

    Raises:
        DockerError: one could not be removed (e.g. a container still uses it).
    """
    if not refs:
        return []
    check("rmi", *refs, timeout=300, what=f"docker rmi {' '.join(refs)}")
    return list(refs)

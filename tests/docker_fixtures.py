"""Fixtures for tests that use the real Docker engine.

Import them into a test module (`from tests.docker_fixtures import ...  # noqa: F401`).
The hud layers are built once per session (`ensure_layers` is a no-op when they are
current); every container and env image a test makes is removed at teardown.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT = 60.0


def _engine_or_fail() -> None:
    from hud.build.docker import ensure_engine
    from hud.errors import DockerError

    try:
        ensure_engine()
    except DockerError as exc:
        if os.environ.get("HUD_SKIP_DOCKER") == "1":
            pytest.skip(f"HUD_SKIP_DOCKER=1 and {exc}")
        pytest.fail(f"these tests need Docker: {exc}", pytrace=False)


def _layer(name: str) -> str:
    _engine_or_fail()
    from hud.build.layers import ensure_layers

    return ensure_layers(name)[-1].tag


@pytest.fixture(scope="session")
def base_layer() -> str:
    """The tag of a current hud-base layer (built on first use)."""
    return _layer("base")


@pytest.fixture(scope="session")
def browser_layer(base_layer: str) -> str:
    """The tag of a current hud-browser layer (built on first use: Chromium, ~1 min)."""
    return _layer("browser")


@pytest.fixture(scope="session")
def desktop_layer(browser_layer: str) -> str:
    """The tag of a current hud-desktop layer (built on first use)."""
    return _layer("desktop")


@pytest.fixture(scope="session")
def template_image(tmp_path_factory: pytest.TempPathFactory,
                   base_layer: str) -> Iterator[Callable[[str], tuple[Path, str]]]:
    """Build a shipped template (`hud init` + `hud build`) once per session."""
    from hud.build.env_image import build_env
    from hud.build.scaffold import scaffold

    built: dict[str, tuple[Path, str]] = {}

    def get(template: str) -> tuple[Path, str]:
        if template not in built:
            folder, _ = scaffold(tmp_path_factory.mktemp(template) / f"rt-{template}", template)
            tag = unique_tag(f"hud-test-rt-{template}")
            build_env(folder, tag=tag)
            built[template] = (folder, tag)
        return built[template]

    yield get
    for _, tag in built.values():
        docker_cli("rmi", "-f", tag, timeout=120)


def docker_cli(*args: str, timeout: float = 120, input: str | None = None,
               check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI (as a user would) and return the completed process."""
    done = subprocess.run(["docker", *args], check=False, capture_output=True, text=True, timeout=timeout,
                          input=input, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr}{done.stdout}")
    return done


class Containers:
    """Starts containers with unique names; removes every one at teardown."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def run(self, image: str, *args: str, options: tuple[str, ...] = ()) -> str:
        name = f"hud-test-{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        docker_cli("run", "-d", "--name", name, *options, image, *args, check=True)
        return name

    def exec(self, name: str, *args: str, user: str | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
        opts = ["-u", user] if user else []
        return docker_cli("exec", *opts, name, *args, timeout=timeout)

    def hud(self, name: str, *args: str) -> str:
        """`docker exec NAME hud ARGS`; its stdout, stripped (fails on a non-zero exit)."""
        done = self.exec(name, "hud", *args)
        assert done.returncode == 0, f"hud {' '.join(args)}: {done.stderr}{done.stdout}"
        return done.stdout.strip()

    def wait_healthy(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        """Poll `hud health` inside the container until the daemon answers."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            done = self.exec(name, "hud", "health", timeout=30)
            if done.returncode == 0:
                return
            last = done.stderr + done.stdout
            time.sleep(0.05)
        logs = docker_cli("logs", "--tail", "30", name)
        raise AssertionError(f"{name}: daemon not healthy in {timeout}s: {last}\n"
                             f"{logs.stdout}{logs.stderr}")

    def remove_all(self) -> None:
        if self.names:
            docker_cli("rm", "-f", *self.names, timeout=120)


@pytest.fixture
def containers() -> Iterator[Containers]:
    """A `Containers` whose containers are always removed."""
    _engine_or_fail()
    made = Containers()
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture
def image_tags() -> Iterator[list[str]]:
    """A list a test appends image tags to; they are removed at teardown."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        docker_cli("rmi", "-f", tag, timeout=120)


def unique_tag(prefix: str) -> str:
    """A fresh image name for one test."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def labels(image: str) -> dict[str, Any]:
    """An image's labels."""
    done = docker_cli("image", "inspect", "--format", "{{json .Config.Labels}}", image,
                      check=True)
    return json.loads(done.stdout) or {}


def env_dir(tmp_path: Path, name: str, body: str, dockerfile: str | None = None) -> Path:
    """Write an environment directory (env.py, optional Dockerfile) under tmp_path."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "env.py").write_text(body)
    if dockerfile is not None:
        (folder / "Dockerfile").write_text(dockerfile)
    return folder


def openssh_as_agent(container: str, key_dir: Path,
                     timeout: float = 60) -> tuple[Any, list[str]]:
    """A real OpenSSH client into `container`'s `shell` capability through
    `docker exec -i ... hud connect --tunnel shell`, with the binding's key and pinned host
    key written under `key_dir`. Returns `run(command)` and the ssh options (for scp)."""
    manifest = json.loads(docker_cli("exec", container, "hud", "manifest", check=True).stdout)
    shell = next(b for b in manifest["bindings"] if b["name"] == "shell")
    key = key_dir / "id_ed25519"
    key.write_text(shell["params"]["client_key"])
    key.chmod(0o600)
    known = key_dir / "known_hosts"
    known.write_text(f"{container} {shell['params']['host_pubkey']}\n")
    opts = ["-i", str(key), "-o", f"ProxyCommand=docker exec -i {container} hud connect "
            f"--tunnel shell", "-o", f"UserKnownHostsFile={known}", "-o",
            "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]

    def run(command: str, timeout: float = timeout) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh", *opts, f"agent@{container}", command], capture_output=True,
                              text=True, timeout=timeout)

    return run, opts

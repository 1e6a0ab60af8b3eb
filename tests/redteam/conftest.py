"""Red-team fixtures: the real coding and blank templates built once, run with the docker
placement's secure defaults, and a hostile agent that attacks over ssh as `agent`."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.docker_fixtures import _engine_or_fail, base_layer, docker_cli, template_image, unique_tag  # noqa: F401


class SecureContainers:
    """Containers started exactly as the docker placement starts them (dropped
    capabilities, no network, pids limit...), kept for several tasks; always removed."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def run(self, image: str, *, memory: str | None = None, env: dict[str, str] | None = None,
            command: tuple[str, ...] = ()) -> str:
        from hud.eval import DockerPlacement
        from hud.eval import placement as placements

        placement = DockerPlacement(image, memory=memory)
        for _ in range(2):
            rollout = unique_tag("rt")
            argv = placement.run_argv("redteam", rollout)[:-1]  # the image goes last
            for key, value in (env or {}).items():
                argv += ["-e", f"{key}={value}"]
            done = subprocess.run([*argv, image, *command], capture_output=True, text=True,
                                  timeout=120, check=False)
            if done.returncode == 0 or "apply caps" not in done.stderr:
                break
            # the engine cannot grant SYS_RESOURCE: fall back as the placement itself does
            placements._NO_SYS_RESOURCE.add(placement.docker)
            stale = docker_cli("ps", "-aq", "--filter", f"label=org.hud.rollout={rollout}")
            if stale.stdout.split():
                docker_cli("rm", "-f", *stale.stdout.split())
        assert done.returncode == 0, done.stderr
        self.ids.append(done.stdout.strip())
        return self.ids[-1]

    def root(self, container: str, script: str, timeout: float = 60) -> str:
        """Run `script` as root in the container (the operator's view); its stdout."""
        done = docker_cli("exec", container, "bash", "-c", script, timeout=timeout)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    def remove_all(self) -> None:
        if self.ids:
            docker_cli("rm", "-f", *self.ids, timeout=120)


@pytest.fixture
def secure() -> Iterator[SecureContainers]:
    """A `SecureContainers` whose containers are removed at teardown."""
    _engine_or_fail()
    made = SecureContainers()
    try:
        yield made
    finally:
        made.remove_all()


async def as_agent(ctx: Any, script: str, timeout: float = 120) -> Any:
    """Run a bash script over the ssh capability as the agent; the completed process."""
    ssh = await ctx.ssh()
    try:
        return await asyncio.wait_for(ssh.run(script, check=False), timeout)
    finally:
        ssh.close()


class Hostile:
    """An agent that runs `script` over ssh (as uid 1000) and then answers `answer`."""

    name = "hostile"

    def __init__(self, script: str, answer: Any = "fixed it") -> None:
        self.script = script
        self.answer = answer

    async def __call__(self, run: Any) -> Any:
        done = await as_agent(run, self.script)
        run.record("attack", exit=done.exit_status, stdout=str(done.stdout)[-2000:],
                   stderr=str(done.stderr)[-2000:])
        return self.answer

"""The docker placement reaches its containers over their own `docker run -i` (no exec):
how the containers are started, that the agent cannot reach that connection, that an
entrypoint hook cannot corrupt it, how a container that never serves fails, and that an
image built without `org.hud.connect` is still reached with `docker exec`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hud.errors import HudError
from hud.eval import DockerPlacement, Taskset
from tests.docker_fixtures import base_layer, docker_cli, env_dir, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker

# one task with an ssh workspace: the agent reads a token the task wrote
WS_ENV = (Path(__file__).resolve().parent.parent / "envs" / "remember.py").read_text()

# a hook that talks: it writes to stdout and reads all of stdin (what it would take of
# the host's frames if it had the connection)
NOISY_HOOK = """ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN printf '#!/bin/sh\\necho HOOK-NOISE\\ncat > /tmp/hook-read\\n' > /etc/hud/entrypoint.d/10-noisy \\
 && chmod 0755 /etc/hud/entrypoint.d/10-noisy
COPY --chown=root:root . /opt/hud/env/
"""
FAILING_HOOK = """ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN printf '#!/bin/sh\\necho the-hook-broke >&2\\nexit 3\\n' > /etc/hud/entrypoint.d/10-bad \\
 && chmod 0755 /etc/hud/entrypoint.d/10-bad
COPY --chown=root:root . /opt/hud/env/
"""

# every process's command line, one per line (the image has no ps)
PROCS = r"""for p in /proc/[0-9]*; do echo "${p#/proc/} $(tr '\0' ' ' < $p/cmdline)"; done"""

# as the agent: try to open every root process's stdin (to read) and stdout (to write);
# a descriptor that opens (read succeeds or blocks) is OPENED
OPEN_ROOTS = r"""
n=0
for p in /proc/[0-9]*; do
  [ "$(stat -c %u $p 2>/dev/null)" = 0 ] || continue
  n=$((n+1))
  timeout 1 head -c1 $p/fd/0 >/dev/null 2>&1; rc=$?
  if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then echo "OPENED $p/fd/0"; fi
  if (echo x > $p/fd/1) 2>/dev/null; then echo "OPENED $p/fd/1"; fi
done
echo "root processes: $n"
"""

# as root in the container: the pipes pid 1 holds as stdin/stdout (the connection), and
# every pid holding one of them
HOLDERS = r"""
a=$(readlink /proc/1/fd/0); b=$(readlink /proc/1/fd/1)
for p in /proc/[0-9]*; do
  for f in $p/fd/*; do
    l=$(readlink $f 2>/dev/null) || continue
    if [ "$l" = "$a" ] || [ "$l" = "$b" ]; then echo "${p#/proc/} $(stat -c %u $p)"; fi
  done
done | sort -u
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, base_layer: str):  # type: ignore[no-untyped-def]
    """The letters env three ways: as built, with a noisy hook, with a failing hook."""
    from hud.build.env_image import build_env

    root = tmp_path_factory.mktemp("run-transport")
    made = {}
    for kind, dockerfile in (("plain", None), ("noisy", NOISY_HOOK), ("failing", FAILING_HOOK)):
        folder = env_dir(root, kind, WS_ENV, dockerfile)
        made[kind] = unique_tag(f"hud-test-rt-{kind}")
        build_env(folder, tag=made[kind])
    made["source"] = str(folder)
    yield made
    docker_cli("rmi", "-f", *(made[k] for k in ("plain", "noisy", "failing")), timeout=120)


async def _inside(images, image: str, probe):  # type: ignore[no-untyped-def]
    """Run `probe(run, container)` as the agent of one oracle rollout on `image`."""
    seen = {}

    async def agent(run):  # type: ignore[no-untyped-def]
        seen["value"] = await probe(run, run._lease.info["container"])
        return await run.solve()

    job = await Taskset.from_source(images["source"]).run(agent, runtime=DockerPlacement(image))
    assert [r.reward for r in job.runs] == [1.0], [r.error for r in job.runs]
    return seen["value"]


async def test_the_container_is_attached_removed_by_docker_and_unlogged(images) -> None:  # type: ignore[no-untyped-def]
    """The placement's container runs with --rm, no log driver, HUD_CONNECT=stdio and no
    healthcheck; no `hud connect` process is in it; it is gone once the job ends."""

    async def probe(run, container):  # type: ignore[no-untyped-def]
        info = json.loads(docker_cli("inspect", container, check=True).stdout)[0]
        procs = docker_cli("exec", container, "sh", "-c", PROCS, check=True).stdout
        return info, procs, container

    info, procs, container = await _inside(images, images["plain"], probe)
    assert info["HostConfig"]["AutoRemove"] is True
    assert info["HostConfig"]["LogConfig"]["Type"] == "none"
    assert "HUD_CONNECT=stdio" in info["Config"]["Env"]
    assert info["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert "hud connect" not in procs and "hud serve" in procs
    assert docker_cli("ps", "-aq", "--filter", f"name={container}", check=True).stdout == ""


async def test_only_tini_and_the_daemon_hold_the_connection(images) -> None:  # type: ignore[no-untyped-def]
    """While the agent's ssh session and its background process run, the pipes of the
    connection are held by pid 1 (tini) and the daemon alone, both root; the agent cannot
    open them through /proc."""

    async def probe(run, container):  # type: ignore[no-untyped-def]
        ssh = await run.ssh()
        await ssh.run("nohup sleep 300 >/dev/null 2>&1 &", check=True)
        tried = await ssh.run(OPEN_ROOTS)
        holders = docker_cli("exec", container, "sh", "-c", HOLDERS, check=True).stdout
        procs = docker_cli("exec", container, "sh", "-c", PROCS, check=True).stdout
        daemon = next(line.split()[0] for line in procs.splitlines()
                      if "venv/bin/hud serve" in line)
        return tried.stdout, holders, daemon

    tried, holders, daemon = await _inside(images, images["plain"], probe)
    assert "OPENED" not in tried and "root processes: 0" not in tried, tried
    held = [line.split() for line in holders.splitlines()]
    assert {pid for pid, _ in held} == {"1", daemon}, holders
    assert {uid for _, uid in held} == {"0"}


async def test_an_entrypoint_hook_neither_reads_nor_writes_the_connection(images) -> None:  # type: ignore[no-untyped-def]
    """A hook that prints and reads stdin to its end: the rollout still grades 1.0 (its
    output went to stderr, its stdin was /dev/null)."""

    async def probe(run, container):  # type: ignore[no-untyped-def]
        return docker_cli("exec", container, "wc", "-c", "/tmp/hook-read", check=True).stdout

    assert (await _inside(images, images["noisy"], probe)).split()[0] == "0"


async def test_a_container_that_never_serves_fails_with_its_own_words(images) -> None:  # type: ignore[no-untyped-def]
    """A failing entrypoint hook: open() raises an InfraError quoting the hook's stderr
    and the exit status, and leaves no container."""
    placement = DockerPlacement(images["failing"], ready_timeout=30)
    with pytest.raises(HudError, match=r"stopped before its hud daemon answered hello "
                                       r"\(exit=3(.|\n)*the-hook-broke"):
        await placement.open("job-never-serves", "r1")
    await placement.shutdown()
    left = docker_cli("ps", "-aq", "--filter", "label=org.hud.job=job-never-serves",
                      check=True).stdout
    assert left == ""


async def test_an_image_without_the_connect_label_is_reached_by_exec(images) -> None:  # type: ignore[no-untyped-def]
    """An image whose daemon does not serve its stdio (built by an older hud; here the
    label is blanked) is started detached and reached with one `docker exec` that runs
    `hud connect --mux`; the rollout grades 1.0 and the container is removed."""
    tag = unique_tag("hud-test-rt-exec")
    docker_cli("build", "-t", tag, "-", input=f"FROM {images['plain']}\n"
               f"LABEL org.hud.connect=\"\"\n", check=True)
    try:
        async def probe(run, container):  # type: ignore[no-untyped-def]
            return container, docker_cli("exec", container, "sh", "-c", PROCS,
                                         check=True).stdout

        container, procs = await _inside(images, tag, probe)
        assert "hud connect --mux" in procs
        assert not container.startswith("hud-")
        assert docker_cli("ps", "-aq", "--filter", f"id={container}", check=True).stdout == ""
    finally:
        docker_cli("rmi", "-f", tag, timeout=120)

"""HUD_DOCKER holds everywhere: the placement, `hud prune`, `hud ssh`, `hud task list --image`.

Each test points HUD_DOCKER at a stand-in client (tests/build/fakedocker.py) that logs
its argv, and checks that every docker command of the feature reached it, and that its
failures come back as hud's typed errors. The same features against the real engine are
in tests/eval/test_docker.py and tests/capabilities/test_capabilities_docker.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hud.errors import ConfigError, DockerError
from hud.eval import AttachPlacement, DockerPlacement
from tests.build.fakedocker import CONTAINER_ID, FakeDocker, image_labels
from tests.conftest import ENVS
from tests.manifestkit import valid_manifest


@pytest.fixture
def fake(tmp_path: Path) -> FakeDocker:
    return FakeDocker(tmp_path / "bin")


def hud(fake: FakeDocker, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the `hud` CLI with `fake` as its docker client."""
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], env=fake.env(**env),
                          capture_output=True, text=True, timeout=60)


async def _first_task_through(placement: DockerPlacement) -> str:
    """The slug of the first task listed over one lease of `placement`, once the lease
    is closed and the placement has shut down (its container gone or removed)."""
    lease = await placement.open("job1", "r1")
    try:
        listing = await lease.channel.call("tasks.list")
    finally:
        await lease.close()
        await placement.shutdown()
    return str(listing["tasks"][0]["slug"])


async def test_docker_placement_runs_an_attached_rollout_through_hud_docker(
        fake: FakeDocker, start_daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image labelled org.hud.connect=stdio: the placement's label read and its one
    `docker run -i --rm` (whose stdio is the connection; bridged to a real daemon here) go
    to $HUD_DOCKER, and the container, gone by itself, needs no rm."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    fake.use(monkeypatch)
    monkeypatch.setenv("HUD_SOCKET", str(daemon.socket_path))
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", json.dumps({"fake-env:1": {
        "org.hud.connect": "stdio"}}))
    assert (await _first_task_through(DockerPlacement("fake-env:1"))) == "count_letter"
    assert fake.commands() == ["image", "run"]
    inspect, run = fake.calls()
    assert {inspect[0], run[0]} == {str(fake.path)}
    assert inspect[1:] == ["image", "inspect", "--", "fake-env:1"]
    assert run[1:5] == ["run", "-i", "--rm", "--name"] and run[-1] == "fake-env:1"
    assert "HUD_CONNECT=stdio" in run and "--label" in run


async def test_docker_placement_runs_a_rollout_through_hud_docker(
        fake: FakeDocker, start_daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image without the label (an older hud's): the placement's run, its `docker exec
    -i ... hud connect` channel and its rm all go to $HUD_DOCKER (which bridges to a real
    daemon here)."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    fake.use(monkeypatch)
    monkeypatch.setenv("HUD_SOCKET", str(daemon.socket_path))
    assert (await _first_task_through(DockerPlacement("fake-env:1"))) == "count_letter"
    assert fake.commands() == ["image", "run", "exec", "rm"]
    _, run, connect, remove = fake.calls()
    assert {run[0], connect[0], remove[0]} == {str(fake.path)}
    assert "--label" in run and run[-1] == "fake-env:1"
    assert connect[1:] == ["exec", "-i", CONTAINER_ID, "hud", "connect", "--mux", "--wait",
                           "120"]
    assert remove[1:] == ["rm", "-f", CONTAINER_ID]


async def _used_lease(fake: FakeDocker, start_daemon: Any, monkeypatch: pytest.MonkeyPatch,
                     tmp_path: Path) -> tuple[DockerPlacement, Path]:
    """A placement whose one rollout is over, its container's `rm -f` held at a gate."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    fake.use(monkeypatch)
    gate = tmp_path / "gate"
    monkeypatch.setenv("HUD_SOCKET", str(daemon.socket_path))
    monkeypatch.setenv("FAKE_DOCKER_RM_GATE", str(gate))
    placement = DockerPlacement("fake-env:1")
    lease = await placement.open("job1", "r1")
    await lease.close()
    return placement, gate


async def test_a_used_container_is_removed_in_the_background(
        fake: FakeDocker, start_daemon: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """Closing a lease does not wait for `docker rm -f` (the next rollout starts while it
    runs); the placement's shutdown waits for it."""
    placement, gate = await _used_lease(fake, start_daemon, monkeypatch, tmp_path)
    try:
        assert fake.removed() == []  # the lease closed while its rm is held at the gate
    finally:
        gate.touch()
    await placement.shutdown()
    assert fake.removed() == [CONTAINER_ID] and fake.commands()[-1] == "rm"


async def test_a_cancelled_shutdown_still_waits_for_removals(
        fake: FakeDocker, start_daemon: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """Ctrl-C during the shutdown (one cancel): it still waits for the pending `rm -f`,
    then raises the cancel."""
    placement, gate = await _used_lease(fake, start_daemon, monkeypatch, tmp_path)
    shutdown = asyncio.create_task(placement.shutdown())
    try:
        await asyncio.sleep(0.2)
        shutdown.cancel()
        await asyncio.sleep(0.2)
        assert not shutdown.done() and fake.removed() == []
    finally:
        gate.touch()
    with pytest.raises(asyncio.CancelledError):
        await shutdown
    assert fake.removed() == [CONTAINER_ID]


def test_run_argv_starts_with_hud_docker(fake: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line the placement documents (`run_argv`) names $HUD_DOCKER too."""
    fake.use(monkeypatch)
    assert DockerPlacement("img").run_argv("job1", "r1")[:3] == [str(fake.path), "run", "-d"]


async def test_docker_argument_beats_hud_docker(tmp_path: Path, fake: FakeDocker,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """DockerPlacement(docker=X) runs X, not $HUD_DOCKER; X's failure is a DockerError."""
    fake.use(monkeypatch)  # both clients log to fake's log, each call under its own path
    monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    other = FakeDocker(tmp_path / "other")
    with pytest.raises(DockerError, match=r"(?s)docker run fake-env:1 failed: the Docker engine is "
                                          r"not reachable.*"
                                          r"Cannot connect.*start it as root"):
        await DockerPlacement("fake-env:1", docker=str(other.path)).open("job1", "r1")
    assert [c[:2] for c in fake.calls()] == [[str(other.path), "image"], [str(other.path), "run"]]


async def test_attach_placement_execs_through_hud_docker(
        fake: FakeDocker, start_daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """AttachPlacement on a container name reaches it with $HUD_DOCKER's `exec -i`."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    fake.use(monkeypatch)
    monkeypatch.setenv("HUD_SOCKET", str(daemon.socket_path))
    lease = await AttachPlacement("run1").open("job1", "r1")
    await lease.close()
    assert fake.calls() == [[str(fake.path), "exec", "-i", "run1", "hud", "connect", "--mux",
                             "--wait", "30"]]


def test_prune_lists_and_removes_through_hud_docker(fake: FakeDocker) -> None:
    """`hud prune --job j1` asks $HUD_DOCKER for j1's containers and removes exactly those."""
    done = hud(fake, "prune", "--job", "j1", FAKE_DOCKER_PS="c1 c2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "removed 2 container(s)"
    assert [c[1:] for c in fake.calls()] == [["ps", "-aq", "--filter", "label=org.hud.job=j1"],
                                             ["rm", "-f", "c1", "c2"]]


def test_prune_keeps_the_containers_of_live_jobs(fake: FakeDocker) -> None:
    """`hud prune` (no --job) removes what dead or unlabelled owners left, keeps a live
    job's containers and another host's (naming why), and says both."""
    import socket

    from hud.eval.owner import this_owner

    host = socket.gethostname()
    lines = [f"live j1 {this_owner()}",  # this test's process: alive
             f"dead j2 {host}/1/1",  # pid 1 exists, but did not start at tick 1
             "away j3 other-host/42/42", "old j4 "]
    done = hud(fake, "prune", FAKE_DOCKER_PS_LINES=";".join(lines))
    assert done.returncode == 0, done.stderr
    assert fake.calls()[-1][1:] == ["rm", "-f", "dead", "old"]
    assert done.stdout.splitlines()[0] == "removed 2 container(s)"
    assert "kept 2 container(s):" in done.stdout
    assert "live  job j1: still running (pid" in done.stdout
    assert "away  job j3: owned by other-host/42/42, on another host" in done.stdout


def test_prune_with_the_engine_down_says_how_to_start_it(fake: FakeDocker) -> None:
    """`hud prune` against a stopped engine: exit 1, docker's words and the fix."""
    done = hud(fake, "prune", FAKE_DOCKER_DOWN="1")
    assert done.returncode == 1
    assert ("listing the containers labelled org.hud.job failed: the Docker engine is not "
            "reachable") in done.stderr
    assert done.stderr.count("\n") == 1  # one line
    assert "Cannot connect to the Docker daemon" in done.stderr
    assert "start it as root" in done.stderr


def test_ssh_proxy_command_resolves_hud_docker_on_path(fake: FakeDocker, tmp_path: Path) -> None:
    """HUD_DOCKER as a bare name: found on PATH; the manifest is read with it and
    ProxyCommand names its full path, quoted."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(valid_manifest()))
    env = fake.env(FAKE_DOCKER_MANIFEST=str(manifest), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["HUD_DOCKER"] = fake.path.name
    env["PATH"] = f"{fake.path.parent}:{env['PATH']}"
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "ssh", "c1", "--print"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout)
    assert f"ProxyCommand={fake.path} exec -i c1 hud connect --tunnel shell" in argv
    assert fake.calls() == [[str(fake.path), "exec", "--", "c1", "hud", "manifest"]]


def test_task_list_image_reads_labels_through_hud_docker(fake: FakeDocker) -> None:
    """`hud task list --image` reads the manifest label with $HUD_DOCKER's image inspect."""
    done = hud(fake, "task", "list", "--image", "fake-env:1", "--json",
               FAKE_DOCKER_IMAGES=image_labels(valid_manifest()))
    assert done.returncode == 0, done.stderr
    assert [t["slug"] for t in json.loads(done.stdout)["tasks"]] == ["fix"]
    assert [c[1:3] for c in fake.calls()] == [["version", "--format"], ["image", "inspect"]]
    assert fake.calls()[-1][-1] == "fake-env:1"


def test_an_image_reference_starting_with_a_dash_never_reaches_docker(fake: FakeDocker) -> None:
    """`hud task list --image=--help`: exit 1 naming the reference, and no docker command
    ran (docker would have read it as its own option)."""
    done = hud(fake, "task", "list", "--image=--help")
    assert done.returncode == 1
    assert "image reference '--help' is not one docker can take" in done.stderr
    assert "Traceback" not in done.stderr
    assert not fake.log.exists() or fake.calls() == []


def test_task_list_of_a_missing_image_says_build_it(fake: FakeDocker) -> None:
    """`hud task list --image` of an image the engine lacks: exit 1 naming it, and the fix."""
    done = hud(fake, "task", "list", "--image", "nope:1")
    assert done.returncode == 1
    assert "no image 'nope:1' in the local Docker engine; build it first" in done.stderr


def test_unusable_hud_docker_is_named(tmp_path: Path) -> None:
    """HUD_DOCKER naming no executable: exit 1 with the value and the fix, nothing run."""
    missing = tmp_path / "no-docker-here"
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "prune"],
                          env={**os.environ, "HUD_DOCKER": str(missing)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"HUD_DOCKER='{missing}' is not an executable docker client" in done.stderr


@pytest.mark.parametrize("arg", ["-t", "--tty", "-d", "--log-driver=json-file", "--log-driver",
                                 "--name", "--rm", "--attach=stdout"])
async def test_extra_args_that_change_the_attached_run_are_refused(
        fake: FakeDocker, monkeypatch: pytest.MonkeyPatch, arg: str) -> None:
    """extra_args that would give the attached container a tty, detach it, log its stdio
    (the connection) or rename it: a ConfigError naming the option, before any run."""
    fake.use(monkeypatch)
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", json.dumps({"fake-env:1": {
        "org.hud.connect": "stdio"}}))
    placement = DockerPlacement("fake-env:1", extra_args=[arg, "x"])
    with pytest.raises(ConfigError, match=rf"extra docker run option {re.escape(repr(arg))} "
                                          r"conflicts(.|\n)*drop it"):
        await placement.open("job1", "r1")
    assert fake.commands() == ["image"]


async def test_a_network_check_that_cannot_read_the_label_does_not_pass(
        fake: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A network other than `none` needs the image's labels (org.hud.network may forbid
    it): when docker cannot read them, open() raises a DockerError saying so, and no
    container is started."""
    fake.use(monkeypatch)
    placement = DockerPlacement("missing:1", network="bridge")
    with pytest.raises(DockerError, match=r"cannot read the labels of image missing:1 to check "
                                          r"that it may run with network 'bridge'"):
        await placement.open("job1", "r1")
    assert fake.commands() == ["image"]

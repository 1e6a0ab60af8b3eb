"""The seeded protocol fuzzer through the real exec bridge: `docker exec -i C hud connect`
into a container (the docker placement's secure defaults, no network) whose daemon serves
the fault-injecting env. Same model and checks as tests/test_fuzz_protocol.py."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from tests.conftest import ENVS
from tests.docker_fixtures import base_layer, docker_cli, env_dir, unique_tag  # noqa: F401
from tests.redteam.conftest import secure  # noqa: F401
from tests.test_fuzz_protocol import MAX_FRAME, SEED, Frames, Model, Peer, _clean_up_and_check, _session

pytestmark = pytest.mark.docker

BURSTS = 150  # each burst costs a little more through docker exec


@pytest.fixture(scope="module")
def faults_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    """The fault-injecting test env (tests/envs/faults.py) built into an image."""
    from hud.build.env_image import build_env

    folder = env_dir(tmp_path_factory.mktemp("faults"), "faults", (ENVS / "faults.py").read_text())
    tag = unique_tag("hud-test-faults")
    build_env(folder, tag=tag)
    yield tag
    docker_cli("rmi", "-f", tag, timeout=120)


async def _exec_bridge(container: str) -> Peer:
    proc = await asyncio.create_subprocess_exec(
        "docker", "exec", "-i", container, "hud", "connect",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 22)
    assert proc.stdin is not None and proc.stdout is not None
    return Peer(proc.stdout, proc.stdin, proc)


def _daemon_rss_kib(secure, box: str) -> int:
    out = secure.root(box, "grep VmRSS /proc/$(pgrep -o -f 'bin/hud serve')/status")
    return int(out.split()[1])


async def test_fuzzed_frames_through_docker_exec(faults_image: str, secure) -> None:
    """Through `docker exec -i ... hud connect`: every request answered exactly once, no
    connection dropped without its error frame, the daemon alive, serving and lean after."""
    box = secure.run(faults_image, command=("hud", "serve", "--max-frame", str(MAX_FRAME)))
    for _ in range(200):  # readiness: the healthcheck command answers once the daemon serves
        if docker_cli("exec", box, "hud", "health").returncode == 0:
            break
        await asyncio.sleep(0.1)
    await _session(await _exec_bridge(box), Frames(random.Random(0)), Model(None), 3)  # warm up
    baseline = _daemon_rss_kib(secure, box)
    rng = random.Random(f"{SEED}-exec")
    gen = Frames(rng)
    sent, left = 0, BURSTS
    while left > 0:
        bursts = min(left, rng.choice([10, 30]))
        sent += await _session(await _exec_bridge(box), gen, Model(None), bursts)
        left -= bursts
    assert sent >= BURSTS
    state = docker_cli("inspect", "-f", "{{.State.Running}}", box).stdout.strip()
    assert state == "true"
    checker = await _exec_bridge(box)
    await _clean_up_and_check(checker)
    await checker.close()
    assert _daemon_rss_kib(secure, box) < baseline + 48 * 1024
    assert json.loads(docker_cli("exec", box, "hud", "task", "list", "--json").stdout)["tasks"]

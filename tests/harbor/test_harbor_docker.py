"""Harbor tasks end to end in real containers: `hud harbor import` → `hud build` → `hud eval`.

The example tasks (tests/harbor/tasks) and three broken verifiers share one environment,
so one env image, built once per session, serves every test here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.build.docker import inspect_image
from hud.build.rootfs import bootstrap, rootfs_tag
from hud.errors import ConfigError
from hud.eval import DockerPlacement, Taskset
from hud.harbor.base import base_tags
from hud.task import Task
from tests.docker_fixtures import _engine_or_fail, docker_cli, labels, unique_tag
from tests.harbor.kit import EXAMPLES, example, write_task
from tests.redteam.conftest import as_agent

pytestmark = pytest.mark.docker

BROKEN = {
    "verifier-timeout": ("#!/bin/bash\nsleep 60\necho 1 > /logs/verifier/reward.txt\n", 2.0),
    "no-reward": ("#!/bin/bash\necho 'checked, but wrote nothing'\n", 60.0),
    "bad-reward": ("#!/bin/bash\necho PASSED > /logs/verifier/reward.txt\n", 60.0),
}
ENV_NAME = "harbor-examples-test"


def hud(runs: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`hud ARGS` as a user runs it (its own process), traces under `runs`."""
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "HUD_RUNS_DIR": str(runs)})


@pytest.fixture(scope="session")
def rootfs() -> str:
    """The bootstrapped Debian root the example tasks' Dockerfile is FROM (offline)."""
    _engine_or_fail()
    if inspect_image(rootfs_tag()) is None:
        bootstrap()
    return rootfs_tag()


@pytest.fixture(scope="session")
def harbor_env(tmp_path_factory: pytest.TempPathFactory,
               rootfs: str) -> Iterator[tuple[Path, str, Path]]:
    """(env dir, image tag, runs dir): the examples plus BROKEN, imported and built once."""
    work = tmp_path_factory.mktemp("harbor")
    sources = [str(example(name)) for name in EXAMPLES]
    for name, (script, timeout) in BROKEN.items():
        sources.append(str(write_task(work / "src", name, script, verifier_timeout=timeout)))
    env_dir, runs, tag = work / "env", work / "runs", unique_tag("hud-test-harbor")
    done = hud(runs, "harbor", "import", *sources, "-o", str(env_dir), "--name", ENV_NAME)
    assert done.returncode == 0, done.stderr
    try:
        done = hud(runs, "build", str(env_dir), "-t", tag, timeout=1800)
        assert done.returncode == 0, done.stderr + done.stdout
        yield env_dir, tag, runs
    finally:
        docker_cli("rmi", "-f", tag, *base_tags(ENV_NAME), timeout=300)


def _job(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_oracle_scores_one_on_every_example(harbor_env: tuple[Path, str, Path]) -> None:
    """`hud eval ENV oracle`: solve.sh (as the agent) then test.sh give 1.0 on each task,
    reward.json's partial-credit metrics included."""
    env_dir, _, runs = harbor_env
    tasks = [arg for name in EXAMPLES for arg in ("--task", name)]
    done = hud(runs, "eval", str(env_dir), "oracle", *tasks, "--json")
    assert done.returncode == 0, done.stderr
    job = _job(done)
    assert "docker" in job["placement"]
    by_task = {run["task"]["slug"]: run for run in job["runs"]}
    assert {slug: (run["status"], run["reward"]) for slug, run in by_task.items()} == \
        {name: ("completed", 1.0) for name in EXAMPLES}
    report = by_task["json-report"]["grade"]["info"]
    assert report["reward_file"] == "reward.json"
    assert report["metrics"] == {"reward": 1.0, "total_ok": 1.0, "regions_ok": 1.0}


def test_nop_scores_zero_on_every_example(harbor_env: tuple[Path, str, Path]) -> None:
    """`hud eval ENV nop`: nothing done, test.sh writes 0 on each task (completed runs)."""
    env_dir, _, runs = harbor_env
    tasks = [arg for name in EXAMPLES for arg in ("--task", name)]
    done = hud(runs, "eval", str(env_dir), "nop", *tasks, "--json")
    assert done.returncode == 0, done.stderr
    assert {run["task"]["slug"]: (run["status"], run["reward"]) for run in _job(done)["runs"]} \
        == {name: ("completed", 0.0) for name in EXAMPLES}


async def test_a_broken_verifier_is_a_grade_error_never_zero(
        harbor_env: tuple[Path, str, Path]) -> None:
    """A verifier past its timeout, or one writing no or a malformed reward: grade_error
    with the reason, never a reward of 0."""
    _, tag, _ = harbor_env
    taskset = Taskset([Task(env=ENV_NAME, id=name) for name in BROKEN])
    job = await taskset.run(_NopAgent(), runtime=DockerPlacement(tag))
    errors = {run.task.slug: (run.status, run.reward, run.error or "") for run in job.runs}
    assert {slug: status for slug, (status, _, _) in errors.items()} == \
        {name: "grade_error" for name in BROKEN}
    assert all(reward is None for _, reward, _ in errors.values())
    assert "ran past its [verifier] timeout_sec of 2s" in errors["verifier-timeout"][2]
    assert "neither /logs/verifier/reward.txt nor /logs/verifier/reward.json was written" \
        in errors["no-reward"][2]
    assert "reward.txt holds 'PASSED', not a number" in errors["bad-reward"][2]


class _NopAgent:
    name = "nop"

    async def __call__(self, run: Any) -> Any:
        return None


# What a hostile agent tries, as `agent` over ssh, before it answers: read the tests (in
# the root-only env folder, or at /tests), plant rewards where the verifier writes one,
# keep a process rewriting it, point its answer file at the hidden expected value, and
# swap the (world-writable, in this image) /logs/verifier for a symlink to its own folder.
ATTACK = r"""
echo "[read] $(cat /opt/hud/env/tasks/shell-line-count/tests/expected.txt 2>&1)"
echo "[ls] $(ls /tests /solution 2>&1 | tr '\n' ' ')"
echo "[find] $(find / -name 'expected*' -not -path '/proc/*' 2>/dev/null | tr '\n' ' ')"
echo 1 > /logs/verifier/reward.txt && printf '{"reward": 1}' > /logs/verifier/reward.json \
  && echo "[plant] ok"
setsid nohup sh -c 'while :; do echo 1 > /logs/verifier/reward.txt 2>/dev/null; done' \
  >/dev/null 2>&1 &
ln -sf /tests/expected.txt /app/answer.txt && echo "[link] ok"
mv /logs/verifier /logs/planted && ln -s /logs/planted /logs/verifier && echo "[swap] ok"
"""


class _Hostile:
    name = "hostile"

    def __init__(self) -> None:
        self.output = ""

    async def __call__(self, run: Any) -> Any:
        assert run.start_frame["agent_timeout"] == 120.0  # [agent] timeout_sec
        done = await as_agent(run, ATTACK)
        self.output = str(done.stdout) + str(done.stderr)
        return "1"


@pytest.mark.parametrize("task", ["shell-line-count", "json-report"])
async def test_a_hostile_agent_cannot_forge_the_reward(harbor_env: tuple[Path, str, Path],
                                                       task: str) -> None:
    """The agent cannot read the tests, and what it plants in /logs/verifier (reward files,
    a process rewriting one) is gone before test.sh runs: no work grades 0.0, completed
    (json-report's test.sh writes only reward.json, so a planted reward.txt would win)."""
    _, tag, _ = harbor_env
    agent = _Hostile()
    job = await Taskset([Task(env=ENV_NAME, id=task)]).run(agent, runtime=DockerPlacement(tag))
    run, = job.runs
    assert (run.status, run.reward) == ("completed", 0.0), (run.error, run.grade, agent.output)
    said = {line.split("] ", 1)[0] + "]": line.split("] ", 1)[-1]
            for line in agent.output.splitlines() if line.startswith("[")}
    assert said["[read]"].endswith("Permission denied"), said
    assert "'/tests': No such file" in said["[ls]"] and "'/solution': No such file" in said["[ls]"]
    assert said["[find]"].strip() == ""  # no copy of the tests anywhere the agent can look
    # the attack ran (all of the agent's output on failure: a CI run once lacked "[swap]")
    assert [said.get(step) for step in ("[plant]", "[link]", "[swap]")] == ["ok"] * 3, \
        agent.output
    assert run.grade is not None
    assert run.grade["info"]["reward_file"] == ("reward.json" if task == "json-report"
                                                else "reward.txt")


async def test_no_internet_refuses_a_network(harbor_env: tuple[Path, str, Path]) -> None:
    """allow_internet = false is the image's org.hud.network=none label: the docker
    placement refuses to start it on another network."""
    _, tag, _ = harbor_env
    assert labels(tag)["org.hud.network"] == "none"
    with pytest.raises(ConfigError, match=r"must run with network 'none' \(label "
                                          r"org\.hud\.network.*not 'bridge'"):
        await DockerPlacement(tag, network="bridge").open("harbor-test", "r1")


def test_a_failing_dockerfile_names_the_file(tmp_path: Path, rootfs: str) -> None:
    """A task whose Dockerfile fails: `hud build` names environment/Dockerfile, the step
    and the fix."""
    task = write_task(tmp_path / "src", "fails", "#!/bin/bash\n")
    (task / "environment" / "Dockerfile").write_text(f"FROM {rootfs}\nRUN exit 3\n")
    assert hud(tmp_path, "harbor", "import", str(task), "-o", str(tmp_path / "env"),
               "--name", "hud-test-harbor-fails").returncode == 0
    done = hud(tmp_path, "build", str(tmp_path / "env"), "-t", unique_tag("hud-test-harbor"))
    assert done.returncode == 1
    assert "environment/Dockerfile failed to build; fix the Dockerfile" in done.stderr
    assert "RUN exit 3" in done.stderr


def test_a_missing_base_image_names_it(tmp_path: Path) -> None:
    """A FROM image the engine does not have (and cannot pull): named, with how to load it."""
    task = write_task(tmp_path / "src", "nobase", "#!/bin/bash\n")
    (task / "environment" / "Dockerfile").write_text("FROM hud-test-no-such-image:1\n")
    assert hud(tmp_path, "harbor", "import", str(task), "-o", str(tmp_path / "env"),
               "--name", "hud-test-harbor-nobase").returncode == 0
    done = hud(tmp_path, "build", str(tmp_path / "env"), "-t", unique_tag("hud-test-harbor"))
    assert done.returncode == 1
    assert "environment/Dockerfile: its base image hud-test-no-such-image:1 is not in the " \
           "local Docker engine and could not be pulled; load it" in done.stderr


def test_a_missing_docker_image_names_it(tmp_path: Path) -> None:
    """[environment] docker_image naming an image that is not there: named before any build."""
    task = write_task(tmp_path / "src", "noimage", "#!/bin/bash\n")
    toml = task / "task.toml"
    toml.write_text(toml.read_text() + 'docker_image = "hud-test-no-such-image:2"\n')
    assert hud(tmp_path, "harbor", "import", str(task), "-o", str(tmp_path / "env"),
               "--name", "hud-test-harbor-noimage").returncode == 0
    done = hud(tmp_path, "build", str(tmp_path / "env"), "-t", unique_tag("hud-test-harbor"))
    assert done.returncode == 1
    assert "the image 'hud-test-no-such-image:2' that the tasks' task.toml names " \
           "([environment] docker_image) is not in the local Docker engine" in done.stderr

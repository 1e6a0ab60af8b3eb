"""The docker placement's readiness on real Docker: one `hud connect --wait` exec per
rollout, `hello` said once, and a daemon that never answers or dies while awaited is a
bounded infra error with the container's state and log."""

from __future__ import annotations

from pathlib import Path

import pytest

from hud.eval import DockerPlacement, Taskset
from hud.task import Task
from tests.docker_fixtures import base_layer, containers, docker_cli, env_dir, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker

HELLOS = (Path(__file__).resolve().parent.parent / "envs" / "hellos.py").read_text()


@pytest.fixture(scope="module")
def hellos_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    """The hellos env (tests/envs/hellos.py) built into an image."""
    from hud.build.env_image import build_env

    folder = env_dir(tmp_path_factory.mktemp("hellos"), "hellos", HELLOS)
    tag = unique_tag("hud-test-hellos")
    build_env(folder, tag=tag)
    yield tag
    docker_cli("rmi", "-f", tag, timeout=120)


def count_task(tmp_path: Path) -> Taskset:
    """The hellos env's task, from a file (importing the env here would patch this process)."""
    path = tmp_path / "tasks.jsonl"
    path.write_text(Task(env="hello-count", id="count").model_dump_json() + "\n")
    return Taskset.from_file(path)


async def answer(run) -> str:  # type: ignore[no-untyped-def]
    return "done"


def job_containers(job_id: str) -> list[str]:
    return docker_cli("ps", "-aq", "--filter", f"label=org.hud.job={job_id}",
                      check=True).stdout.split()


async def test_a_docker_rollout_says_hello_once(hellos_image: str, tmp_path: Path) -> None:
    """A fresh container's daemon answered one hello before the task started."""
    job = await count_task(tmp_path).run(answer, group=2, runtime=DockerPlacement(hellos_image))
    assert [r.status for r in job.runs] == ["completed"] * 2, [r.error for r in job.runs]
    assert [r.prompt for r in job.runs] == ["hellos=1"] * 2
    assert job_containers(job.id) == []


async def test_a_rollout_attached_to_a_container_says_hello_once(
        hellos_image: str, containers, tmp_path: Path) -> None:
    """Attached by name (a `hud connect --wait` exec): one hello, then the start."""
    name = containers.run(hellos_image, options=("--network", "none"))
    job = await count_task(tmp_path).run(answer, runtime=name)
    assert job.runs[0].status == "completed", job.runs[0].error
    assert job.runs[0].prompt == "hellos=1"


async def test_a_daemon_that_never_listens_is_a_bounded_infra_error(
        hellos_image: str, tmp_path: Path) -> None:
    """The initialize hook hangs: after ready_timeout the rollout is an infra_error naming
    the container, the wait, and the daemon's last log line; the container is removed."""
    placement = DockerPlacement(hellos_image, ready_timeout=3,
                                extra_args=["-e", "HELLOS_HANG=1"])
    job = await count_task(tmp_path).run(answer, runtime=placement)
    run = job.runs[0]
    assert run.status == "infra_error" and run.reward is None
    container = run.error.split("the hud daemon in container ", 1)[1].split(" ", 1)[0]
    assert "did not answer hello (waited up to 3s after the container's start" in run.error
    assert "it is still starting" in run.error
    assert "hellos: the initialize hook hangs" in run.error and container in run.error
    assert "last lines of the daemon log" not in run.error  # docker logs says it all once
    assert job_containers(job.id) == []


async def test_a_daemon_that_dies_while_awaited_is_an_infra_error_with_its_exit(
        hellos_image: str, tmp_path: Path) -> None:
    """The daemon exits (code 3) in its initialize hook: infra_error with the container's
    exit code and log, long before the ready timeout."""
    placement = DockerPlacement(hellos_image, ready_timeout=600,
                                extra_args=["-e", "HELLOS_DIE=1"])
    job = await count_task(tmp_path).run(answer, runtime=placement)
    run = job.runs[0]
    assert run.status == "infra_error" and run.reward is None
    assert "stopped before its hud daemon answered hello" in run.error
    assert "exit=3" in run.error and "hellos: the daemon dies while starting" in run.error
    assert job_containers(job.id) == []

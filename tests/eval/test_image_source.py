"""Evaluate an image alone, on real Docker: `hud eval IMAGE` after `hud images save/load`
from a directory without the env's source, a running container by name, a task file
exported from an image (and the warning when the image changed), and built templates
evaluated in docker from a host whose imports of the env's requirements fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker_fixtures import base_layer, containers, docker_cli, labels, template_image  # noqa: F401

pytestmark = pytest.mark.docker

# `python -c BLOCKER MODULES hud ARGS...`: `hud ARGS...` in a process where importing any
# of the comma-separated MODULES (and their submodules) fails, as on a host that lacks them
BLOCKER = """
import importlib.abc, sys
blocked = sys.argv[1].split(",")

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ModuleNotFoundError(f"No module named {name!r} (not on this host)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
sys.argv = ["hud", *sys.argv[2:]]
from hud.cli.main import main
main()
"""


def hud(cwd: Path, *args: str, blocked: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The `hud` CLI run in `cwd`, with imports of the `blocked` modules failing."""
    prefix = ["-c", BLOCKER, blocked] if blocked else ["-m", "hud.cli.main"]
    return subprocess.run([sys.executable, *prefix, *args], cwd=cwd,
                          env={**os.environ, "HUD_RUNS_DIR": str(cwd / "runs")},
                          capture_output=True, text=True, timeout=timeout)


def job_of(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """A working directory with nothing of the environment in it."""
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_a_loaded_image_is_evaluated_alone_with_the_network_off(template_image, tmp_path: Path,
                                                                empty: Path) -> None:
    """`hud images save` → image removed → `hud images load` → from an empty directory,
    `hud eval IMAGE oracle --group 2 --network none` grades every task of its label 1.0."""
    _, tag = template_image("blank")
    tar = tmp_path / "env.tar"
    try:
        saved = hud(tmp_path, "images", "save", "-o", str(tar), tag)
        assert saved.returncode == 0, saved.stderr
        docker_cli("rmi", tag, check=True)
        loaded = hud(empty, "images", "load", str(tar))
        assert loaded.returncode == 0 and tag in loaded.stdout, loaded.stderr
    finally:
        tar.unlink(missing_ok=True)  # a whole image: not left in /tmp
    done = hud(empty, "eval", tag, "oracle", "--group", "2", "--network", "none", "--json")
    job = job_of(done)
    assert done.stderr.startswith(f"placement: docker ({tag}, network none")
    assert sorted(job["stats"]["tasks"]) == ["count_letter", "count_letter-7723267a",
                                             "count_letter-938911f2"]
    assert (job["stats"]["runs"], job["stats"]["by_status"]["completed"], job["stats"]["mean"]) \
        == (6, 6, 1.0)


def test_docker_prefix_names_the_image(template_image, empty: Path) -> None:
    """`hud eval docker:IMAGE nop --task SLUG`: the image's task, in a fresh container."""
    _, tag = template_image("blank")
    job = job_of(hud(empty, "eval", f"docker:{tag}", "nop", "--task", "count_letter", "--json"))
    assert [(r["task"]["slug"], r["reward"]) for r in job["runs"]] == [("count_letter", 0.0)]
    assert job["placement"].startswith(f"docker ({tag}, network none")


def test_a_running_container_by_name_is_attached_to(template_image, containers, empty: Path) -> None:
    """`hud eval CONTAINER oracle`: its daemon lists the tasks, which run in it."""
    _, tag = template_image("blank")
    name = containers.run(tag)
    containers.wait_healthy(name)
    job = job_of(hud(empty, "eval", name, "oracle", "--json"))
    assert job["placement"].startswith(f"attach ({name}")
    assert (job["stats"]["runs"], job["stats"]["mean"]) == (3, 1.0)


def test_export_from_an_image_lists_what_task_list_lists(template_image, empty: Path) -> None:
    """`hud task export IMAGE` writes the rows `hud task list --image IMAGE --json` prints,
    each naming the env, the image and its ID."""
    _, tag = template_image("blank")
    exported = hud(empty, "task", "export", tag, "-o", "tasks.jsonl")
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in (empty / "tasks.jsonl").read_text().splitlines()]
    listed = hud(empty, "task", "list", "--image", tag, "--json")
    assert json.loads(listed.stdout)["tasks"] == rows
    image_id = docker_cli("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    env = labels(tag)["org.hud.env"]
    assert {(r["env"], r["image"], r["image_id"]) for r in rows} == {(env, tag, image_id)}


def test_eval_of_a_task_file_warns_when_the_image_changed(template_image, empty: Path) -> None:
    """A task file listed from an image whose ID has changed since: `hud eval FILE` runs on
    the image it names and says so on stderr, in one line naming both IDs and the fix."""
    _, tag = template_image("blank")
    now = docker_cli("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    then = "sha256:" + "0" * 64  # the ID the image had when the tasks were exported
    rows = [{"env": labels(tag)["org.hud.env"], "id": "count_letter", "args": {}, "slug": "count_letter",
             "image": tag, "image_id": then}]
    (empty / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = hud(empty, "eval", "tasks.jsonl", "oracle", "--json")
    assert job_of(done)["stats"]["mean"] == 1.0
    (warning,) = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert (f"listed from image {tag} (sha256:000000000000) but {tag} is now {now[:19]}"
            in warning)
    assert f"`hud task export {tag} -o FILE.jsonl`" in warning


def test_the_coding_template_runs_in_docker_without_importing_it(template_image,
                                                                  empty: Path) -> None:
    """The built coding template, from a host where its module's imports fail: `hud eval
    DIR oracle` takes the tasks from hud.lock.json and grades 1.0 in docker."""
    folder, _ = template_image("coding")
    job = job_of(hud(empty, "eval", str(folder), "oracle", "--json", blocked="hud.graders"))
    assert job["placement"].startswith("docker (") and job["stats"]["mean"] == 1.0


def test_the_robot_template_runs_in_docker_without_numpy_on_the_host(template_image,
                                                                     empty: Path) -> None:
    """The built robot template from a host without numpy, gymnasium or mujoco: `hud eval
    DIR nop --task reach` runs its episode in docker (graded 0.0: nop drives nothing)."""
    folder, _ = template_image("robot")
    job = job_of(hud(empty, "eval", str(folder), "nop", "--task", "reach", "--json",
                     blocked="numpy,gymnasium,mujoco"))
    assert [(r["status"], r["reward"]) for r in job["runs"]] == [("completed", 0.0)]
    assert job["placement"].startswith("docker (")


def test_the_import_block_is_real(template_image, empty: Path) -> None:
    """Control: the same blocked host running the robot template in-process (`--runtime
    local`, the one placement that imports the module) fails for want of the robot extra."""
    folder, _ = template_image("robot")
    done = hud(empty, "eval", str(folder), "nop", "--runtime", "local",
               blocked="numpy,gymnasium,mujoco")
    assert done.returncode == 1
    assert "the robot capability needs the robot extra" in done.stderr

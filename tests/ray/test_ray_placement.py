"""The Ray placement on a real two-node cluster: spread, image shipping, faults, keys."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hud.eval.traces import load_job, read_trace
from tests.ray.cluster import Cluster, Engine

pytestmark = pytest.mark.docker

RUNTIME = "ray://127.0.0.1:6390"


def _image_id(image: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True, check=True).stdout.strip()


def _settle(check: Callable[[], bool]) -> bool:
    """Whether `check` holds within 30 s (polled: the reapers run in the background)."""
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)  # poll interval
    return True


def _left(engine2: Engine, job: str) -> list[str]:
    """Containers with the job's label on either engine, after their removal settles."""
    deadline = time.monotonic() + 30
    while True:
        label = f"label=org.hud.job={job}"
        ids = (subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True,
                              text=True, check=True).stdout.split()
               + engine2.docker("ps", "-aq", "--filter", label).stdout.split())
        if not ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.5)  # poll interval: the removals run in the background


def test_a_node_without_the_image_receives_it_once(ray_cluster: Cluster, engine2: Engine,
                                                   blank_image: str, runs_dir: Path) -> None:
    """A node whose engine lacks the image ID gets it streamed from the driver, once."""
    image_id = _image_id(blank_image)
    assert engine2.docker("image", "inspect", image_id).returncode != 0, "engine2 is fresh"
    answer = ray_cluster.drive({"image": blank_image, "runtime": RUNTIME, "agent": "oracle",
                                "group": 4, "tasks": 1}, runs_dir)
    assert [r["status"] for r in answer["final"]] == ["completed"] * 4
    assert len({r["node"] for r in answer["final"]}) == 2
    loaded = engine2.docker("image", "inspect", "--format", "{{.Id}}", image_id)
    assert loaded.stdout.strip() == image_id
    assert answer["log"].count("lacks image") == 1, answer["log"]


def test_32_rollouts_spread_over_both_nodes_with_traces_on_the_driver(
        ray_cluster: Cluster, blank_image: str, runs_dir: Path) -> None:
    """32 oracle rollouts complete on both nodes; job.json and traces are on the driver."""
    before = set(Path("/tmp").glob("hud-ray-slot-*"))
    answer = ray_cluster.drive({"image": blank_image, "runtime": RUNTIME, "agent": "oracle",
                                "group": 16, "tasks": 2}, runs_dir)
    final = answer["final"]
    assert len(final) == 32
    assert {(r["status"], r["reward"]) for r in final} == {("completed", 1.0)}
    assert len({r["node"] for r in final}) == 2
    job = load_job(answer["job"], runs_dir)
    assert {run["placement"]["node"] for run in job["runs"]} == {r["node"] for r in final}
    for run in final:
        events = read_trace(runs_dir / answer["job"] / f"{run['trace']}.jsonl")
        assert events[0]["type"] == "rollout"
        assert events[-1] == {**events[-1], "type": "end", "status": "completed"}
    # the slots' node-local trace stores went with their actors (their reapers)
    assert _settle(lambda: not set(Path("/tmp").glob("hud-ray-slot-*")) - before)


@pytest.mark.parametrize(("spread", "nodes"), [("spread", 2), ("pack", 1)])
def test_a_group_is_spread_over_nodes_or_packed_on_one(
        ray_cluster: Cluster, blank_image: str, runs_dir: Path, spread: str, nodes: int) -> None:
    """spread puts a group's two members on two nodes; pack puts them on one."""
    answer = ray_cluster.drive({"image": blank_image, "runtime": RUNTIME, "agent": "oracle",
                                "group": 2, "tasks": 1, "spread": spread}, runs_dir)
    assert len({r["node"] for r in answer["final"]}) == nodes


def test_a_node_lost_mid_job_reruns_its_rollouts_on_the_survivors(
        ray_cluster: Cluster, engine2: Engine, blank_image: str, runs_dir: Path) -> None:
    """A node crashed mid-job: its rollouts are infra errors, retried elsewhere; every
    rollout completes and no container of the job is left on any engine."""
    pid = ray_cluster.start_node(2, slots=2)
    answer = ray_cluster.drive({"image": blank_image, "runtime": RUNTIME, "agent": "slow-oracle",
                                "group": 8, "tasks": 2, "retries": 2, "kill": pid,
                                "kill_after": 2}, runs_dir)
    lost = [r for r in answer["all"] if r["status"] == "infra_error"]
    assert lost and all("lost mid-rollout" in r["error"] for r in lost), answer["all"]
    dead = {r["node"] for r in lost}
    assert len(dead) == 1
    assert {(r["status"], r["reward"]) for r in answer["final"]} == {("completed", 1.0)}
    assert len(answer["final"]) == 16
    retried = [r for r in answer["all"] if r["attempt"] > 1]
    assert retried and not {r["node"] for r in retried} & dead
    assert _left(engine2, answer["job"]) == []


def test_ctrl_c_cancels_remote_rollouts_and_removes_their_containers(
        ray_cluster: Cluster, engine2: Engine, blank_image: str, runs_dir: Path) -> None:
    """Ctrl-C on the driver mid-job: it stops, and no container of the job is left."""
    answer = ray_cluster.drive({"image": blank_image, "runtime": RUNTIME, "agent": "slow-oracle",
                                "group": 8, "tasks": 1, "interrupt_after": 1}, runs_dir)
    assert answer.get("interrupted") is True
    (job,) = [path.name for path in runs_dir.iterdir()]
    assert len(load_job(job, runs_dir)["runs"]) < 8
    assert _left(engine2, job) == []


def test_a_provider_agent_runs_through_ray_and_its_key_is_never_written(
        ray_cluster: Cluster, blank_image: str, runs_dir: Path) -> None:
    """Claude against a local fake of its API runs on the nodes with the driver's key,
    which no trace, job file or Ray log on any node contains."""
    key = f"sk-ant-test-{secrets.token_hex(16)}"
    answer = ray_cluster.drive({"image": blank_image, "runtime": RUNTIME, "agent": "fake-claude",
                                "group": 4, "tasks": 1}, runs_dir, ANTHROPIC_API_KEY=key)
    assert [r["status"] for r in answer["final"]] == ["completed"] * 4
    assert len({r["node"] for r in answer["final"]}) == 2
    sent = [h.get("x-api-key") or h.get("authorization", "") for h in answer["headers"]]
    assert sent and all(key in each for each in sent)  # the driver's key reached the API
    written = [p for root in (runs_dir, ray_cluster.tmp) for p in root.rglob("*")
               if p.is_file() and not p.is_socket()]
    assert written and not [p for p in written if key.encode() in p.read_bytes()]
    assert "SlotWorker" in answer["ray_state"]  # Ray's job and actor tables, read...
    assert key not in answer["ray_state"]  # ...and without the key


def test_an_agent_that_cannot_be_pickled_is_a_clear_error(
        ray_cluster: Cluster, blank_image: str, runs_dir: Path) -> None:
    """A user's agent that cannot be pickled is refused, naming why and the fix."""
    answer = ray_cluster.drive({"image": blank_image, "runtime": RUNTIME, "agent": "unpicklable",
                                "group": 1, "tasks": 1}, runs_dir)
    assert "cannot be sent to the Ray nodes" in answer["error"]
    assert "AgentSpec" in answer["error"]


def test_hud_eval_runs_on_the_cluster_with_runtime_ray(
        ray_cluster: Cluster, blank_image: str, tmp_path: Path) -> None:
    """`hud eval IMAGE oracle --runtime ray://HOST:PORT --json` runs every task there."""
    done = ray_cluster.python(["-m", "hud.cli.main", "eval", blank_image, "oracle", "--group", "2",
                               "--runtime", RUNTIME, "--json"], cwd=tmp_path,
                              HUD_RUNS_DIR=str(tmp_path / "runs"))
    assert done.returncode == 0, [line for line in done.stderr.splitlines() if line[:1] != "/"]
    job = json.loads(done.stdout)
    assert {(r["status"], r["placement"]["placement"]) for r in job["runs"]} == {("completed", "ray")}
    assert (tmp_path / "runs" / job["id"] / "job.json").is_file()

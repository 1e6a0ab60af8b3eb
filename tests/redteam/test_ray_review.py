"""Hostile review of the Ray placement (issue 14): findings proved as strict xfails."""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path

import pytest

from hud.errors import HudError
from hud.eval.results import Run
from hud.eval.traces import job_dir
from tests.envs.letters import count_letter
from tests.ray.cluster import Cluster
from tests.ray.conftest import engine2, ray_cluster  # noqa: F401

#: a driver, run in the cluster's namespace, that ships an agent as a job does and then
#: puts the object store of its node under pressure (a training job sharing the cluster);
#: it prints the files under the cluster's temp dirs that hold the provider key
SPILL_DRIVER = """
import json, os, sys
from hud.eval.ray import AgentSpec
from hud.eval.ray.cluster import connect
from hud.eval.ray.placement import RayPlacement

key, tmp = os.environ["ANTHROPIC_API_KEY"].encode(), sys.argv[1]
placement = RayPlacement("any-image", "ray://127.0.0.1:6390")
placement._ray = ray = connect(placement.address)
spec = AgentSpec("claude-sonnet-4-5", base_url="http://127.0.0.1:9", max_retries=0)
placement._shipped_agent(spec)  # what remote_rollout puts in the object store for a job
ballast = [ray.put(bytes(48 << 20)) for _ in range(10)]  # 480 MiB into a 256 MiB store
found = []
for root, _, names in os.walk(tmp):
    for name in names:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            try:
                with open(path, "rb") as file:
                    if key in file.read():
                        found.append(os.path.relpath(path, tmp))
            except OSError:
                pass
print(json.dumps(found))
"""


def _node_run(job_id: str, trace_id: str) -> Run:
    """A Run as a node returns it (RayPlacement.remote_rollout validates the node's data
    into a Run and writes its trace under the ids the node put in it)."""
    data = {"trace_id": trace_id, "job_id": job_id, "task": count_letter(word="kiwi"),
            "group_id": "g", "status": "completed", "reward": 1.0}
    run = Run.model_validate(data)
    run.trace = [{"t": 0.0, "type": "end", "status": "completed"}]
    return run


def test_a_trace_id_from_a_node_cannot_write_outside_the_runs_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node's Run with trace_id '../../outside' writes nothing outside HUD_RUNS_DIR."""
    from hud.eval.ray.placement import RayPlacement

    store = tmp_path / "runs"
    monkeypatch.setenv("HUD_RUNS_DIR", str(store))
    run = _node_run("job1", "../../outside")
    with contextlib.suppress(HudError):  # refusing the id is a fix too
        RayPlacement._write_trace(run, ())
    assert not (tmp_path / "outside.jsonl").exists()
    assert job_dir("job1").resolve().parent == store.resolve()


@pytest.mark.docker
def test_the_provider_key_is_never_spilled_to_a_nodes_disk(ray_cluster: Cluster) -> None:
    """With the object store full, no file under the nodes' temp dirs holds the key."""
    key = f"sk-ant-spill-{secrets.token_hex(16)}"
    done = ray_cluster.python(["-c", SPILL_DRIVER, str(ray_cluster.tmp)],
                              ANTHROPIC_API_KEY=key)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == [], found

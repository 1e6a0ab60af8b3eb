"""Fixtures for the Ray tests: a two-node cluster (one node on a second Docker engine)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker_fixtures import base_layer, template_image  # noqa: F401
from tests.ray.cluster import Cluster, Engine


def _need_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("Ray is not installed (pip install 'hud-python[ray]')")
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("dockerd") is None:
        pytest.skip("the Ray cluster tests need root, iproute2 (ip netns) and dockerd")


@pytest.fixture(scope="session")
def engine2() -> Iterator[Engine]:
    """A second, empty Docker engine: the second node's own (it has no image at first)."""
    _need_ray()
    nonce = uuid.uuid4().hex[:8]
    engine = Engine(Path("/var/lib/hud-test-engines") / nonce)
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def ray_cluster(engine2: Engine) -> Iterator[Cluster]:
    """Two Ray nodes with 2 slots each, in a private network namespace, token auth on:
    node 0 (the head) on the host's Docker engine, node 1 on `engine2`."""
    nonce = uuid.uuid4().hex[:8]
    cluster = Cluster(ns=f"hud-ray-{nonce}", tmp=Path(f"/tmp/hr-{nonce}"))
    cluster.tmp.mkdir()
    try:
        cluster.create()
        cluster.start_node(0, slots=2)
        cluster.start_node(1, slots=2, docker_host=engine2.host)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def blank_image(template_image) -> str:
    """The blank template's env image (built once per session)."""
    return str(template_image("blank")[1])


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"

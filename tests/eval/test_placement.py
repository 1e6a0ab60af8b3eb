"""Placement configuration (the docker ones run for real in tests/eval/test_docker.py)."""

from hud.eval import DockerPlacement


def test_docker_run_is_isolated_and_labelled() -> None:
    """No network, all capabilities dropped but the daemon's few, labels, limits."""
    argv = DockerPlacement("img", cpus=1.5, memory="2g").run_argv("job1", "r1")
    assert argv[:3] == ["docker", "run", "-d"] and argv[-1] == "img"
    joined = " ".join(argv)
    assert "--network none" in joined and "--cap-drop ALL" in joined
    assert "--label org.hud.job=job1" in joined and "--label org.hud.rollout=r1" in joined
    assert "--cpus 1.5" in joined and "--memory 2g" in joined
    assert "no-new-privileges" in joined

"""Placement configuration (the docker ones run for real in tests/eval/test_docker.py)."""

from hud.eval import DockerPlacement


def test_docker_run_is_isolated_and_labelled() -> None:
    """No network, all capabilities dropped but the daemon's few, labels, limits."""
    argv = DockerPlacement("img", cpus=1.5, memory="2g").run_argv("job1", "r1")
    assert argv[1:3] == ["run", "-d"] and argv[-1] == "img"
    joined = " ".join(argv)
    assert "--network none" in joined and "--cap-drop ALL" in joined
    assert "--label org.hud.job=job1" in joined and "--label org.hud.rollout=r1" in joined
    assert "--cpus 1.5" in joined and "--memory 2g" in joined
    assert "no-new-privileges" in joined


def test_docker_run_has_a_pids_limit_by_default() -> None:
    """Every rollout container gets --pids-limit 1024 unless told otherwise."""
    argv = DockerPlacement("img").run_argv("job1", "r1")
    assert argv[argv.index("--pids-limit") + 1] == "1024"


def test_docker_pids_limit_override_and_unlimited() -> None:
    """pids_limit=N is passed as is; 0 or -1 asks docker for no limit (-1)."""
    for given, passed in ((64, "64"), (0, "-1"), (-1, "-1")):
        argv = DockerPlacement("img", pids_limit=given).run_argv("job1", "r1")
        assert argv[argv.index("--pids-limit") + 1] == passed

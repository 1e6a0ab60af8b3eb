"""Red team: what the agent can cause is the agent's outcome. Output, memory and process
floods planted for grading time, under a 1 GiB container limit, give a completed 0.0 with
the reason, never an OOM-killed daemon or an excluded infra_error."""

from __future__ import annotations

import pytest

from hud.eval import DockerPlacement, Taskset
from tests.redteam.conftest import Hostile

pytestmark = pytest.mark.docker

AT_IMPORT = {
    "output_flood": "import sys\nchunk = 'x' * 65536\nwhile True:\n    sys.stdout.write(chunk)\n",
    "stderr_flood": "import os\nwhile True:\n    os.write(2, b'y' * 65536)\n",
    "memory_flood": "hog = []\nwhile True:\n    hog.append(bytearray(64 << 20))\n",
    "fork_bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n"
                  "    except OSError:\n        pass\n"),
    "infinite_loop": "while True:\n    pass\n",
    "respawner": ("import os, subprocess, sys\nif os.fork() == 0:\n    os.setsid()\n"
                  "    while True:\n        subprocess.Popen(['sleep', '1000'])\n"),
}


@pytest.mark.parametrize("attack", sorted(AT_IMPORT))
async def test_grading_time_flood_is_a_zero(attack: str, template_image) -> None:
    """Code that floods when the grader imports it: completed, 0.0, a reason in info."""
    folder, tag = template_image("coding")
    plant = f"cat >> stats/__init__.py <<'EOF'\n{AT_IMPORT[attack]}EOF"
    job = await Taskset.from_source(folder).run(
        Hostile(plant), runtime=DockerPlacement(tag, memory="1g"))
    run, = job.runs
    assert run.status == "completed", run.error
    assert run.reward == 0.0
    assert run.grade is not None and run.grade.get("info"), run.grade


async def test_a_flooding_member_counts_in_the_group_mean(template_image) -> None:
    """A group of two: one member fixes the bug, one floods memory at grading → job 0.5."""
    folder, tag = template_image("coding")
    fix = "sed -i 's/ordered\\[mid + 1\\]/ordered[mid - 1]/' stats/core.py"
    flood = f"cat >> stats/__init__.py <<'EOF'\n{AT_IMPORT['memory_flood']}EOF"
    scripts = [fix, flood]

    class OneOfEach(Hostile):
        async def __call__(self, run):  # type: ignore[no-untyped-def]
            self.script = scripts.pop()
            return await super().__call__(run)

    job = await Taskset.from_source(folder).run(
        OneOfEach(""), group=2, max_concurrent=1, runtime=DockerPlacement(tag, memory="1g"))
    assert [r.status for r in job.runs] == ["completed", "completed"], [r.error for r in job.runs]
    assert sorted(r.reward for r in job.runs) == [0.0, 1.0]
    assert job.reward == 0.5


async def test_agent_fork_bomb_during_its_turn(template_image) -> None:
    """A fork bomb as the agent hits the pids limit; the sweep ends it and grading works."""
    folder, tag = template_image("coding")
    bomb = "(bomb() { bomb | bomb & }; bomb) >/dev/null 2>&1 & sleep 5; echo planted"
    job = await Taskset.from_source(folder).run(Hostile(bomb), runtime=DockerPlacement(tag))
    run, = job.runs
    assert (run.status, run.reward) == ("completed", 0.0), run.error


async def test_agent_is_first_for_the_oom_killer_and_cannot_change_that(template_image) -> None:
    """In the docker placement the agent's shell has oom_score_adj 1000 and cannot lower
    it, while the daemon's is below 0: a memory flood kills the agent, not the daemon."""
    folder, tag = template_image("coding")
    probe = ("cat /proc/self/oom_score_adj; (echo 0 > /proc/self/oom_score_adj) 2>/dev/null "
             "&& echo lowered || echo refused; cat /proc/$(pgrep -o -f 'bin/hud serve')/oom_score_adj")
    seen: list[str] = []

    class Probe(Hostile):
        async def __call__(self, run):  # type: ignore[no-untyped-def]
            from tests.redteam.conftest import as_agent

            seen.extend(str((await as_agent(run, probe)).stdout).split())
            return "nothing"

    from hud.eval import placement as placements

    docker = DockerPlacement(tag)
    job = await Taskset.from_source(folder).run(Probe(""), runtime=docker)
    assert job.runs[0].status == "completed", job.runs[0].error
    mine, verdict, daemon = seen
    assert mine == "1000"
    # An engine that cannot grant CAP_SYS_RESOURCE (this sandbox's, for one) makes the
    # placement fall back without it, with a warning: then only the starting score holds.
    if docker.docker not in placements._NO_SYS_RESOURCE:
        assert verdict == "refused" and int(daemon) < 0

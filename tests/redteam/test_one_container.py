"""Red team in one long-lived container (attach placement, secure defaults): what an agent
leaves behind between tasks — racing processes, symlinks, exfiltrated files — gains it
nothing, and a group against one container runs one rollout at a time."""

from __future__ import annotations

import pytest

import hud
from hud.agents import OracleAgent
from hud.eval import Taskset
from tests.redteam.conftest import as_agent

pytestmark = pytest.mark.docker

RACER = r"""
cat > /tmp/racer.sh <<'RACE'
while true; do
  for target in /opt/hud/env /etc/ssl /root /var/lib/hud; do
    rm -rf /workspace/stats 2>/dev/null; ln -sfn "$target" /workspace/stats 2>/dev/null
    ln -sfn "$target" /workspace/project 2>/dev/null
  done
done
RACE
setsid nohup bash /tmp/racer.sh >/dev/null 2>&1 < /dev/null &
setsid nohup bash /tmp/racer.sh >/dev/null 2>&1 < /dev/null &
sleep 1; echo racing
"""

EXFILTRATE = r"""
cat >> stats/__init__.py <<'PLANT'
import os, shutil, sys
data = sys.stdin.read() if not sys.stdin.isatty() else ""
for where in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/home/agent", "/workspace"):
    try:
        with open(os.path.join(where, "loot.txt"), "w") as out:
            out.write(data + repr(sys.argv) + os.getcwd() + repr(os.listdir(".")))
        os.chmod(os.path.join(where, "loot.txt"), 0o666)
        shutil.copytree(".", os.path.join(where, "loot-dir"))
        os.system("chmod -R a+rwX " + os.path.join(where, "loot-dir"))
    except OSError:
        pass
PLANT
echo planted
"""

LOOK_FOR_LOOT = r"""
found=$(find /tmp /var/tmp /dev/shm /run/lock /home/agent /workspace -name 'loot*' 2>/dev/null)
echo "loot: $found"
echo "grader files: $(find /tmp /var/tmp /dev/shm /run/lock -user hud-grader 2>/dev/null)"
"""


async def test_symlink_race_at_setup_touches_nothing_outside(template_image, secure) -> None:
    """Racers swapping workspace dirs for symlinks to root-owned dirs while the next task
    sets up: the env folder stays root-only, /etc/ssl and /root are unchanged."""
    _, tag = template_image("coding")
    box = secure.run(tag)
    # modes, owners and names (not times: grading itself touches /var/lib/hud/grade)
    probe = ("stat -c '%a %U' /opt/hud/env; find /opt/hud/env /etc/ssl /root /var/lib/hud "
             "-printf '%m %u %g %p %l\\n' | sort | sha256sum")
    before = secure.root(box, probe)
    async with await hud.attach(box) as env:
        await env.start("fix_bug")
        assert await env.grade("nothing") == 0.0
        done = await as_agent(env, RACER)          # between tasks: no task in progress
        assert "racing" in done.stdout, done.stderr
        for _ in range(3):
            await env.start("fix_bug")
            assert await env.grade("nothing") == 0.0
    after = secure.root(box, probe)
    assert after == before
    assert before.startswith("700 root")


async def test_nothing_survives_grading_for_the_next_task(template_image, secure) -> None:
    """Code run at grading copies what it sees to every writable place; the next task finds
    nothing of it, and no file of the grading user is left anywhere."""
    _, tag = template_image("coding")
    box = secure.run(tag)
    async with await hud.attach(box) as env:
        await env.start("fix_bug")
        planted = await as_agent(env, EXFILTRATE)
        assert "planted" in planted.stdout, planted.stderr
        assert await env.grade("done") == 0.0
        await env.start("fix_bug")
        seen = await as_agent(env, LOOK_FOR_LOOT)
        assert seen.stdout.splitlines() == ["loot: ", "grader files: "], seen.stdout
        assert await env.grade("nothing") == 0.0


async def test_agent_cannot_read_the_grading_inputs(template_image, secure) -> None:
    """The env folder (the grader's code), the grading dirs and the daemon's run dir
    cannot even be listed by the agent."""
    _, tag = template_image("coding")
    box = secure.run(tag)
    async with await hud.attach(box) as env:
        await env.start("fix_bug")
        for path in ("/opt/hud/env", "/opt/hud/env/env.py", "/var/lib/hud/grade", "/run/hud"):
            done = await as_agent(env, f"ls {path} || exit 3; cat {path}/* {path} 2>&1 | head -c 200")
            assert done.exit_status == 3 and "Permission denied" in done.stderr, (path, done.stdout)
        await env.grade("nothing")


async def test_group_on_one_container_runs_one_at_a_time(template_image, secure) -> None:
    """oracle × 4 against one running container: every member 1.0 (no shared-workspace
    interference), because the attach placement serializes them."""
    folder, tag = template_image("coding")
    box = secure.run(tag)
    job = await Taskset.from_source(folder).run(OracleAgent(), group=4, runtime=box)
    assert [r.status for r in job.runs] == ["completed"] * 4, [r.error for r in job.runs]
    assert [r.reward for r in job.runs] == [1.0] * 4


async def test_second_session_refused_while_a_task_runs(template_image, secure) -> None:
    """The daemon itself refuses a concurrent tasks.start (unless the env declares more)."""
    from hud.errors import RemoteError

    _, tag = template_image("coding")
    box = secure.run(tag)
    async with await hud.attach(box) as first, await hud.attach(box) as second:
        await first.start("fix_bug")
        with pytest.raises(RemoteError, match="in progress"):
            await second.start("fix_bug")
        assert await first.grade("nothing") == 0.0

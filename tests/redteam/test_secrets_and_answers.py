"""Red team: the TCP token never reaches the agent, a token on argv is refused, and the
blank template's grader takes only the exact number."""

from __future__ import annotations

import pytest

import hud
from hud.eval import DockerPlacement, Taskset
from hud.task import Task
from tests.docker_fixtures import docker_cli
from tests.redteam.conftest import as_agent

pytestmark = pytest.mark.docker

TOKEN = "rt-" + "5ecret" * 6

# The token is assembled inside the hunt from two halves, so the hunting processes' own
# command lines never contain it.
HALF = len(TOKEN) // 2
HUNT = f"""
python3 - <<'PY'
import glob, json, os, socket
token = ("{TOKEN[:HALF]}" + "{TOKEN[HALF:]}").encode()
hits = []
for path in glob.glob("/proc/[0-9]*/cmdline") + glob.glob("/proc/[0-9]*/environ"):
    try:
        if token in open(path, "rb").read():
            hits.append(path)
    except OSError:
        pass
for top in ("/run", "/tmp", "/etc", "/opt", "/var", "/home", "/workspace"):
    for root, dirs, files in os.walk(top):
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as handle:
                    if token in handle.read(1 << 20):
                        hits.append(os.path.join(root, name))
            except OSError:
                pass
print(json.dumps(hits))
s = socket.create_connection(("127.0.0.1", 8765), timeout=5)
solve = {{"jsonrpc": "2.0", "id": 1, "method": "tasks.solve", "params": {{}}}}
s.sendall(json.dumps(solve).encode() + b"\\n")
print(s.recv(4096).decode())
PY
"""


async def test_agent_cannot_find_or_use_the_tcp_token(template_image, secure) -> None:
    """Daemon with HUD_TOKEN and --tcp: the agent finds the token nowhere and is refused."""
    _, tag = template_image("coding")
    box = secure.run(tag, env={"HUD_TOKEN": TOKEN},
                     command=("hud", "serve", "--tcp", "127.0.0.1:8765"))
    async with await hud.attach(box) as env:
        await env.start("fix_bug")
        done = await as_agent(env, HUNT)
        hits, reply = [line for line in done.stdout.splitlines() if line.strip()][-2:]
        assert hits == "[]", done.stdout + done.stderr
        assert '"error"' in reply and "token" in reply and TOKEN not in reply, reply
        assert await env.grade("nothing") == 0.0


def test_token_on_argv_is_refused(template_image, secure) -> None:
    """`hud serve --token VALUE` exits with a usage error naming the safe alternatives."""
    _, tag = template_image("blank")
    done = docker_cli("run", "--rm", tag, "hud", "serve", "--tcp", "127.0.0.1:8765",
                      "--token", TOKEN, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--token-file" in done.stderr and "HUD_TOKEN" in done.stderr


@pytest.mark.parametrize(("answer", "reward"), [("3", 1.0), (" 3.\n", 1.0), ("0123456789", 0.0),
                                                ("3 or 2", 0.0), ("33", 0.0), ("", 0.0)])
async def test_blank_template_takes_only_the_exact_number(answer: str, reward: float,
                                                          template_image) -> None:
    """How many r's in strawberry: exactly "3" scores; a string holding every digit does not."""
    _, tag = template_image("blank")

    class Answers:
        name = "answers"

        async def __call__(self, run):  # type: ignore[no-untyped-def]
            return answer

    task = Task(env="letter-count", id="count_letter", args={})
    job = await Taskset([task]).run(Answers(), runtime=DockerPlacement(tag))
    run, = job.runs
    assert (run.status, run.reward) == ("completed", reward), run.error

"""One task with an ssh workspace: the agent answers with a token the task wrote to
/workspace/token (a group run at once on one container would overwrite it)."""
import secrets

from hud import Environment

env = Environment(name="shared-ws")
ws = env.workspace()


@env.template()
async def remember():
    token = secrets.token_hex(8)
    await ws.run(f"printf %s {token} > /workspace/token", user="agent", timeout=30)
    answer = yield "Answer with the content of /workspace/token."
    yield 1.0 if answer == token else 0.0


@remember.solution
async def solve() -> str:
    done = await ws.run("cat /workspace/token", user="agent", timeout=30)
    return done.stdout.strip()


tasks = [remember()]

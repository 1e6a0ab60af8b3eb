"""A rollout of an ordinary template never imports pydantic in the daemon (its import is
most of a container's start-up CPU, `bench_eval.py --python-floors`), and arguments that
need pydantic's coercion still get it, loaded then. A rollout graded without running the
agent's code (exact_answer, file_content) never loads the grading sandbox either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ENV = '''
import json, os, sys
from hud import Environment, graders

env = Environment(name="lean")


@env.template()
async def count_letter(word: str = "strawberry", letter: str = "r", times: int = 1):
    """Count a letter."""
    answer = yield f"How many '{letter}'s are in '{word}'?"
    yield graders.exact_answer(answer, word.count(letter) * times)


@count_letter.solution
def solve(word: str, letter: str, times: int) -> str:
    return str(word.count(letter) * times)


@env.shutdown
async def dump_modules():
    with open(os.environ["MODULES_FILE"], "w") as out:
        json.dump(sorted(sys.modules), out)


tasks = [count_letter(word=w) for w in ("strawberry", "raspberry", "blueberry")]
'''

PYDANTIC = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection")
#: the grading sandbox and what only it needs: python_calls and command load them
SANDBOX = ("hud.grading.sandbox", "hud.grading.leftovers", "hud.capabilities.users",
           "shutil", "secrets")


def _rollout(tmp_path: Path, args: dict[str, object], answer: str) -> tuple[dict, list[str]]:
    """hello, tasks.list, tasks.start, tasks.grade and bye on a daemon serving its stdio;
    the grade's result and the modules the daemon had loaded when it stopped."""
    module = tmp_path / "lean_env.py"
    module.write_text(ENV)
    modules = tmp_path / "modules.json"
    env = {**os.environ, "HUD_CONNECT": "stdio", "MODULES_FILE": str(modules)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hud.cli.main", "serve", str(module), "--socket",
         str(tmp_path / "control.sock"), "--log-file", str(tmp_path / "daemon.log")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    replies = []
    try:
        for number, (method, params) in enumerate([
                ("hello", {"client": "test"}), ("tasks.list", {}),
                ("tasks.start", {"id": "count_letter", "args": args}),
                ("tasks.grade", {"answer": answer}), ("bye", {})], start=1):
            proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": number, "method": method,
                                         "params": params}).encode() + b"\n")
            proc.stdin.flush()
            reply = json.loads(proc.stdout.readline())
            assert "result" in reply, reply
            replies.append(reply["result"])
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    hello, listed = replies[0], replies[1]
    assert [t["slug"] for t in hello["tasks"]] == [t["slug"] for t in listed["tasks"]]
    schema = hello["templates"][0]["args_schema"]
    assert schema["properties"]["times"] == {"default": 1, "title": "Times", "type": "integer"}
    return replies[3], json.loads(modules.read_text())


def test_a_rollout_of_a_plain_template_leaves_pydantic_unimported(tmp_path: Path) -> None:
    graded, modules = _rollout(tmp_path, {"word": "raspberry", "times": 2}, "6")
    assert graded["score"] == 1.0
    assert "hud.serve.daemon" in modules and "asyncio" in modules  # the probe saw the daemon
    assert [m for m in modules if m.split(".")[0] in PYDANTIC] == []
    assert [m for m in modules if m in SANDBOX] == []


def test_a_sandboxed_grade_loads_the_sandbox_and_limits_stay_public() -> None:
    """Lazy is not gone: `command` loads the sandbox at its first use (here it then
    refuses a program that is not on the sandbox's PATH, which needs no grading user),
    and `graders.Limits` is the sandbox's own class, a module global as before."""
    code = ("import asyncio, sys\nfrom hud import graders\nfrom hud.errors import ConfigError"
            "\nassert 'hud.grading.sandbox' not in sys.modules\n"
            "from hud.grading.bounded import Limits\nassert graders.Limits is Limits\n"
            "try:\n    asyncio.run(graders.command(None, ['no-such-program-x'], expect_exit=0))"
            "\nexcept ConfigError as exc:\n    print('refused:', exc)\n"
            "assert 'hud.grading.sandbox' in sys.modules and 'shutil' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: 'no-such-program-x' is not on the grading"), \
        done.stdout

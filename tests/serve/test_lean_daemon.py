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
SANDBOX = ("hud.grading.sandbox", "hud.grading.bounded", "hud.grading.leftovers",
           "hud.capabilities.users", "hud.nofollow", "shutil", "secrets")


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


def test_the_sandbox_loads_when_a_grader_needs_it_and_limits_stay_public() -> None:
    """Lazy is not gone: `graders.Limits` (public) and the sandbox load on first use."""
    code = ("import sys\nfrom hud import graders\nassert 'hud.grading.sandbox' not in "
            "sys.modules\nlimits = graders.Limits(timeout=3)\nfrom hud.graders import Limits"
            "\nassert Limits is type(limits) and limits.timeout == 3\nimport hud.graders as g"
            "\nassert 'Limits' in g.__all__ and not hasattr(g, 'Nope')\n"
            "print(graders.file_content('/nonexistent/x', 'a')['score'])\n"
            "assert 'hud.nofollow' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.0"


def test_arguments_that_need_coercion_load_pydantic_and_get_it(tmp_path: Path) -> None:
    """"2" for an int is pydantic's to coerce, as it always was: loaded for that."""
    graded, modules = _rollout(tmp_path, {"word": "raspberry", "times": "2"}, "6")
    assert graded["score"] == 1.0
    assert "pydantic" in modules

"""Red team review of e7857f1 (hud.graders loads the grading sandbox only when a grader
runs the agent's code: `Limits` behind a module `__getattr__`, `Outcome` and `Limits`
imported only under TYPE_CHECKING, session ids from os.urandom).

Each test documents a regression that review found against the parent commit
(e7857f1^), where `Limits` and `Outcome` were module globals of hud.graders; each was
xfail(strict) until the fix: Limits, Outcome and nofollow are module globals again, the
sandbox is imported in a worker thread at its first use (outside the template's step),
and an environment's folder holding a file named like a standard-library module is
refused at load (hud.serve.loader.stdlib_shadows). Each runs in a fresh interpreter, so
that a test elsewhere that patched `hud.graders.Limits` (monkeypatch's undo leaves the
attribute in the module's dict) cannot hide the bug. No docker needed; the two daemon
tests run a real `hud serve` over stdio with throwaway grading and agent accounts
(tests.graderkit: root, as tests/test_graders.py).
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.graderkit import agent_account, grader, grader_account  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)


def test_public_graders_type_hints_resolve() -> None:
    """Attack/probe: introspect the public graders' signatures the way tools do
    (typing.get_type_hints, inspect.signature(eval_str=True), pydantic.validate_call,
    sphinx-autodoc-typehints, typer). `python_calls(..., limits: Limits | None)` and
    `command(..., limits: Limits | None)` are string annotations (PEP 563) resolved in
    the module's globals, where `Limits` no longer is: a NameError, for the public API."""
    done = _python(
        "import inspect, typing\n"
        "import pydantic\n"
        "from hud import graders\n"
        "failed = []\n"
        "for fn in (graders.python_calls, graders.command):\n"
        "    for probe in (typing.get_type_hints,\n"
        "                  lambda f: inspect.signature(f, eval_str=True),\n"
        "                  pydantic.validate_call):\n"
        "        try:\n"
        "            probe(fn)\n"
        "        except Exception as exc:\n"
        "            failed.append(f'{fn.__name__}: {type(exc).__name__}: {exc}')\n"
        "assert not failed, failed\n"
        "hints = typing.get_type_hints(graders.python_calls)\n"
        "assert hints['limits'] == graders.Limits | None, hints['limits']\n")
    assert done.returncode == 0, done.stderr[-2000:]


def test_limits_is_listed_by_dir_and_documented_by_help() -> None:
    """Probe: discover the public API the usual ways. `Limits` is in `__all__` and is the
    documented type of `limits=`, but `dir()`, `inspect.getmembers()` and pydoc (`help`,
    which builds a module's CLASSES section from getmembers) skip it: an author reading
    `help(hud.graders)` no longer learns what `limits=` takes."""
    done = _python(
        "import inspect, pydoc\n"
        "from hud import graders\n"
        "assert 'Limits' in graders.__all__\n"
        "missing = [name for name in graders.__all__ if name not in dir(graders)]\n"
        "assert not missing, f'in __all__ but not in dir(): {missing}'\n"
        "assert 'Limits' in dict(inspect.getmembers(graders)), 'getmembers'\n"
        "text = pydoc.render_doc(graders, renderer=pydoc.plaintext)\n"
        "assert 'class Limits' in text, 'help(hud.graders) does not document Limits'\n")
    assert done.returncode == 0, done.stderr[-2000:]


SHADOW_ENV = '''
from hud import Environment, graders
from secrets import ANSWERS  # the env's own module of hidden answers, beside env.py

env = Environment(name="shadow")


@env.template()
async def echo_answer():
    """Print the answer."""
    answer = yield "Print the answer."
    yield await graders.command(None, ["python3", "-c", "print(42)"],
                                expect_stdout=str(ANSWERS["echo"]))
'''


def _daemon_grade(folder: Path, env: dict[str, str]) -> tuple[str, Any]:
    """Serve `folder` over stdio as `hud serve` does; ("load", None) when the daemon did
    not come up (the environment failed to load), else ("grade", the grade's reply)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hud.cli.main", "serve", str(folder), "--socket",
         str(folder / "control.sock"), "--log-file", str(folder / "daemon.log")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, **env, "HUD_CONNECT": "stdio"}, cwd=str(folder))
    assert proc.stdin is not None and proc.stdout is not None
    replies: list[dict[str, Any]] = []
    try:
        for number, (method, params) in enumerate([
                ("hello", {"client": "test"}), ("tasks.start", {"id": "echo_answer"}),
                ("tasks.grade", {"answer": "done"}), ("bye", {})], start=1):
            try:
                proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": number, "method": method,
                                             "params": params}).encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                break
            line = proc.stdout.readline()
            if not line:
                break
            replies.append(json.loads(line))
    finally:
        proc.kill()
        proc.wait()
    if not replies or "result" not in replies[0]:
        return "load", None
    return "grade", replies[2]


def test_an_env_module_named_like_a_stdlib_one_fails_at_load_not_at_every_grade(
        tmp_path: Path, grader: pwd.struct_passwd) -> None:
    """Probe (an author's plausible layout, not the agent's): /opt/hud/env/secrets.py
    holding the hidden answers, `from secrets import ANSWERS` in env.py. Acceptable: the
    env refuses to load (the old behaviour: stdlib `secrets` was already loaded by
    hud.serve.sessions), or grading works (hud's sandbox uses the real stdlib module).
    Not acceptable: the daemon serves the task and the grade (after the agent's whole
    turn) fails inside hud's own sandbox because its stdlib import resolved to the
    env's file."""
    folder = tmp_path / "env"
    folder.mkdir()
    (folder / "env.py").write_text(SHADOW_ENV)
    (folder / "secrets.py").write_text('"""Hidden answers."""\nANSWERS = {"echo": 42}\n')
    grading = {"HUD_GRADER_USER": os.environ["HUD_GRADER_USER"],
               "HUD_AGENT_USER": os.environ["HUD_AGENT_USER"]}
    stage, reply = _daemon_grade(folder, grading)
    if stage == "load":
        return  # refused at start: the author sees the clash before any rollout
    assert "result" in reply, reply
    assert reply["result"]["score"] == 1.0, reply


STALL_ENV = '''
from hud import Environment, graders

env = Environment(name="tight")


@env.template(stall_timeout=0.01)
async def echo_answer():
    """Print the answer (template code that never blocks: one await per step)."""
    answer = yield "Print the answer."
    yield await graders.command(None, ["python3", "-c", "print(42)"], expect_stdout="42")
'''


def test_the_lazy_sandbox_import_is_not_charged_to_the_templates_stall_limit(
        tmp_path: Path, grader: pwd.struct_passwd) -> None:
    """Probe: a template whose own code never blocks (`yield await graders.command(...)`)
    and a tight `stall_timeout` (10 ms, a documented, positive limit). hud's own import of
    its grading sandbox now happens in the template's synchronous step, so the stall
    guard fails the grade and tells the author to make *their* code async: a rollout
    excluded as an error, in every fresh container, for hud's start-up work. (A hostile
    agent can't forge with it, but load on the machine at grade time stretches the
    import, so looser limits trip too.)"""
    folder = tmp_path / "env"
    folder.mkdir()
    (folder / "env.py").write_text(STALL_ENV)
    grading = {"HUD_GRADER_USER": os.environ["HUD_GRADER_USER"],
               "HUD_AGENT_USER": os.environ["HUD_AGENT_USER"]}
    stage, reply = _daemon_grade(folder, grading)
    assert stage == "grade", "the environment did not load"
    assert "result" in reply, reply
    assert reply["result"]["score"] == 1.0, reply

"""The click-free fast path (hud.cli.fast) says exactly what the click commands say."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hud.cli.fast import COMMANDS, parse, path_ok
from tests.conftest import ENVS

START = COMMANDS[("task", "start")][0]

#: `hud ARGV` through click alone (the group, no fast path): what the fast path must match
CLICK = "import sys; from hud.cli.group import cli; cli(prog_name='hud')"
#: the same, reporting whether click was loaded (it is not, when the fast path ran it)
FAST = ("import sys\nfrom hud.cli.main import main\ntry:\n    main()\nfinally:\n"
        "    print('CLICK' if 'click' in sys.modules else 'FAST', file=sys.stderr)")

STYLED = '''
from hud import Environment

env = Environment(name="styled")


@env.template()
async def red():
    answer = yield "\\x1b[31mred\\x1b[0m and plain"
    yield 0.5
'''


def test_parse_takes_options_and_arguments_in_any_order() -> None:
    """Arguments between options, `--opt=VALUE`, and --arg accumulating."""
    assert parse(["--json", "count", "--arg=a=1", "--arg", "b=2"], START) == (
        {"as_json": True, "pairs": ["a=1", "b=2"]}, ["count"])


def test_parse_takes_a_value_as_is_even_when_it_looks_like_an_option() -> None:
    """A value starting with `-` is the value (click does the same), the last one wins."""
    assert parse(["x", "--args", "--json", "--args", "-1"], START) == (
        {"args_json": "-1"}, ["x"])


def test_parse_ends_options_at_double_dash() -> None:
    """After `--` every word is an argument."""
    assert parse(["--", "--json"], START) == ({}, ["--json"])


@pytest.mark.parametrize("words", [["x", "--help"], ["x", "-h"], ["x", "--token", "t"],
                                   ["x", "--jso"], ["x", "--json=1"], ["x", "--args"],
                                   ["x", "-5"]],
                         ids=["--help", "-h", "--token", "prefix", "flag value", "no value",
                              "short"])
def test_parse_leaves_anything_else_to_click(words: list[str]) -> None:
    """Help, the refused --token, unknown or abbreviated options, a flag with a value and
    an option without its value: None, so that click answers."""
    assert parse(words, START) is None


def test_path_ok_refuses_what_click_path_refuses(tmp_path: Path) -> None:
    """A missing path passes (unless it must exist); a directory never does."""
    assert path_ok(str(tmp_path / "missing")) and not path_ok(str(tmp_path / "missing"), True)
    assert not path_ok(str(tmp_path)) and not path_ok("a\0b")
    (tmp_path / "f").write_text("x")
    assert path_ok(str(tmp_path / "f"), exists=True)


def test_serve_defaults_are_the_click_commands() -> None:
    """`hud serve` run by the fast path gets the click options' defaults."""
    from hud.cli.serve import serve
    from hud.cli.serving import run

    defaults = {name: p.default for name, p in inspect.signature(run).parameters.items()
                if p.default is not inspect.Parameter.empty and name not in ("tcp", "token")}
    params = serve.make_context("serve", []).params
    assert {name: params[name] for name in defaults} == defaults


def _hud(how: str, argv: list[str], env: dict[str, str],
         input: str | None = None) -> tuple[int, str, str, str]:
    """(exit code, stdout, stderr, FAST or CLICK or "") of `hud ARGV`, session ids masked."""
    done = subprocess.run([sys.executable, "-c", FAST if how == "fast" else CLICK, *argv],
                          env=env, input=input, capture_output=True, text=True, timeout=60)
    stderr, path = done.stderr, ""
    if how == "fast":
        stderr, _, path = stderr[:-1].rpartition("\n") if "\n" in stderr[:-1] else (
            "", "", stderr[:-1])
        stderr = stderr + "\n" if stderr else ""
    masked = [re.sub(r'("session_id": "|session )[0-9a-f]{16}', r"\1ID", text) for text in
              (done.stdout, re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", "TIME", stderr))]
    return done.returncode, masked[0], masked[1], path


FAST_RUNS = {
    "start, grade": [["task", "start", "count_letter"],
                     ["task", "grade", "count_letter", "--answer", "3"]],
    "json": [["task", "start", "--json", "count_letter"], ["task", "grade", "--answer=2", "--json"]],
    "stdin answer": [["task", "start", "count_letter"], ["task", "grade", "--answer", "-"]],
    "list": [["task", "list"], ["task", "list", "--json"]],
    "manifest, health": [["manifest"], ["health"]],
    "cancel": [["task", "start", "count_letter"], ["task", "cancel", "count_letter"]],
    "nothing started": [["task", "grade", "--answer", "3"], ["task", "cancel"]],
    "unknown task": [["task", "start", "nope"]],
    "dict prompt": [["task", "start", "add", "--arg", "a=40", "--args", '{"b": 2}'],
                    ["task", "grade", "add", "--answer", "42", "--json"]],
    "bad arg value": [["task", "start", "add", "--arg", "a=forty"]],
    "traceback": [["task", "start", "key_error_in_setup"]],
    "ansi": [["task", "start", "red"], ["task", "grade", "red", "--answer", "x"]],
    "token file": [["health", "--token-file", "{token}"]],
    "serve on a taken socket": [["serve", "{tmp}/styled.py"], ["serve", "-v", "{tmp}/styled.py"]],
    "connect refused": [["connect", "--tunnel", "nope"],
                        ["connect", "--wait=0.5", "--tunnel", "nope"]],
}
CLICK_RUNS = {
    "help": [["task", "start", "--help"], ["serve", "-h"]],
    "usage errors": [["task", "start", "x", "--args", "[1]"], ["task", "grade", "x"],
                     ["task", "start", "x", "--bogus"], ["task", "start"],
                     ["task", "start", "x", "--token", "t"],
                     ["task", "grade", "--answer-file", "{tmp}/missing"],
                     ["health", "--socket", "{tmp}"]],
    "connect usage errors": [["connect", "--mux", "--tunnel", "x"], ["connect", "--wait", "-1"],
                             ["connect", "--wait", "soon"]],
    "options it does not take": [["task", "list", "--image", "x:y"],
                                 ["manifest", "--module", "{tmp}/missing"]],
}
ENV_OF = {"dict prompt": "faults", "bad arg value": "faults", "traceback": "faults",
          "ansi": "styled"}


@pytest.mark.parametrize("name", [*FAST_RUNS, *CLICK_RUNS])
def test_same_output_and_exit_code_as_click(name: str, start_daemon: Any,
                                            tmp_path: Path) -> None:
    """Each command run by `hud` prints and exits exactly as the click command does; the
    plain ones without loading click, the others by handing them to click."""
    (tmp_path / "styled.py").write_text(STYLED)
    token = tmp_path / "token"
    token.write_text("secret\n")
    os.chmod(token, 0o644)  # other users can read it: both print the warning
    module = {"faults": str(ENVS / "faults.py"), "styled": str(tmp_path / "styled.py")}.get(
        ENV_OF.get(name, ""), str(ENVS / "letters.py"))
    env = start_daemon(module).env
    runs = [[a.replace("{tmp}", str(tmp_path)).replace("{token}", str(token)) for a in argv]
            for argv in (FAST_RUNS | CLICK_RUNS)[name]]
    fast, by_click = ([_hud(how, argv, env, "3\n" if "-" in argv else None) for argv in runs]
                      for how in ("fast", "click"))  # each run from the same daemon state
    assert [run[:3] for run in fast] == [run[:3] for run in by_click]
    assert {run[3] for run in fast} == {"FAST" if name in FAST_RUNS else "CLICK"}
    assert all(run[1] or run[2] for run in fast)  # each said something


def test_no_daemon_is_the_same_error(tmp_path: Path) -> None:
    """Nothing listening: the same `error: no hud daemon answers ...` line and exit 1."""
    env = {**os.environ, "HUD_SOCKET": str(tmp_path / "none.sock")}
    fast = _hud("fast", ["task", "start", "x"], env)
    assert fast[:3] == _hud("click", ["task", "start", "x"], env)[:3]
    assert fast[0] == 1 and fast[2].startswith("error: no hud daemon answers on")

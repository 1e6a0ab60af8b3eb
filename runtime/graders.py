"""Graders: score the agent's work in the trusted daemon, never in the agent's process.

    from hud import graders

    yield graders.exact_answer(answer, 3)
    yield graders.file_content("/workspace/out.txt", expect="42")
    yield await graders.python_calls("/workspace", include=["stats/**/*.py"], cases=[
        graders.Case("stats:median", args=[[4, 1, 3, 2]], expect=2.5),
        graders.Case("stats:median", args=[[]], raises="ValueError"),
    ])
    yield await graders.command("/workspace", ["python3", "wc.py"], stdin="a b\\n",
                                expect_stdout="2")

The rule: **grading never trusts a result computed in a process that ran the agent's
code** — not its exit code, not its stdout, not a "tests passed" line. Code the agent
wrote can patch unittest, `os._exit(0)` at import, or print anything. So the agent's code
runs only in the grading sandbox (hud.grading.sandbox: its own user, a private folder, isolated
Python, bounded time, memory, processes and output), which receives inputs and hands back
raw outputs; expected values never enter it, and the comparison happens here. An exit
code or an output is evidence only when it must equal something the agent could not
know (the answer for a hidden input), never when it is a constant like "exit 0".

Every helper returns a reward `{"score": float, "info": {...}}`. Whatever the agent can
cause — a timeout, a memory or output flood, a crash, exit at import, garbage on the
result channel, a symlink where a file should be — is a score of 0 with the reason in
`info["reason"]`, never an exception (an exception would exclude the rollout as an
infrastructure error). Exceptions are for the author's mistakes (bad arguments, no grading
user): hud.errors types whose message names the fix.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hud import nofollow
from hud.errors import ConfigError
from hud.grading.bounded import RESULT_FD, Limits, MiB, Outcome, size_text
from hud.grading.calls import MISSING, Case, as_json, describe, parse_results, short

if TYPE_CHECKING:
    from hud.grading.sandbox import Sandbox

__all__ = ["Case", "Limits", "command", "exact_answer", "file_content", "python_calls"]

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grading", "harness.py")
TAIL = 2000  # characters of an output's end shown in info


async def _sandbox() -> type[Sandbox]:
    """The grading sandbox, imported at its first use, in a worker thread. A rollout
    graded without running the agent's code (exact_answer, file_content) never loads it
    (shutil with bz2 and lzma, the grading users, the leftovers sweep: 18 of the 215
    modules a letter-count daemon imported, README "Benchmarks"), and the import, ~30 ms
    on a busy machine, runs while the template's step is suspended, so the stall guard
    does not charge it to the template."""
    module: Any = sys.modules.get("hud.grading.sandbox")
    if module is None:
        import asyncio
        import importlib

        def load() -> Any:
            importlib.import_module("shutil")  # _check_program's
            return importlib.import_module("hud.grading.sandbox")

        module = await asyncio.to_thread(load)
    sandbox: type[Sandbox] = module.Sandbox
    return sandbox


def _reward(score: float, **info: Any) -> dict[str, Any]:
    return {"score": float(score), "info": info}


def _tail(data: bytes) -> str:
    return data[-TAIL:].decode(errors="replace")


def exact_answer(answer: Any, expected: Any, *, ignore_case: bool = False) -> dict[str, Any]:
    """Grade a chat answer: 1.0 when it is exactly `expected` (as text), else 0.0.

    Surrounding whitespace and one trailing period are ignored; nothing else is ("0123"
    is not "3", "3 apples" is not "3").

    Args:
        answer: the agent's answer (None or a non-string scores 0).
        expected: the right answer; compared as `str(expected)`.
        ignore_case: compare case-insensitively.
    """
    want = str(expected).strip()
    if not isinstance(answer, str):
        return _reward(0.0, reason=f"the answer is not text: {short(answer)}")
    got = answer.strip()
    if got.endswith(".") and not want.endswith("."):
        got = got[:-1].rstrip()
    if ignore_case:
        got, want = got.casefold(), want.casefold()
    return _reward(1.0 if got == want else 0.0, answer=short(answer))


def file_content(path: str, expect: str | bytes | Callable[[str], Any], *,
                 max_bytes: int = MiB, encoding: str = "utf-8",
                 strip: bool = True) -> dict[str, Any]:
    """Grade a file the agent wrote, without running any of its code.

    The file is read with no symlink followed anywhere on its path, up to `max_bytes`.

    Args:
        path: absolute path of the file.
        expect: the exact text (compared after `strip()` when `strip`), bytes (compared
            exactly), or a predicate on the text evaluated here (truthy passes).
        max_bytes: a larger file scores 0.
        encoding: how to decode the file for text and predicates.
        strip: ignore surrounding whitespace for a text `expect`.

    Raises:
        ConfigError: `path` is not absolute.
    """
    if not os.path.isabs(path):
        raise ConfigError(f"file_content needs an absolute path, got {path!r}")
    try:
        data = nofollow.read_file(path, max_bytes)
    except nofollow.Refused as exc:
        return _reward(0.0, reason=str(exc))
    if isinstance(expect, bytes):
        return _reward(1.0 if data == expect else 0.0, size=len(data))
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        return _reward(0.0, reason=f"{path} is not {encoding} text: {exc}")
    if callable(expect):
        try:
            ok = bool(expect(text))
        except Exception as exc:  # noqa: BLE001 - the agent's content made the predicate fail
            return _reward(0.0, reason=f"expect raised {type(exc).__name__}: {exc}")
    else:
        ok = text.strip() == expect.strip() if strip else text == expect
    return _reward(1.0 if ok else 0.0, size=len(data))


def _why(out: Outcome, limits: Limits) -> str:
    """Why a run gave nothing usable, in words."""
    if out.failure:
        return out.failure
    if out.exit_code < 0:
        try:
            name = signal.Signals(-out.exit_code).name
        except ValueError:
            name = f"signal {-out.exit_code}"
        return f"crashed: killed by {name}"
    if b"MemoryError" in out.stderr:
        return f"memory limit ({size_text(limits.memory)}) reached"
    if out.exit_code == 0:
        return "the process exited (code 0) before the harness reported"
    return f"crashed: exit code {out.exit_code}"


async def python_calls(project_dir: str, *, include: Sequence[str], cases: Sequence[Case],
                       partial: bool = False, limits: Limits | None = None,
                       case_timeout: float | None = None,
                       python: str = "python3") -> dict[str, Any]:
    """Call the agent's functions on hidden inputs in the sandbox; compare here.

    The files under `project_dir` matching `include` (no symlinks, no bytecode, no .pth)
    are copied into the sandbox; a harness imports the modules with `python3 -I -B`, the
    project folder appended to sys.path after the stdlib (a planted `unittest.py`,
    `json.py` or `sitecustomize.py` shadows nothing), calls each case on its inputs and
    reports raw return values or exception classes. The expected values stay here. (So a
    project module named like a stdlib or installed module cannot be imported: theirs
    comes first.)

    Args:
        project_dir: absolute path of the agent's project (e.g. "/workspace").
        include: globs relative to it of the files to copy ("stats/**/*.py").
        cases: the calls and what each must give.
        partial: score the fraction of cases passed; by default (False) all-or-nothing,
            1.0 only when every case passes.
        limits: time, memory, process and output bounds of the run.
        case_timeout: seconds per call (default: the whole run's timeout).
        python: the interpreter (as the agent runs it), looked up on the minimal PATH.

    Raises:
        ConfigError: no cases or includes, a bad pattern, or no usable grading user.
    """
    if not cases or not include:
        raise ConfigError("python_calls needs at least one case and one include glob")
    Sandbox = await _sandbox()
    _check_program(python)
    limits = limits or Limits()
    request = {"calls": [{"call": c.call, "args": as_json(list(c.args), "args"),
                          "kwargs": as_json(dict(c.kwargs), "kwargs")} for c in cases],
               "case_timeout": case_timeout}
    with open(HARNESS, "rb") as handle:
        harness = handle.read()
    async with Sandbox(limits, sweep=[project_dir]) as box:
        try:
            copied = await box.copy_in(project_dir, include, "project")
        except ValueError as exc:
            raise ConfigError(f"python_calls: {exc}") from None
        except nofollow.Refused as exc:
            return _reward(0.0, reason=f"cannot copy the project: {exc}")
        if not copied.files:
            return _reward(0.0, reason=f"no file under {project_dir} matches {list(include)}",
                           skipped=copied.skipped[:20])
        box.write("harness.py", harness)
        out = await box.run([python, "-I", "-B", box.file("harness.py"), RESULT_FD,
                             box.file("project")], stdin=json.dumps(request).encode(),
                            cwd="project")
    info: dict[str, Any] = {"stderr": _tail(out.stderr)} if out.stderr else {}
    if copied.skipped:
        info["skipped"] = copied.skipped[:20]
    results = parse_results(out.result, len(cases)) if not out.failure else out.failure
    if isinstance(results, str):
        reason = results if out.failure else f"{results}; {_why(out, limits)}"
        return _reward(0.0, reason=reason, **info)
    passed = [case.check(result) for case, result in zip(cases, results, strict=True)]
    failed = [{"case": i, "call": cases[i].call, "got": describe(results[i])}
              for i, ok in enumerate(passed) if not ok]
    if any("builtins.MemoryError" in r.get("raised", []) for r in results):
        info["reason"] = f"memory limit ({size_text(limits.memory)}) reached"
    score = sum(passed) / len(cases) if partial else float(all(passed))
    return _reward(score, passed=sum(passed), total=len(cases), failed=failed[:20], **info)


async def command(project_dir: str | None, argv: Sequence[str], *,
                  include: Sequence[str] = ("**",), stdin: str | bytes = b"",
                  expect_stdout: str | Callable[[str], Any] = MISSING,
                  expect_exit: int | None = None,
                  limits: Limits | None = None) -> dict[str, Any]:
    """Run a command on hidden input in the sandbox; compare its output here.

    Use it for a program the agent wrote: its stdout for a hidden stdin or argv, compared
    with the answer only the grader knows. Exit code alone is weak evidence: "exit 0" is
    something any program can do; check it only together with output, or when the right
    code depends on the hidden input.

    Args:
        project_dir: absolute path of the files to copy in (None: nothing is copied); the
            command runs in the copy.
        argv: the program and arguments ("python3", "main.py", ...), on a minimal PATH.
        include: globs of the files to copy, relative to `project_dir`.
        stdin: fed to the program (hidden input).
        expect_stdout: the exact output (trailing whitespace of each line and surrounding
            blank lines ignored), or a predicate on the output text, evaluated here.
        expect_exit: the exit code that must be returned.
        limits: time, memory, process and output bounds.

    Raises:
        ConfigError: no expectation given, or a bad argument.
    """
    if expect_stdout is MISSING and expect_exit is None:
        raise ConfigError("command() needs expect_stdout= and/or expect_exit=")
    if not argv:
        raise ConfigError("command() needs a non-empty argv")
    Sandbox = await _sandbox()
    _check_program(argv[0])
    limits = limits or Limits()
    data = stdin.encode() if isinstance(stdin, str) else stdin
    async with Sandbox(limits, sweep=[project_dir] if project_dir else []) as box:
        if project_dir is not None:
            try:
                await box.copy_in(project_dir, include, "project")
            except ValueError as exc:
                raise ConfigError(f"command: {exc}") from None
            except nofollow.Refused as exc:
                return _reward(0.0, reason=f"cannot copy the project: {exc}")
        out = await box.run(list(argv), stdin=data, cwd="project" if project_dir else "")
    text = out.stdout.decode(errors="replace")
    info: dict[str, Any] = {"exit_code": out.exit_code, "stdout": _tail(out.stdout),
                            "stderr": _tail(out.stderr)}
    if out.failure:
        return _reward(0.0, reason=out.failure, **info)
    ok = expect_exit is None or out.exit_code == expect_exit
    if ok and expect_stdout is not MISSING:
        if callable(expect_stdout):
            try:
                ok = bool(expect_stdout(text))
            except Exception as exc:  # noqa: BLE001 - the agent's output made the predicate fail
                return _reward(0.0, reason=f"expect_stdout raised {type(exc).__name__}", **info)
        else:
            ok = _lines(text) == _lines(expect_stdout)
    if not ok and out.exit_code < 0:
        info["reason"] = _why(out, limits)
    return _reward(1.0 if ok else 0.0, **info)


def _check_program(name: str) -> None:
    """A program named without a folder must be on the sandbox's PATH (else the author's
    mistake, not the agent's: a ConfigError rather than a score of 0). Called after
    `_sandbox()`, which loaded both imports."""
    import shutil

    from hud.capabilities.users import USER_PATH

    if "/" not in name and shutil.which(name, path=USER_PATH) is None:
        raise ConfigError(f"{name!r} is not on the grading sandbox's PATH ({USER_PATH}); "
                          f"install it in the image or give its absolute path")


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]

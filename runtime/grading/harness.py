"""Runs inside the grading sandbox: calls the agent's functions on inputs read from stdin.

    python3 -I -B harness.py RESULT_FD PROJECT_DIR  < {"calls": [...], "case_timeout": s}

Started by hud.graders.python_calls as the grading user. It holds no expected value: it
writes the raw outcome of each call (a JSON return value, or the raising exception's
classes) to RESULT_FD, and the daemon compares. Once the agent's module is imported this
process is the agent's; what that code can do here is decide its own outcomes, which is
what is being graded. `-I` keeps PYTHON* variables, the user site and the script's folder
out; the stdlib modules used here are imported before the project folder is appended to
sys.path, after the stdlib and site-packages, so no project file shadows them. This file
uses the stdlib only: it runs under the system interpreter, not hud's.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
from types import FrameType
from typing import Any

MESSAGE_CHARS = 300


class _CaseTimeout(BaseException):
    """One call ran past the per-case time."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _CaseTimeout()


def _classes(exc: BaseException) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__]


def _raised(exc: BaseException, stage: str) -> dict[str, Any]:
    try:
        message = str(exc)[:MESSAGE_CHARS]
    except BaseException:  # a hostile __str__
        message = "<unprintable>"
    return {"raised": _classes(exc), "message": message, "stage": stage}


def _target(call: str) -> Any:
    """'pkg.mod:func' or 'pkg.mod.func' -> the object, importing the module."""
    module, _, attr = call.partition(":") if ":" in call else call.rpartition(".")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _call(spec: dict[str, Any], case_timeout: float | None) -> dict[str, Any]:
    if case_timeout:
        signal.setitimer(signal.ITIMER_REAL, case_timeout)
    try:
        try:
            fn = _target(spec["call"])
        except _CaseTimeout:
            raise
        except BaseException as exc:
            return _raised(exc, "import")
        try:
            value = fn(*spec["args"], **spec["kwargs"])
        except _CaseTimeout:
            raise
        except BaseException as exc:
            return _raised(exc, "call")
    except _CaseTimeout:
        return {"timeout": case_timeout}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"ok": value}


def _encode(record: dict[str, Any]) -> str:
    try:
        return json.dumps(record, allow_nan=False)
    except BaseException:
        value = record.get("ok")
        return json.dumps({"unserializable": type(value).__qualname__})


def main() -> None:
    result_fd, project = int(sys.argv[1]), sys.argv[2]
    request = json.loads(sys.stdin.buffer.read())
    signal.signal(signal.SIGALRM, _on_alarm)
    sys.path.append(project)
    parts = [_encode(_call(spec, request.get("case_timeout"))) for spec in request["calls"]]
    view = memoryview(('{"results": [' + ", ".join(parts) + "]}").encode())
    while view:
        view = view[os.write(result_fd, view):]
    os.close(result_fd)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # the project may have replaced them
            stream.flush()
    # not sys.exit: threads or atexit hooks the project started must not hold the run open
    os._exit(0)


if __name__ == "__main__":
    main()

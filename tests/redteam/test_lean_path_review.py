"""Red team review of the pydantic-free rollout path (commit 65d51a9): hud.records' wire
records, the plain `Task` and the lazy `Template`, held against the pydantic models they
replaced (714b0e8), as a hostile agent, an untrusted manifest and a user with old files.

Each test documents a confirmed difference, found by helper-37 and fixed: the tests
guard the fixes. No docker needed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from hud import Environment, wire
from hud.messages import Binding, EnvInfo, Manifest, Request, TemplateInfo
from hud.records import Invalid
from hud.task import Task

pytestmark = pytest.mark.timeout(60)


def _strict_json(text: str) -> Any:
    """`text` parsed as RFC 8259 JSON: NaN / Infinity literals refused."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _hello_frame(env: Environment) -> bytes:
    """What the daemon sends for `hello` (hud.serve.methods._hello, then wire.encode)."""
    return wire.encode(wire.result_frame(1, env.manifest().model_dump(mode="json")))


# --- 1. the manifest is no longer made JSON: hello / tasks.list fail --------------------


def test_a_template_with_an_infinite_default_still_has_a_manifest() -> None:
    env = Environment(name="limits")

    @env.template()
    async def within(limit: float = math.inf):
        yield "p"
        yield 1.0

    frame = json.loads(_hello_frame(env))
    schema = frame["result"]["templates"][0]["args_schema"]
    assert schema["properties"]["limit"]["default"] is None  # as pydantic's json mode made it


def test_a_listed_task_with_a_nan_argument_still_has_a_manifest() -> None:
    env = Environment(name="listed")

    @env.template()
    async def scaled(factor=1.0):
        yield "p"
        yield 1.0

    env.add_tasks([scaled(factor=float("nan"))])
    frame = json.loads(_hello_frame(env))
    assert frame["result"]["tasks"][0]["args"] == {"factor": None}


def test_binding_params_are_made_json_in_json_mode() -> None:
    binding = Binding(name="screen", protocol="rfb/3.8", url="tcp://127.0.0.1:5900",
                      params={"sizes": {1, 2}, "tag": b"x", "dpi": float("nan")})
    manifest = Manifest(env=EnvInfo(name="e", version="1"), bindings=[binding])
    dumped = manifest.model_dump(mode="json")
    wire.encode(wire.result_frame(1, dumped))
    assert dumped["bindings"][0]["params"] == {"sizes": [1, 2], "tag": "x", "dpi": None}


ENV_MODULE = '''
import math
from hud import Environment

env = Environment(name="inf_default")


@env.template()
async def within(word: str = "x", limit: float = math.inf):
    answer = yield f"say {word}"
    yield 1.0
'''


def test_the_daemon_answers_hello_for_an_infinite_default(tmp_path: Path) -> None:
    module = tmp_path / "inf_env.py"
    module.write_text(ENV_MODULE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hud.cli.main", "serve", str(module), "--socket",
         str(tmp_path / "control.sock"), "--log-file", str(tmp_path / "daemon.log")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "HUD_CONNECT": "stdio"})
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{}}\n')
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert "result" in reply, reply


# --- 2. Task's JSON is not pydantic's -------------------------------------------------


def test_task_json_is_strict_json_as_pydantic_made_it() -> None:
    task = Task(env="e", id="t", args={"a": float("nan"), "b": [float("inf")]})
    assert task.model_dump(mode="json")["args"] == {"a": None, "b": [None]}
    assert _strict_json(task.model_dump_json())["args"] == {"a": None, "b": [None]}


def test_task_model_validate_json_refuses_deep_nesting_with_a_value_error() -> None:
    text = '{"env":"e","id":"t","args":{"a":' + "[" * 100_000 + "]" * 100_000 + "}}"
    with pytest.raises(ValueError):
        Task.model_validate_json(text)


def test_task_model_validate_json_refuses_a_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        Task.model_validate_json('{"env":"e","id":"t","slug":"s","args":{"a":"\\ud800"}}')


def test_task_keeps_the_common_pydantic_calls() -> None:
    task = Task(env="e", id="t", args={"n": 1})
    assert task.model_copy(update={"env": "f"}).env == "f"  # type: ignore[attr-defined]
    assert "slug" not in task.model_dump(exclude={"slug"})  # type: ignore[call-arg]
    assert json.loads(task.model_dump_json(indent=2))["slug"] == task.slug  # type: ignore[call-arg]


# --- 3. wire records accept what pydantic refused -------------------------------------


def test_a_float_id_past_i64_is_refused() -> None:
    with pytest.raises(Invalid):
        Request.model_validate({"jsonrpc": "2.0", "id": 1e20, "method": "tasks.list"})


def test_integer_text_with_bad_underscores_is_an_invalid_record() -> None:
    for text in ("1_", "1__0"):
        with pytest.raises(Invalid, match="concurrency"):
            EnvInfo(name="e", version="1", concurrency=text)


def test_numbers_as_text_are_held_to_pydantics_grammar() -> None:
    with pytest.raises(Invalid):
        EnvInfo(name="e", version="1", concurrency="1.")
    with pytest.raises(Invalid):
        TemplateInfo(id="t", args_schema={}, setup_timeout="\u0663")


# --- 4. the lazy model defers pydantic's decoration-time warning ----------------------


def test_a_shadowing_parameter_warns_at_decoration_time() -> None:
    env = Environment(name="shadow")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")

        @env.template()
        async def t(register: int = 0):
            yield "p"
            yield 1.0

    assert any("shadows an attribute" in str(w.message) for w in seen)

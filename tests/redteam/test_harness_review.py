"""Red team review of issue 16's harness work: the persistent bash session, streaming, and
the model options, attacked as a hostile model, a broken server and a careless user.

Each test documents a confirmed bug. While the bug is open the test is
`xfail(strict=True)` (an XPASS fails the suite); once fixed, the marker is removed and the
test guards the fix.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hud.agents.tools.shell import RemoteShell
from tests.agents.test_tools import workspace_shell
from tests.conftest import ENVS

pytestmark = pytest.mark.timeout(120)

#: provider variables a developer's shell may set; no test here may use them
KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY",
        "GOOGLE_API_KEY")
SECRET = "sk-rt-SECRET-4f1c9a"
#: an OSC "set the window title" sequence and a "clear the screen" one
ESCAPES = "\x1b]0;pwned\x07\x1b[2J"


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[RemoteShell]:
    """A RemoteShell on a started in-process ssh workspace."""
    async with workspace_shell(tmp_path) as remote:
        yield remote


async def bash(shell: RemoteShell, command: str, timeout: float = 5) -> str:
    return (await shell.bash({"command": command, "timeout": timeout})).text


# --- the persistent bash session ------------------------------------------------------


async def test_a_broken_path_does_not_turn_every_later_command_into_a_silent_success(
        shell: RemoteShell) -> None:
    """After the model breaks PATH, a builtin-only command still runs with its own status."""
    await bash(shell, "export PATH=/nonexistent")
    assert await bash(shell, "echo ran; false") == "exit code: 1\nran\n"


async def test_reset_finishes_at_once_and_keeps_the_shell(shell: RemoteShell) -> None:
    """`reset` is an ordinary, finished command: exit 0, no timeout, variables kept."""
    await bash(shell, "export KEPT=yes")
    result = await shell.bash({"command": "reset >/dev/null 2>&1; echo done", "timeout": 3})
    assert (result.is_error, result.text) == (False, "exit code: 0\ndone\n")
    assert await bash(shell, "echo $KEPT") == "exit code: 0\nyes\n"


async def test_a_background_terminal_reader_does_not_eat_the_next_command(
        shell: RemoteShell) -> None:
    """The command after one that left a /dev/tty reader in the background still runs."""
    await bash(shell, '(read -r line </dev/tty; echo "stolen: $line") & sleep 1')
    result = await shell.bash({"command": "echo next", "timeout": 3})
    assert (result.is_error, result.text.splitlines()[-1]) == (False, "next")


async def test_a_ctrl_c_crossing_the_end_of_a_command_leaves_the_next_call_intact(
        shell: RemoteShell) -> None:
    """Commands finishing right at their timeout: every following call is exactly its own."""
    for i in range(100):
        await shell.bash({"command": f"sleep {0.2 + (i % 10) * 0.002:.3f}", "timeout": 0.2085})
        after = await shell.bash({"command": f"echo check{i}", "timeout": 3})
        assert after.text == f"exit code: 0\ncheck{i}\n", i


async def test_a_nan_timeout_is_refused(shell: RemoteShell) -> None:
    """`timeout: NaN` is an error result, like any other timeout that is not positive."""
    result = await shell.bash({"command": "sleep 2; echo slept", "timeout": float("nan")})
    assert result.is_error and "'timeout' must be a positive number" in result.text


class RawServer:
    """An HTTP server on 127.0.0.1 whose every POST is answered by `answer(handler, stop)`."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler, threading.Event], None]) -> None:
        self.stop = threading.Event()
        stop = self.stop

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                self.rfile.read(int(self.headers.get("content-length") or 0))
                answer(self, stop)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def raw() -> Iterator[Callable[..., RawServer]]:
    """Makes RawServers, all closed at teardown."""
    made: list[RawServer] = []

    def make(answer: Callable[[BaseHTTPRequestHandler, threading.Event], None]) -> RawServer:
        made.append(RawServer(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def event(data: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def stream_head(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("connection", "close")
    handler.end_headers()


MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
           "content": [], "stop_reason": None, "stop_sequence": None,
           "usage": {"input_tokens": 1, "output_tokens": 1}}


def keep_alives(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """message_start, then a `ping` every 0.2 s until the server closes."""
    stream_head(handler)
    handler.wfile.write(event({"type": "message_start", "message": MESSAGE}, "message_start"))
    handler.wfile.flush()
    while not stop.wait(0.2):
        try:
            handler.wfile.write(event({"type": "ping"}, "ping"))
            handler.wfile.flush()
        except OSError:
            return


def trickled(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A whole non-streamed Message, its last 12 bytes sent one every 0.25 s."""
    body = json.dumps({**MESSAGE, "content": [{"type": "text", "text": "hi"}],
                       "stop_reason": "end_turn"}).encode()
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[:-12])
    handler.wfile.flush()
    for byte in body[-12:]:
        if stop.wait(0.25):
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


def claude(url: str, stream: bool) -> Any:
    from hud.agents.claude import ClaudeAgent

    agent = ClaudeAgent("claude-test", api_key="sk-test", base_url=url, timeout=0.5,
                        max_retries=0, stream=stream, tools=[])
    return agent.conversation("hi", [])


async def test_a_stream_of_keep_alives_alone_does_not_hold_a_request_forever(
        raw: Callable[..., RawServer]) -> None:
    """A streamed request whose server only pings fails on its own, well within 20x the
    0.5 s request timeout."""
    conversation = claude(raw(keep_alives).url, stream=True)
    error: BaseException | None = None
    try:
        async with asyncio.timeout(10) as guard:
            await conversation.ask()
    except Exception as exc:  # noqa: BLE001 - whichever error the harness chooses
        error = exc
    finally:
        await conversation.close()
    assert not guard.expired() and error is not None


async def test_a_trickled_response_is_cut_by_the_request_timeout(
        raw: Callable[..., RawServer]) -> None:
    """A 0.5 s request timeout ends a response whose body takes 3 s to arrive."""
    conversation = claude(raw(trickled).url, stream=False)
    try:
        with pytest.raises(Exception, match=r"(?i)timed? ?out"):
            await conversation.ask()
    finally:
        await conversation.close()


def reused_index(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Two whole tool calls in one streamed turn, both at index 0 (as Ollama sends them)."""
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return event({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    stream_head(handler)
    handler.wfile.write(chunk({"role": "assistant", "content": ""}))
    for call_id, name, args in (("call_a", "bash", {"command": "ls"}),
                                ("call_b", "edit", {"command": "view", "path": "x"})):
        handler.wfile.write(chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                                   "function": {"name": name,
                                                                "arguments": json.dumps(args)}}]}))
    handler.wfile.write(chunk({}, "tool_calls") + b"data: [DONE]\n\n")
    handler.wfile.flush()


async def test_parallel_calls_sharing_an_index_stay_two_calls(
        raw: Callable[..., RawServer]) -> None:
    """Streamed, two calls with their own ids at index 0 come back as two calls."""
    from hud.agents.chat_completions import ChatCompletionsAgent

    agent = ChatCompletionsAgent("m", base_url=f"{raw(reused_index).url}/v1", stream=True,
                                 max_retries=0, tools=[])
    conversation = agent.conversation("hi", [])
    try:
        turn = await conversation.ask()
    finally:
        await conversation.close()
    assert [(c.id, c.name, c.arguments) for c in turn.calls] == [
        ("call_a", "bash", {"command": "ls"}), ("call_b", "edit", {"command": "view", "path": "x"})]


# --- the model options and what hud eval prints and stores -----------------------------


def echoing_401(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A 401 whose message echoes the Authorization header, with terminal escapes."""
    said = f"invalid credentials: {handler.headers.get('authorization')} {ESCAPES}"
    body = json.dumps({"error": {"message": said, "type": "invalid_request_error"}}).encode()
    handler.send_response(401)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def hud(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The hud CLI with a private runs folder and no provider variables of the caller's."""
    base = {k: v for k, v in os.environ.items() if k not in KEYS}
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args],
                          env={**base, "HUD_RUNS_DIR": str(tmp_path / "runs"), **env},
                          capture_output=True, text=True, timeout=110)


def eval_against(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return hud(tmp_path, "eval", str(ENVS / "letters.py"), "openai-compatible:m",
               "--task", "count_letter-7723267a", "--base-url", f"{url}/v1",
               "--api-key-env", "HUD_RT_KEY", "--max-retries", "0", *args, HUD_RT_KEY=SECRET)


def test_a_provider_error_echoing_the_key_does_not_store_or_print_it(
        tmp_path: Path, raw: Callable[..., RawServer]) -> None:
    """The key is in no file of the job and in neither output of `hud eval --json`."""
    done = eval_against(tmp_path, raw(echoing_401).url, "--json")
    assert done.returncode == 1, done.stderr
    stored = [p for p in (tmp_path / "runs").rglob("*")
              if p.is_file() and SECRET in p.read_text(errors="replace")]
    assert (stored, SECRET in done.stdout, SECRET in done.stderr) == ([], False, False)


def test_a_provider_error_cannot_drive_the_terminal(
        tmp_path: Path, raw: Callable[..., RawServer]) -> None:
    """No raw ESC from a server's error message reaches hud eval's stderr."""
    done = eval_against(tmp_path, raw(echoing_401).url)
    assert done.returncode == 1 and "invalid credentials" in done.stderr
    assert "\x1b" not in done.stderr


def test_api_key_env_given_a_key_does_not_print_it(tmp_path: Path) -> None:
    """A value that cannot be a variable's name is refused without being echoed."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "claude-sonnet-4-5",
               "--api-key-env", SECRET)
    assert done.returncode != 0 and SECRET not in done.stderr + done.stdout


def test_a_base_url_without_a_scheme_is_a_usage_error(tmp_path: Path) -> None:
    """`--base-url 127.0.0.1:9/v1` is click's usage error (exit 2) naming the value."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "openai-compatible:m",
               "--task", "count_letter-7723267a", "--base-url", "127.0.0.1:9/v1",
               "--max-retries", "0")
    assert done.returncode == 2 and "127.0.0.1:9/v1" in done.stderr


def test_a_nan_request_timeout_is_a_usage_error(tmp_path: Path) -> None:
    """--request-timeout nan: exit 2 and click's 'Invalid value', as for 0."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "oracle", "--request-timeout", "nan")
    assert done.returncode == 2 and "Invalid value" in done.stderr


def test_hud_jobs_of_a_malformed_job_names_the_file(tmp_path: Path) -> None:
    """`hud jobs j1` on a job.json that is not a summary: its path, no traceback."""
    folder = tmp_path / "runs" / "j1"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"id": "j1"}))
    done = hud(tmp_path, "jobs", "j1")
    assert "Traceback" not in done.stderr and "job.json" in done.stderr


def object_arguments(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """One streamed tool call whose `arguments` is a JSON object, not the string it must be."""
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    call = {"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "bash", "arguments": {"command": "ls"}}}
    stream_head(handler)
    for delta, finish in (({"tool_calls": [call]}, None), ({}, "tool_calls")):
        handler.wfile.write(event({**head, "choices": [{"index": 0, "delta": delta,
                                                        "finish_reason": finish}]}))
    handler.wfile.write(b"data: [DONE]\n\n")
    handler.wfile.flush()


async def test_tool_arguments_sent_as_an_object_do_not_crash_the_turn(
        raw: Callable[..., RawServer]) -> None:
    """The turn comes back with the call (its arguments unusable or taken as given)."""
    from hud.agents.chat_completions import ChatCompletionsAgent

    agent = ChatCompletionsAgent("m", base_url=f"{raw(object_arguments).url}/v1", stream=True,
                                 max_retries=0, tools=[])
    conversation = agent.conversation("hi", [])
    try:
        turn = await conversation.ask()
    finally:
        await conversation.close()
    assert [(c.id, c.name) for c in turn.calls] == [("call_a", "bash")]


def test_hud_trace_shows_bidi_controls_escaped(tmp_path: Path) -> None:
    """A right-to-left override in a turn's text or thinking is shown escaped."""
    folder = tmp_path / "runs" / "j1"
    folder.mkdir(parents=True)
    line = {"t": 1, "type": "model_turn", "text": "ok \u202etxt.exe", "thinking": ["a\u2066b"]}
    (folder / "abc123.jsonl").write_text(json.dumps(line, ensure_ascii=False) + "\n")
    done = hud(tmp_path, "trace", "abc123")
    assert done.returncode == 0, done.stderr
    assert "\u202e" not in done.stdout and "\u2066" not in done.stdout


class OverloadedOnce:
    """Anthropic's stream: the first answer breaks off with an `overloaded_error` event
    (as the API sends under load), later ones carry a whole message."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        self.requests += 1
        stream_head(handler)
        out = [event({"type": "message_start", "message": MESSAGE}, "message_start")]
        if self.requests == 1:
            out.append(event({"type": "error", "error": {"type": "overloaded_error",
                                                         "message": "Overloaded"}}, "error"))
        else:
            out += [event({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "text", "text": ""}}, "content_block_start"),
                    event({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": "ok"}}, "content_block_delta"),
                    event({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                    event({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                              "stop_sequence": None},
                           "usage": {"output_tokens": 1}}, "message_delta"),
                    event({"type": "message_stop"}, "message_stop")]
        handler.wfile.write(b"".join(out))
        handler.wfile.flush()


async def test_a_stream_overloaded_midway_is_tried_again(raw: Callable[..., RawServer]) -> None:
    """With max_retries=2, a stream cut by overloaded_error is sent again and answers."""
    from hud.agents.claude import ClaudeAgent

    server = OverloadedOnce()
    agent = ClaudeAgent("claude-test", api_key="sk-test", base_url=raw(server).url,
                        max_retries=2, stream=True, tools=[])
    conversation = agent.conversation("hi", [])
    try:
        turn = await conversation.ask()
    finally:
        await conversation.close()
    assert (turn.text, server.requests) == ("ok", 2)

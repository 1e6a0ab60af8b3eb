"""`hud eval`'s model options: --base-url, --api-key-env, --api, --request-timeout,
--max-retries, against local servers that speak the providers' wire formats."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents.providers import FakeAPI, Responses, serve
from tests.conftest import ENVS

pytestmark = pytest.mark.timeout(120)

KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY",
        "GOOGLE_API_KEY", "MY_PROXY_KEY")


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    """A fake OpenAI-compatible server that answers every request with "7"."""
    for fake in serve():
        fake.script = [(200, _chat_answer("7"))]
        yield fake


def _chat_answer(text: str) -> dict[str, object]:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def hud(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`hud eval` on the letters env's count_letter tasks, with no provider key or URL
    from the developer's shell."""
    base = {k: v for k, v in os.environ.items() if k not in KEYS}
    return subprocess.run([sys.executable, "-m", "hud.cli.main", "eval", str(ENVS / "letters.py"),
                           *args, "--task", "count_letter*", "--json"],
                          env={**base, "HUD_RUNS_DIR": str(tmp_path / "runs"), **env},
                          capture_output=True, text=True, timeout=110)


def test_openai_compatible_with_only_a_base_url_needs_no_key(tmp_path: Path, api: FakeAPI) -> None:
    """`openai-compatible:m --base-url URL` with no OPENAI_API_KEY: every rollout is graded
    and the job records the agent as an OpenAI-compatible endpoint."""
    done = hud(tmp_path, "openai-compatible:m", "--base-url", f"http://127.0.0.1:{api.port}/v1")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["agent"] == "openai-compatible:m"
    assert {run["status"] for run in job["runs"]} == {"completed"}
    assert api.paths[0] == "/v1/chat/completions" and api.requests[0]["model"] == "m"


def test_the_base_url_may_come_from_openai_base_url(tmp_path: Path, api: FakeAPI) -> None:
    """$OPENAI_BASE_URL (the openai SDK's own variable) serves as the base URL: no key needed."""
    done = hud(tmp_path, "openai-compatible:m", OPENAI_BASE_URL=f"http://127.0.0.1:{api.port}/v1")
    assert done.returncode == 0, done.stderr
    assert len(api.requests) == 3


def test_without_url_or_key_the_error_names_both_fixes(tmp_path: Path) -> None:
    """openai-compatible with neither a URL nor a key: exit 1 naming the key variable and
    the base URL option."""
    done = hud(tmp_path, "openai-compatible:m")
    assert done.returncode == 1
    assert "OPENAI_API_KEY is not set" in done.stderr and "--base-url URL" in done.stderr


def test_api_key_env_names_the_variable_the_key_is_read_from(tmp_path: Path, api: FakeAPI) -> None:
    """--api-key-env NAME sends $NAME as the bearer key; unset, the error names NAME."""
    url = f"http://127.0.0.1:{api.port}/v1"
    missing = hud(tmp_path, "openai-compatible:m", "--base-url", url, "--api-key-env", "MY_PROXY_KEY")
    assert missing.returncode == 1 and "MY_PROXY_KEY is not set" in missing.stderr
    done = hud(tmp_path, "openai-compatible:m", "--base-url", url, "--api-key-env", "MY_PROXY_KEY",
               MY_PROXY_KEY="sk-proxy")
    assert done.returncode == 0, done.stderr
    assert api.headers[0]["authorization"] == "Bearer sk-proxy"


def test_api_responses_is_honoured_with_a_base_url(tmp_path: Path, api: FakeAPI) -> None:
    """--api responses keeps a gpt model on the Responses API at the given URL (without it,
    a base URL means Chat Completions)."""
    api.script = [(200, Responses("openai-responses").answer("7"))]
    done = hud(tmp_path, "gpt-5", "--api", "responses", "--base-url",
               f"http://127.0.0.1:{api.port}/v1", OPENAI_API_KEY="k")
    assert done.returncode == 0, done.stderr
    assert set(api.paths) == {"/v1/responses"}
    assert json.loads(done.stdout)["agent"] == "gpt-5"


class Silent:
    """A TCP server on loopback that accepts connections, reads, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_hung_provider_is_cut_by_the_request_timeout_and_retried(tmp_path: Path) -> None:
    """A server that never answers: each request ends after --request-timeout and is tried
    1 + --max-retries times; the rollout is an agent_error naming the timeout."""
    silent = Silent()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hud.cli.main", "eval", str(ENVS / "letters.py"),
             "openai-compatible:m", "--task", "count_letter-7723267a", "--json",
             "--base-url", f"http://127.0.0.1:{silent.port}/v1",
             "--request-timeout", "0.5", "--max-retries", "1"],
            env={**{k: v for k, v in os.environ.items() if k not in KEYS},
                 "HUD_RUNS_DIR": str(tmp_path / "runs")},
            capture_output=True, text=True, timeout=110)
    finally:
        silent.close()
    assert done.returncode == 1, done.stderr
    assert "no rollout could run (1 agent_error)" in done.stderr
    assert "APITimeoutError" in done.stderr or "timed out" in done.stderr.lower()
    assert silent.accepted == 2


@pytest.mark.parametrize("option", [["--base-url", "http://127.0.0.1:9/v1"], ["--stream"],
                                    ["--api", "chat"], ["--request-timeout", "5"]], ids=str)
def test_an_offline_agent_given_a_model_option_is_an_error(tmp_path: Path, option: list[str]) -> None:
    """oracle takes no model options: exit 1 naming the option, nothing runs."""
    done = hud(tmp_path, "oracle", *option)
    assert done.returncode == 1
    assert "only model agents take it, not 'oracle'" in done.stderr


@pytest.mark.parametrize("option", [["--request-timeout", "0"], ["--max-retries", "-1"],
                                    ["--api", "soap"]], ids=str)
def test_out_of_range_model_options_are_usage_errors(tmp_path: Path, option: list[str]) -> None:
    """A zero timeout, negative retries or an unknown API: click's usage error, exit 2."""
    done = hud(tmp_path, "oracle", *option)
    assert done.returncode == 2 and "Invalid value" in done.stderr

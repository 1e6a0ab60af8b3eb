"""create_agent: model ids pick the harness; a missing key names its variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hud.agents import ModelAgent, create_agent
from hud.errors import ConfigError

KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here sees a real key from the developer's shell."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


@pytest.mark.parametrize(("model", "variable"), [
    ("claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
    ("gpt-5", "OPENAI_API_KEY"),
    ("o4-mini", "OPENAI_API_KEY"),
    ("gemini-2.5-pro", "GEMINI_API_KEY or GOOGLE_API_KEY"),
    ("openai-compatible:llama", "OPENAI_API_KEY"),
])
def test_missing_key_is_a_config_error_naming_the_variable(model: str, variable: str) -> None:
    """Without a key, create_agent fails before anything starts, naming the variable."""
    with pytest.raises(ConfigError, match=f"^{variable} is not set: export"):
        create_agent(model)


@pytest.mark.parametrize(("model", "harness"), [
    ("claude-sonnet-4-5", "ClaudeAgent"),
    ("claude", "ClaudeAgent"),
    ("gpt-5", "OpenAIResponsesAgent"),
    ("o3", "OpenAIResponsesAgent"),
    ("o1-mini", "OpenAIResponsesAgent"),
    ("gemini-2.5-flash", "GeminiAgent"),
    ("openai-compatible:qwen3", "ChatCompletionsAgent"),
], ids=str)
def test_model_id_picks_the_harness(monkeypatch: pytest.MonkeyPatch, model: str, harness: str) -> None:
    """Each family of model ids maps to its provider's harness."""
    for key in KEYS:
        monkeypatch.setenv(key, "k")
    agent = create_agent(model)
    assert isinstance(agent, ModelAgent)
    assert type(agent).__name__ == harness


def test_bare_provider_name_stands_for_its_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """`hud eval tasks.py claude` uses Claude's default model."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert create_agent("claude").model.startswith("claude-")


def test_any_model_with_base_url_uses_chat_completions_without_a_key() -> None:
    """A base_url makes any model id an OpenAI-compatible agent; local servers need no key."""
    agent = create_agent("gpt-oss-20b", base_url="http://127.0.0.1:9/v1")
    assert type(agent).__name__ == "ChatCompletionsAgent"
    assert agent.model == "gpt-oss-20b"


def test_key_from_google_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gemini also takes $GOOGLE_API_KEY."""
    monkeypatch.setenv("GOOGLE_API_KEY", "g")
    assert create_agent("gemini-2.5-pro").api_key == "g"


def test_config_reaches_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword config (max_steps, system...) is passed to the harness."""
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    agent = create_agent("gpt-5", max_steps=7, system="be brief")
    assert (agent.max_steps, agent.system, agent.name) == (7, "be brief", "gpt-5")


def test_unknown_model_lists_the_agents() -> None:
    """A name no harness takes lists what exists."""
    with pytest.raises(ConfigError,
                       match="no agent 'llama-3'; available: oracle, nop, replay:JOB_ID, claude-"):
        create_agent("llama-3")


def test_importing_hud_agents_imports_no_provider_sdk() -> None:
    """The provider SDKs are loaded only when a provider agent is made."""
    code = ("import sys, hud.agents; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('anthropic', 'openai', 'google')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_an_openai_compatible_agent_is_named_as_such() -> None:
    """The job records `openai-compatible:MODEL`, not the bare model id, for an endpoint
    given by base_url or by the prefix."""
    url = "http://127.0.0.1:9/v1"
    assert create_agent("openai-compatible:m", base_url=url).name == "openai-compatible:m"
    assert create_agent("gpt-oss-20b", base_url=url).name == "openai-compatible:gpt-oss-20b"


def test_defaults_bound_a_hung_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without options a request may take 300 s and is retried twice (not the SDKs' 600 s x 3)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    agent = create_agent("claude-sonnet-4-5")
    assert (agent.timeout, agent.max_retries, agent.stream) == (300.0, 2, False)


@pytest.mark.parametrize(("model", "api", "harness"), [
    ("gpt-5", "chat", "ChatCompletionsAgent"),
    ("gpt-5", "responses", "OpenAIResponsesAgent"),
    ("my-model", "responses", "OpenAIResponsesAgent"),
    ("openai-compatible:qwen3", "responses", "OpenAIResponsesAgent"),
], ids=str)
def test_api_chooses_the_openai_wire_api(monkeypatch: pytest.MonkeyPatch, model: str, api: str,
                                         harness: str) -> None:
    """api="chat"/"responses" picks the harness whatever the model id or URL says."""
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    agent = create_agent(model, api=api, base_url="http://127.0.0.1:9/v1")
    assert type(agent).__name__ == harness
    assert agent.model == model.removeprefix("openai-compatible:")


def test_the_default_api_with_a_base_url_is_chat() -> None:
    """The documented default: a gpt id given a base_url speaks Chat Completions."""
    agent = create_agent("gpt-5", base_url="http://127.0.0.1:9/v1")
    assert type(agent).__name__ == "ChatCompletionsAgent"


@pytest.mark.parametrize(("model", "api", "message"), [
    ("gpt-5", "soap", "api must be one of responses, chat, got 'soap'"),
    ("claude-sonnet-4-5", "chat", "api='chat' chooses between OpenAI's wire APIs"),
    ("oracle", "chat", "api: only model agents take it, not 'oracle'"),
], ids=str)
def test_a_wrong_api_is_a_config_error(model: str, api: str, message: str) -> None:
    """An unknown API, or one for a model not served over OpenAI's APIs, is named."""
    with pytest.raises(ConfigError, match=message):
        create_agent(model, api=api)


def test_api_key_env_reads_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key_env=NAME reads $NAME instead of the provider's variable; unset, it is named."""
    with pytest.raises(ConfigError, match=r"^PROXY_KEY is not set"):
        create_agent("claude-sonnet-4-5", api_key_env="PROXY_KEY")
    monkeypatch.setenv("PROXY_KEY", "p")
    assert create_agent("claude-sonnet-4-5", api_key_env="PROXY_KEY").api_key == "p"


@pytest.mark.parametrize(("option", "message"), [
    ({"timeout": 0}, "request timeout must be a positive, finite number of seconds, got 0"),
    ({"timeout": float("nan")}, "request timeout must be a positive, finite number of seconds"),
    ({"max_retries": -1}, "max_retries must be 0 or more, got -1"),
], ids=str)
def test_bad_timeouts_are_config_errors(option: dict[str, float], message: str) -> None:
    """A zero timeout or negative retries is refused when the agent is made."""
    with pytest.raises(ConfigError, match=message):
        create_agent("openai-compatible:m", base_url="http://127.0.0.1:9/v1", **option)

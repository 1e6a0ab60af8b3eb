"""hud's wall-clock limits on API requests, against fake provider APIs that stall politely.

Every provider's harness, plain or streamed as the case needs, under the official SDK:
a body trickled out or a stream of keep-alive pings ends as `RequestTimeout` on its own
(a guard timeout around the rollout shows it does), content keeps a slow stream going,
and every request sent, hud's retries and the SDK's, counts against one `max_retries`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agents.providers import WIRES, Anthropic, FakeAPI, Wire, serve
from tests.agents.streams import Fault
from tests.agents.test_providers import AddTool, rollout

pytestmark = pytest.mark.timeout(60)

#: how long a test lets a rollout run: far past the 0.5 s limits, far short of "forever"
GUARD = 20


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


@pytest.fixture(params=WIRES, ids=lambda w: w.name)
def plain(request: pytest.FixtureRequest) -> Wire:
    """Each provider's wire, its agents sending plain requests."""
    return request.param


@pytest.fixture(params=WIRES, ids=lambda w: f"{w.name}-stream")
def streamed(request: pytest.FixtureRequest) -> Wire:
    """Each provider's wire, its agents streaming."""
    return request.param.streamed()


@pytest.fixture(params=[w for wire in WIRES for w in (wire, wire.streamed())],
                ids=lambda w: w.name)
def wire(request: pytest.FixtureRequest) -> Wire:
    """Each provider's wire, plain then streamed."""
    return request.param


def long_answer(wire: Wire) -> dict[str, Any]:
    """An answer of several events in every wire (Gemini's has one chunk per piece)."""
    return wire.thinking(wire.answer("5"), "Two plus three.")


def hung(wire: Wire) -> Fault:
    """A provider that answers and then holds the request without finishing it:
    streamed, keep-alive pings only after the first event; plain, a trickled body."""
    return Fault(pings_after=1) if wire.stream else Fault(trickle=0.3)


async def guarded(agent: Any) -> Any:
    """The rollout, which must end well within GUARD seconds."""
    async with asyncio.timeout(GUARD):
        return await rollout(agent)


async def test_keep_alive_pings_alone_end_the_request(api: FakeAPI, streamed: Wire) -> None:
    """A stream that only pings after its start fails on its own, as agent_error with
    RequestTimeout: pings do not count as content."""
    api.script = [(200, long_answer(streamed))]
    api.faults = {1: Fault(pings_after=1)}
    run = await guarded(streamed.agent(api, tools=[], timeout=0.5, max_retries=0))
    assert run.status == "agent_error"
    assert run.error.startswith("RequestTimeout: the request to http://127.0.0.1:"), run.error
    assert "the stream sent no content for 0.5 s" in run.error, run.error


async def test_a_trickled_body_ends_the_request(api: FakeAPI, plain: Wire) -> None:
    """A plain response whose body arrives a byte at a time, each within the timeout,
    is cut when the whole of it takes longer than the timeout."""
    api.script = [(200, plain.answer("5"))]
    api.faults = {1: Fault(trickle=0.3)}
    run = await guarded(plain.agent(api, tools=[], timeout=0.5, max_retries=0))
    assert run.status == "agent_error"
    assert run.error.startswith("RequestTimeout: the request to http://127.0.0.1:"), run.error
    assert "no whole response within the request timeout, 0.5 s" in run.error, run.error


async def test_content_keeps_a_slow_stream_going(api: FakeAPI, streamed: Wire) -> None:
    """A stream whose events come 0.4 s apart, longer in all than the 1.5 s timeout,
    completes: the timeout is the wait between pieces of content."""
    api.script = [(200, long_answer(streamed))]
    api.faults = {1: Fault(drip=0.4)}
    run = await guarded(streamed.agent(api, tools=[], timeout=1.5, max_retries=0))
    assert (run.status, run.answer) == ("completed", "5"), run.error


async def test_a_stream_past_the_whole_request_cap_ends(api: FakeAPI,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that keeps sending content past STREAM_CAP_FACTOR x timeout is cut."""
    monkeypatch.setattr("hud.agents.deadlines.STREAM_CAP_FACTOR", 2)
    wire = Anthropic("anthropic").streamed()
    api.script = [(200, long_answer(wire))]
    api.faults = {1: Fault(drip=0.2)}  # 13 events: 2.6 s, each well within the timeout
    run = await guarded(wire.agent(api, tools=[], timeout=0.5, max_retries=0))
    assert run.status == "agent_error"
    assert "the stream was still going 1 s after the request was sent" in run.error, run.error


async def test_a_timed_out_request_is_tried_again(api: FakeAPI, wire: Wire) -> None:
    """Two requests held past the timeout, then a good one: with max_retries=2 the
    rollout completes on the third request."""
    api.script = [(200, long_answer(wire))]
    api.faults = {1: hung(wire), 2: hung(wire)}
    run = await guarded(wire.agent(api, tools=[], timeout=0.5, max_retries=2))
    assert (run.status, run.answer, len(api.requests)) == ("completed", "5", 3), run.error


async def test_timeouts_use_up_max_retries_and_no_more(api: FakeAPI, wire: Wire) -> None:
    """A provider that always holds the request: 1 + max_retries requests, then
    RequestTimeout counting them."""
    api.script = [(200, long_answer(wire))]
    api.faults = {n: hung(wire) for n in range(1, 5)}
    run = await guarded(wire.agent(api, tools=[], timeout=0.5, max_retries=1))
    assert run.status == "agent_error"
    assert "2 requests sent (max_retries=1)" in run.error, run.error
    assert len(api.requests) == 2


async def test_a_streams_retries_and_the_sdks_share_one_budget(api: FakeAPI,
                                                               streamed: Wire) -> None:
    """A 500 (retried by the SDK) and then a stream cut midway use up max_retries=1:
    the cut stream is not sent again, and 2 requests were made in all."""
    api.script = [(500, streamed.error()), (200, long_answer(streamed))]
    api.cuts = {2: 1}
    run = await guarded(streamed.agent(api, tools=[], max_retries=1))
    assert run.status == "agent_error"
    assert run.error.startswith("StreamEnded: "), run.error
    assert len(api.requests) == 2


async def test_a_long_retry_after_waits_at_most_the_cap(api: FakeAPI,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 asking to wait an hour (which the Anthropic SDK would honour) is retried
    after MAX_RETRY_WAIT, and the rollout completes."""
    monkeypatch.setattr("hud.agents.deadlines.MAX_RETRY_WAIT", 0.2)
    wire = Anthropic("anthropic")
    api.script = [(429, wire.error()), (200, wire.tool_call("call_1", "add", {"a": 2, "b": 3})),
                  (200, wire.answer("5"))]
    api.faults = {1: Fault(headers={"retry-after": "3600"})}
    run = await guarded(wire.agent(api, tools=[AddTool().tool], max_retries=1))
    assert (run.status, run.reward, len(api.requests)) == ("completed", 1.0, 3), run.error

"""RobotCapability over loopback: contract first, stepping, error frames, slots, episodes."""

from __future__ import annotations

import asyncio

import gymnasium as gym
import numpy as np
import pytest

from hud.errors import InfraError
from hud.robot import RobotCapability, RobotServerError
from hud.robot.contract import Contract

from .conftest import Connect

ZERO = np.zeros(2, np.float32)


async def test_binding_publishes_the_contract(reacher: RobotCapability) -> None:
    """The binding is openpi/0 on loopback and carries the contract and slot count."""
    binding = reacher.binding
    assert binding is not None and binding.protocol == "openpi/0"
    assert binding.url.startswith("tcp://127.0.0.1:")
    assert Contract.model_validate(binding.params["contract"]) == reacher.contract
    assert binding.params["slots"] == 2


async def test_connect_sends_contract_then_first_observation(connect: Connect) -> None:
    """A client gets the contract, then the step-0 observation."""
    client = await connect()
    assert client.contract is not None and client.contract.robot_type == "gymnasium/Reacher-v5"
    assert client.last["type"] == "obs" and client.last["step"] == 0
    assert client.last["obs"]["observation.state"].shape == (10,)


async def test_steps_match_the_simulator_stepped_in_process(reacher: RobotCapability,
                                                            connect: Connect) -> None:
    """Observations and rewards over the wire equal stepping the same env directly."""
    episode = reacher.reserve(seed=5)
    client = await connect(episode=episode.id)
    local = gym.make("Reacher-v5")
    obs, _ = local.reset(seed=5)
    np.testing.assert_array_equal(client.last["obs"]["observation.state"], obs)
    for t in range(5):
        action = np.array([0.3, -0.2 * t], np.float32)
        frame = await client.step({"action": action})
        obs, reward, *_ = local.step(action)
        np.testing.assert_array_equal(frame["obs"]["observation.state"], obs)
        assert frame["reward"] == pytest.approx(reward)


async def test_a_malformed_action_gets_an_error_frame_and_is_not_stepped(
        reacher: RobotCapability, connect: Connect) -> None:
    """Wrong shape, wrong name and non-arrays are refused; the episode then continues intact."""
    episode = reacher.reserve(seed=9)
    client = await connect(episode=episode.id)
    bad = [{"action": np.zeros(3, np.float32)}, {"torque": ZERO}, {"action": "left"},
           {"action": np.array([np.inf, 0.0])}]
    for action in bad:
        with pytest.raises(RobotServerError, match="bad_action"):
            await client.step(action)
    frame = await client.step({"action": ZERO})
    local = gym.make("Reacher-v5")
    local.reset(seed=9)
    expected, *_ = local.step(ZERO)
    assert frame["step"] == 1
    np.testing.assert_array_equal(frame["obs"]["observation.state"], expected)
    await client.close()
    outcome = await episode.result(timeout=5)
    assert outcome.rejected == 4 and outcome.steps == 1


async def test_an_undecodable_frame_gets_an_error_frame(connect: Connect) -> None:
    """Garbage bytes and unknown message types are answered with error frames."""
    client = await connect()
    assert client._ws is not None
    client._ws.send_binary(b"\xc1")
    await client._flush()
    assert (await client.recv_raw())["code"] == "bad_frame"
    await client.send({"type": "dance"})
    assert (await client.recv_raw())["code"] == "bad_request"


async def test_observe_returns_the_current_observation_without_stepping(connect: Connect) -> None:
    """An observe request repeats the latest observation; the step count does not move."""
    client = await connect()
    stepped = await client.step({"action": np.full(2, 0.5, np.float32)})
    frame = await client.observe()
    assert frame["step"] == 1 and frame["steps"] == 0
    np.testing.assert_array_equal(frame["obs"]["observation.state"],
                                  stepped["obs"]["observation.state"])


async def test_a_chunk_runs_its_steps_in_one_round_trip(connect: Connect) -> None:
    """A [T, 2] action chunk advances T steps and sums their rewards."""
    client = await connect()
    frame = await client.step({"action": np.zeros((5, 2), np.float32)})
    assert frame["step"] == 5 and frame["steps"] == 5


async def test_a_chunk_stops_at_the_end_of_the_episode(reacher: RobotCapability,
                                                       connect: Connect) -> None:
    """Steps past max_steps in a chunk are not run, and later actions get episode_over."""
    episode = reacher.reserve(max_steps=3)
    client = await connect(episode=episode.id)
    frame = await client.step({"action": np.zeros((5, 2), np.float32)})
    assert frame["truncated"] and frame["step"] == 3 and frame["steps"] == 3
    with pytest.raises(RobotServerError, match="episode_over"):
        await client.step({"action": ZERO})
    assert (await episode.result()).status == "truncated"


async def test_a_disconnect_mid_episode_frees_the_slot(connect: Connect) -> None:
    """With both slots taken, dropping one client lets the next one in on a fresh episode."""
    first, second = await connect(), await connect()
    for _ in range(3):
        await first.step({"action": ZERO})
    first.writer.transport.abort()  # no close frame: the peer just vanishes
    third = await connect()
    assert third.hello["slot"] == first.hello["slot"] and third.last["step"] == 0
    assert second.hello["slot"] != third.hello["slot"]


async def test_the_outcome_of_a_dropped_episode_says_disconnected(reacher: RobotCapability,
                                                                  connect: Connect) -> None:
    """A reserved episode whose client vanished ends as disconnected, with its steps."""
    episode = reacher.reserve(seed=1)
    client = await connect(episode=episode.id)
    await client.step({"action": ZERO})
    client.writer.transport.abort()
    outcome = await episode.result(timeout=5)
    assert (outcome.status, outcome.steps) == ("disconnected", 1)


async def test_no_free_slot_is_an_error_frame_after_the_wait(reacher: RobotCapability,
                                                             connect: Connect) -> None:
    """A third client waits slot_timeout, then gets a 'busy' error naming the slot count."""
    reacher.slot_timeout = 0.2
    await connect()
    await connect()
    with pytest.raises(RobotServerError, match="busy: all 2 simulator slots"):
        await connect()


async def test_unknown_and_reused_tickets_are_refused(reacher: RobotCapability,
                                                      connect: Connect) -> None:
    """A made-up episode id, or one already run, is refused with bad_episode."""
    with pytest.raises(RobotServerError, match="bad_episode: no episode 'nope'"):
        await connect(episode="nope")
    episode = reacher.reserve()
    await (await connect(episode=episode.id)).close()
    await episode.result(timeout=5)
    with pytest.raises(RobotServerError, match="already run"):
        await connect(episode=episode.id)


async def test_success_ends_a_reserved_episode_and_is_recorded(reacher: RobotCapability,
                                                               connect: Connect) -> None:
    """A success test that fires terminates the episode and sets success_step."""
    episode = reacher.reserve(success=lambda obs, info: True)
    client = await connect(episode=episode.id)
    frame = await client.step({"action": ZERO})
    assert frame["terminated"] and frame["info"]["success"] is True
    outcome = await episode.result()
    assert (outcome.status, outcome.success, outcome.success_step) == ("terminated", True, 1)


async def test_an_episode_never_run_is_pending_at_once(reacher: RobotCapability) -> None:
    """Grading an episode the agent never connected to does not wait."""
    outcome = await asyncio.wait_for(reacher.reserve().result(timeout=30), 1)
    assert outcome.status == "pending" and outcome.steps == 0


async def test_a_running_episode_is_ended_after_the_result_timeout(reacher: RobotCapability,
                                                                   connect: Connect) -> None:
    """An agent that answers but keeps its connection open is cut off at grading."""
    episode = reacher.reserve()
    client = await connect(episode=episode.id)
    await client.step({"action": ZERO})
    outcome = await episode.result(timeout=0.1)
    assert outcome.status == "disconnected" and "still running" in (outcome.error or "")
    with pytest.raises(InfraError, match="closed the connection"):
        await client.step({"action": ZERO})


async def test_anonymous_connections_can_reset_and_update_last_outcome(
        reacher: RobotCapability, connect: Connect) -> None:
    """Without a ticket a client may reset; the abandoned episode becomes last_outcome."""
    client = await connect()
    await client.step({"action": ZERO})
    frame = await client.reset(seed=3)
    assert frame["step"] == 0
    assert reacher.last_outcome is not None and reacher.last_outcome.steps == 1


async def test_a_disconnect_after_reset_ends_the_new_episode(reacher: RobotCapability,
                                                             connect: Connect) -> None:
    """The episode a reset started is the one a later disconnect ends."""
    client = await connect()
    await client.reset(seed=4)
    await client.step({"action": ZERO})
    client.writer.transport.abort()
    third, fourth = await connect(), await connect()  # both slots free again
    assert {third.hello["slot"], fourth.hello["slot"]} == {0, 1}
    last = reacher.last_outcome
    assert last is not None and (last.status, last.steps, last.seed) == ("disconnected", 1, 4)


async def test_reserved_episodes_cannot_be_reset(reacher: RobotCapability, connect: Connect) -> None:
    """A template's episode is one episode: reset is refused."""
    client = await connect(episode=reacher.reserve().id)
    with pytest.raises(RobotServerError, match="cannot be reset"):
        await client.reset()


def test_one_bridge_object_cannot_fill_several_slots() -> None:
    """slots > 1 needs a factory; the error says so."""
    from hud.errors import ConfigError
    from hud.robot import GymBridge

    with pytest.raises(ConfigError, match="pass a factory"):
        RobotCapability(GymBridge("Reacher-v5"), slots=2)


def test_the_episode_book_forgets_finished_then_oldest_episodes() -> None:
    """Past its size the book drops finished episodes first, then the oldest pending ones."""
    from hud.robot import Episode, EpisodeBook

    book = EpisodeBook(keep=2)
    old, done = book.add(Episode()), book.add(Episode())
    done.finish("terminated")
    new = book.add(Episode())
    assert (book.get(old.id), book.get(done.id), book.get(new.id)) == (old, None, new)
    newest = book.add(Episode())
    assert book.get(old.id) is None and book.get(newest.id) is newest


async def test_a_server_that_goes_away_is_an_infra_error(reacher: RobotCapability,
                                                         connect: Connect) -> None:
    """Stopping the capability mid-episode surfaces as InfraError, never a reward."""
    client = await connect()
    stopping = asyncio.create_task(reacher.stop())
    with pytest.raises(InfraError, match=r"closed the connection|broke while sending"):
        for _ in range(3):
            await client.step({"action": ZERO})
    await stopping

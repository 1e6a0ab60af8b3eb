"""Bridges: a custom simulator through the SimBridge seam, and MuJoCo camera frames."""

from __future__ import annotations

import numpy as np
import pytest

from hud.errors import ConfigError
from hud.robot import Contract, Feature, GymBridge, RobotCapability, RobotServerError, SimBridge, StepResult

from .conftest import Connect

FRAME = 128


class PointMass(SimBridge):
    """A 1-D point that moves by its action; success at x >= 1."""

    def __init__(self) -> None:
        self.x = np.zeros(1)

    @property
    def contract(self) -> Contract:
        return Contract(robot_type="point", control_hz=10, features={
            "observation.state": Feature(role="observation", dtype="float64", shape=[1]),
            "action": Feature(role="action", dtype="float32", shape=[1]),
        })

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        self.x = np.zeros(1)
        return self.observe()

    def step(self, action: dict[str, np.ndarray]) -> StepResult:
        self.x = self.x + action["action"]
        return StepResult(obs=self.observe(), reward=float(self.x[0]))

    def observe(self) -> dict[str, np.ndarray]:
        return {"observation.state": self.x.copy()}

    def success(self, obs: dict[str, np.ndarray], info: dict) -> bool:
        return bool(obs["observation.state"][0] >= 1.0)


async def test_a_custom_simbridge_is_served(connect: Connect) -> None:
    """A hand-written bridge gets contract, stepping and success like a gym env."""
    cap = RobotCapability(PointMass, slots=2)
    await cap.start()
    try:
        episode = cap.reserve()
        client = await connect(cap, episode=episode.id)
        assert client.contract is not None and client.contract.robot_type == "point"
        frame = await client.step({"action": np.full((4, 1), 0.5, np.float32)})
        assert frame["terminated"] and frame["step"] == 2 and frame["reward"] == pytest.approx(1.5)
        assert (await episode.result()).success_step == 2
        await client.close()
    finally:
        await cap.stop()


class Exploding(PointMass):
    """A simulator that crashes on its second step."""

    def step(self, action: dict[str, np.ndarray]) -> StepResult:
        if self.x[0] > 0:
            raise FloatingPointError("simulation diverged")
        return super().step(action)


async def test_a_crashing_simulator_fails_the_episode_not_the_server(connect: Connect) -> None:
    """A bridge that raises ends its episode as failed, with an error frame; the slot is reused."""
    cap = RobotCapability(Exploding)
    await cap.start()
    try:
        episode = cap.reserve()
        client = await connect(cap, episode=episode.id)
        await client.step({"action": np.full(1, 0.1, np.float32)})
        with pytest.raises(RobotServerError, match="sim_error: the simulator failed: "
                                                   "FloatingPointError: simulation diverged"):
            await client.step({"action": np.full(1, 0.1, np.float32)})
        await client.close()
        outcome = await episode.result(timeout=5)
        assert outcome.status == "failed" and "diverged" in (outcome.error or "")
        again = await connect(cap)
        assert again.last["step"] == 0
        await again.close()
    finally:
        await cap.stop()


def test_an_unknown_gym_id_is_a_config_error() -> None:
    """gymnasium's own error is translated and names the id."""
    with pytest.raises(ConfigError, match="cannot make 'NoSuchRobot-v0'"):
        GymBridge("NoSuchRobot-v0")


def _camera_bridge_or_skip() -> GymBridge:
    """A Reacher bridge with 128x128 frames, or skip with the reason rendering failed."""
    try:
        bridge = GymBridge("Reacher-v5", camera=FRAME)
        bridge.reset(seed=0)
    except Exception as exc:  # noqa: BLE001 - no EGL/OSMesa here: say exactly why
        pytest.skip(f"MuJoCo offscreen rendering is unavailable: {type(exc).__name__}: {exc}")
    return bridge


def test_camera_frames_are_a_contract_feature() -> None:
    """camera=128 adds observation.images.camera as uint8 [128, 128, 3]."""
    bridge = _camera_bridge_or_skip()
    feature = bridge.contract.features["observation.images.camera"]
    assert (feature.role, feature.dtype, feature.shape) == ("observation", "uint8", [FRAME, FRAME, 3])
    bridge.close()


async def test_camera_frames_arrive_over_the_wire(connect: Connect) -> None:
    """Each observation carries a real rendered frame that changes as the arm moves."""
    _camera_bridge_or_skip().close()
    cap = RobotCapability.gym("Reacher-v5", camera=FRAME)
    await cap.start()
    try:
        client = await connect(cap)
        first = client.last["obs"]["observation.images.camera"]
        assert first.dtype == np.uint8 and first.shape == (FRAME, FRAME, 3) and first.std() > 0
        frame = await client.step({"action": np.ones((5, 2), np.float32)})
        assert np.abs(frame["obs"]["observation.images.camera"].astype(int) - first).sum() > 0
        await client.close()
    finally:
        await cap.stop()

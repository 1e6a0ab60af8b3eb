"""The contract: built from gymnasium spaces, and the one gate every action passes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from hud.errors import ConfigError
from hud.robot import ActionError, Contract, Feature, contract_from_gym


@pytest.fixture(scope="module")
def reacher() -> Contract:
    env = gym.make("Reacher-v5")
    try:
        return contract_from_gym(env)
    finally:
        env.close()


def test_reacher_contract_describes_its_spaces(reacher: Contract) -> None:
    """Reacher-v5: a 10-d float64 state, a 2-d float32 action in [-1, 1], 50 Hz."""
    assert reacher.robot_type == "gymnasium/Reacher-v5"
    assert reacher.protocol == "openpi/0" and reacher.control_hz == 50.0
    state, action = reacher.features["observation.state"], reacher.features["action"]
    assert (state.role, state.dtype, state.shape, state.stats) == ("observation", "float64", [10], None)
    assert (action.role, action.dtype, action.shape) == ("action", "float32", [2])
    assert action.stats == {"min": [-1.0, -1.0], "max": [1.0, 1.0]}


def test_contract_round_trips_through_json(reacher: Contract) -> None:
    """The contract is plain JSON (it rides in the manifest's binding params)."""
    assert Contract.model_validate_json(reacher.model_dump_json()) == reacher


def test_dict_spaces_become_one_feature_per_key() -> None:
    """A Dict observation space is split into observation.<key> features."""
    env = gym.make("CartPole-v1")
    env.observation_space = spaces.Dict({"pos": spaces.Box(-1, 1, (3,)), "mode": spaces.Discrete(4)})
    contract = contract_from_gym(env)
    assert sorted(contract.observations()) == ["observation.mode", "observation.pos"]
    assert contract.features["observation.mode"].stats == {"min": [0.0], "max": [3.0]}
    assert contract.features["action"].dtype == "int64"


def test_unsupported_spaces_are_a_config_error() -> None:
    """A Text space has no array form: the error names the alternatives."""
    env = gym.make("CartPole-v1")
    env.observation_space = spaces.Text(5)
    with pytest.raises(ConfigError, match="write a SimBridge"):
        contract_from_gym(env)


def test_features_refuse_unknown_dtypes() -> None:
    """A feature dtype must be one the codec carries."""
    with pytest.raises(ValueError, match="not one of"):
        Feature(role="action", dtype="object", shape=[1])


def test_a_single_action_is_one_step(reacher: Contract) -> None:
    """A correctly shaped action validates to one step, cast to the contract's dtype."""
    steps = reacher.check_action({"action": np.array([0.5, -0.5])})
    assert len(steps) == 1 and steps[0]["action"].dtype == np.float32


def test_a_chunk_is_split_into_steps(reacher: Contract) -> None:
    """A [T, 2] array is T steps, in order."""
    chunk = np.arange(8, dtype=np.float32).reshape(4, 2) / 10
    steps = reacher.check_action({"action": chunk})
    assert [s["action"].tolist() for s in steps] == chunk.tolist()


@pytest.mark.parametrize("action, message", [
    ({"action": np.zeros(3, np.float32)}, "has shape \\[3\\]; expected \\[2\\]"),
    ({"action": np.zeros((2, 3), np.float32)}, "has shape \\[2, 3\\]"),
    ({"act": np.zeros(2)}, "missing \\['action'\\], unknown \\['act'\\]"),
    ({"action": "left"}, "must be an array"),
    ({"action": np.array([np.nan, 0.0])}, "NaN or infinite"),
    ({"action": np.zeros((0, 2), np.float32)}, "has 0 steps"),
    ([0.1, 0.2], "map of named arrays"),
])
def test_malformed_actions_are_refused(reacher: Contract, action: object, message: str) -> None:
    """Wrong shape, wrong names, non-arrays, non-finite values, empty chunks: ActionError."""
    with pytest.raises(ActionError, match=message):
        reacher.check_action(action)


def test_floats_for_an_integer_action_are_refused() -> None:
    """A float array does not silently truncate into a discrete action."""
    contract = contract_from_gym(gym.make("CartPole-v1"))
    with pytest.raises(ActionError, match="dtype float64; the contract needs int64"):
        contract.check_action({"action": np.array(1.0)})

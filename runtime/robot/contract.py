"""The robot contract: what a simulator observes and accepts, self-described on the wire.

A `Contract` travels in the binding's params (so a harness can read it from the
manifest before connecting) and again as the first WebSocket frame. Each `Feature` has
a role (observation or action), a dtype from the codec's allow-list, a shape, optional
per-dimension names and optional stats (min/max, as gymnasium bounds give them). Names
follow LeRobot's convention: `observation.state`, `observation.images.<camera>`,
`action`; a gymnasium Dict space becomes one feature per key.

`Contract.check_action` is the one gate an action passes before the simulator sees it:
exactly the action features, each an array of the declared shape (or a chunk: the same
with a leading time axis), of a dtype that casts to the declared one within its kind,
and finite. Anything else is an `ActionError` and the simulator is not touched.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hud.errors import ConfigError, ProtocolError
from hud.messages import BINDING_PROTOCOLS
from hud.robot.codec import DTYPES
from hud.wire import INVALID_PARAMS

PROTOCOL = BINDING_PROTOCOLS["robot"]
#: a chunk may hold at most this many actions unless the contract says otherwise
MAX_CHUNK = 64


class ActionError(ProtocolError):
    """An action that does not fit the contract (the episode is left untouched)."""

    def __init__(self, message: str) -> None:
        super().__init__(INVALID_PARAMS, message)


class Feature(BaseModel):
    """One named array the robot observes or accepts."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["observation", "action"]
    dtype: str
    shape: list[int]
    names: list[str] | None = None
    stats: dict[str, list[float]] | None = None

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"dtype {value!r} is not one of {', '.join(DTYPES)}")
        return value

    @field_validator("shape")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        if any(n < 0 for n in value):
            raise ValueError(f"shape {value} has a negative dimension")
        return value


class Contract(BaseModel):
    """Everything a policy needs to drive a robot, without reading its code."""

    model_config = ConfigDict(extra="forbid")

    protocol: str = PROTOCOL
    robot_type: str
    control_hz: float = Field(gt=0)
    features: dict[str, Feature]
    max_chunk: int = Field(default=MAX_CHUNK, ge=1)

    def observations(self) -> dict[str, Feature]:
        return {k: f for k, f in self.features.items() if f.role == "observation"}

    def actions(self) -> dict[str, Feature]:
        return {k: f for k, f in self.features.items() if f.role == "action"}

    def check_action(self, action: Any) -> list[dict[str, np.ndarray]]:
        """Validate one action or chunk; return the steps to run, in order.

        Raises:
            ActionError: missing or unknown names, wrong shape or dtype, non-finite
                values, an empty or too long chunk, or chunks of different lengths.
        """
        expected = self.actions()
        if not isinstance(action, dict):
            raise ActionError(
                f"an action is a map of named arrays {sorted(expected)}, got "
                f"{type(action).__name__}"
            )
        missing = sorted(set(expected) - set(action))
        unknown = sorted(map(str, set(action) - set(expected)))
        if missing or unknown:
            raise ActionError(f"action names: missing {missing}, unknown {unknown}; the "
                              f"contract's actions are {sorted(expected)}")
        arrays: dict[str, np.ndarray] = {}
        lengths: set[int | None] = set()
        for name, feature in expected.items():
            array, length = _check_one(name, feature, action[name], self.max_chunk)
            arrays[name] = array
            lengths.add(length)
        if len(lengths) > 1:
            raise ActionError(f"mixed single actions and chunks (lengths {sorted(map(str, lengths))}); "
                              f"send every action feature with the same leading time axis")
        length = lengths.pop() if lengths else None
        if length is None:
            return [arrays]
        return [{name: array[t] for name, array in arrays.items()} for t in range(length)]


def _check_one(name: str, feature: Feature, value: Any, max_chunk: int) -> tuple[np.ndarray, int | None]:
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, int, float)) and not isinstance(value, bool):
            value = np.asarray(value)
        else:
            raise ActionError(f"action {name!r} must be an array, got {type(value).__name__}")
    target = np.dtype(feature.dtype)
    if not np.can_cast(value.dtype, target, casting="same_kind"):
        raise ActionError(f"action {name!r} has dtype {value.dtype.name}; the contract needs "
                          f"{feature.dtype} (and accepts dtypes that cast to it within their kind)")
    shape = tuple(feature.shape)
    if value.shape == shape:
        length = None
    elif value.ndim == len(shape) + 1 and value.shape[1:] == shape:
        length = value.shape[0]
        if not 1 <= length <= max_chunk:
            raise ActionError(f"action chunk {name!r} has {length} steps; send 1..{max_chunk}")
    else:
        raise ActionError(f"action {name!r} has shape {list(value.shape)}; expected {list(shape)} "
                          f"or a chunk [T, {', '.join(map(str, shape))}]".replace("[T, ]", "[T]"))
    if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
        raise ActionError(f"action {name!r} holds NaN or infinite values: {value!r:.80}")
    return value.astype(target, copy=False), length


def _box_stats(space: Any) -> dict[str, list[float]] | None:
    low = np.asarray(space.low, dtype=np.float64).ravel()
    high = np.asarray(space.high, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        return None  # JSON has no infinities; unbounded dimensions carry no stats
    return {"min": low.tolist(), "max": high.tolist()}


def feature_from_space(space: Any, role: Literal["observation", "action"],
                       names: list[str] | None = None) -> Feature:
    """A feature for one gymnasium space (Box, Discrete, MultiDiscrete, MultiBinary).

    Raises:
        ConfigError: the space type has no array form here (Text, Graph, Sequence...).
    """
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return Feature(role=role, dtype=np.dtype(space.dtype).name, shape=list(space.shape),
                       names=names, stats=_box_stats(space))
    if isinstance(space, spaces.Discrete):
        low = int(space.start)
        return Feature(role=role, dtype="int64", shape=[], names=names,
                       stats={"min": [float(low)], "max": [float(low + space.n - 1)]})
    if isinstance(space, spaces.MultiDiscrete):
        high = (np.asarray(space.nvec) - 1).astype(np.float64).ravel().tolist()
        return Feature(role=role, dtype="int64", shape=list(space.shape), names=names,
                       stats={"min": [0.0] * len(high), "max": high})
    if isinstance(space, spaces.MultiBinary):
        return Feature(role=role, dtype="int8", shape=list(space.shape), names=names)
    raise ConfigError(
        f"gymnasium space {space!r} has no array form for the robot contract; use Box, "
        f"Discrete, MultiDiscrete, MultiBinary or a Dict of them, or write a SimBridge"
    )


def features_from_space(space: Any, role: Literal["observation", "action"], base: str,
                        single: str | None = None,
                        names: dict[str, list[str]] | None = None) -> dict[str, Feature]:
    """Features named `base.key` per key of a Dict space, else one named `single` or `base`.

    Raises:
        ConfigError: see `feature_from_space`.
    """
    from gymnasium import spaces

    names = names or {}
    if isinstance(space, spaces.Dict):
        return {f"{base}.{key}": feature_from_space(sub, role, names.get(f"{base}.{key}"))
                for key, sub in space.spaces.items()}
    name = single or base
    return {name: feature_from_space(space, role, names.get(name))}


def contract_from_gym(env: Any, *, robot_type: str | None = None,
                      names: dict[str, list[str]] | None = None,
                      extra: dict[str, Feature] | None = None) -> Contract:
    """Build the contract of a gymnasium env from its spaces.

    Box observations become `observation.state`, Dict observations `observation.<key>`,
    the action space `action` (or `action.<key>`). The control rate is `1 / env.dt`
    (MuJoCo envs), else `metadata["render_fps"]`, else 1 Hz.

    Raises:
        ConfigError: a space has no array form.
    """
    unwrapped = getattr(env, "unwrapped", env)
    spec = getattr(env, "spec", None)
    kind = robot_type or (f"gymnasium/{spec.id}" if spec is not None else type(unwrapped).__name__)
    dt = getattr(unwrapped, "dt", None)
    fps = (getattr(env, "metadata", None) or {}).get("render_fps")
    hz = 1.0 / dt if dt else float(fps or 1.0)
    features = features_from_space(env.observation_space, "observation", "observation",
                                   "observation.state", names)
    features.update(extra or {})
    features.update(features_from_space(env.action_space, "action", "action", names=names))
    return Contract(robot_type=kind, control_hz=round(hz, 6) if math.isfinite(hz) else 1.0,
                    features=features)

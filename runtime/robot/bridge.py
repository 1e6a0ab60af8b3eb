"""Bridges: the seam between the robot capability and a simulator.

`SimBridge` is the whole interface a simulator needs: a contract, `reset(seed)`,
`step(action)` and `observe()`. `GymBridge` adapts any gymnasium environment, given
as an id (`"Reacher-v5"`), an env object, or a factory; with `camera=128` it adds a
128×128 RGB frame (`observation.images.camera`) from MuJoCo's offscreen renderer.

Headless rendering: gymnasium picks MuJoCo's GL backend from `MUJOCO_GL` when the
first renderer is made. With no display and no choice made, GymBridge sets `egl` (GPU
or Mesa's software EGL); `osmesa` works too where libOSMesa is installed. Physics alone
needs no GL at all, so frames are opt-in. Beware that `import mujoco` itself loads the
backend `MUJOCO_GL` names: a value whose library is missing breaks even physics
(`MUJOCO_GL=disable` guarantees GL is never touched).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hud.errors import ConfigError
from hud.robot.contract import Contract, Feature, contract_from_gym

CAMERA_FEATURE = "observation.images.camera"
Observation = dict[str, np.ndarray]
SuccessFn = Callable[[Observation, dict[str, Any]], bool]


@dataclass
class StepResult:
    """What one simulator step produced."""

    obs: Observation
    reward: float | None = None
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class SimBridge(abc.ABC):
    """A simulator the robot capability can drive: subclass it for a custom one."""

    @property
    @abc.abstractmethod
    def contract(self) -> Contract:
        """The features this simulator observes and accepts."""

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Start a new episode and return its first observation."""

    @abc.abstractmethod
    def step(self, action: dict[str, np.ndarray]) -> StepResult:
        """Apply one validated action (arrays of the contract's dtypes and shapes)."""

    @abc.abstractmethod
    def observe(self) -> Observation:
        """The current observation, without stepping."""

    def success(self, obs: Observation, info: dict[str, Any]) -> bool | None:
        """Whether the task is achieved at this step; None when the bridge cannot tell."""
        return None

    def close(self) -> None:
        """Release the simulator (renderers, processes)."""


def _ensure_headless_gl() -> None:
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def to_jsonable(value: Any) -> Any:
    """`value` with numpy values made plain (big arrays summarised) so JSON can carry it."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"<array {list(value.shape)} {value.dtype}>"
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class GymBridge(SimBridge):
    """A gymnasium environment as a robot simulator.

    Args:
        env: an env id for `gymnasium.make`, an env object, or a zero-argument factory.
        camera: frame size in pixels (square) to add `observation.images.camera`, or None.
        make_kwargs: extra keyword arguments for `gymnasium.make` (env ids only).
        robot_type: the contract's robot type; default `gymnasium/<id>`.
        names: per-dimension names by feature (e.g. {"observation.state": [...]}).
        success: `success(obs, info) -> bool` for this simulator's task, if it has one.

    Raises:
        ConfigError: the env id is unknown, a space has no array form, or camera frames
            were asked for and offscreen rendering does not work here.
    """

    def __init__(self, env: str | Any | Callable[[], Any], *, camera: int | None = None,
                 make_kwargs: dict[str, Any] | None = None, robot_type: str | None = None,
                 names: dict[str, list[str]] | None = None,
                 success: SuccessFn | None = None) -> None:
        self.camera = camera
        self._success = success
        if camera is not None:
            _ensure_headless_gl()
        self.env = self._make(env, camera, dict(make_kwargs or {}))
        extra = {}
        if camera is not None:
            extra[CAMERA_FEATURE] = Feature(role="observation", dtype="uint8",
                                            shape=[camera, camera, 3],
                                            stats={"min": [0.0], "max": [255.0]})
        self._contract = contract_from_gym(self.env, robot_type=robot_type, names=names,
                                           extra=extra)
        import gymnasium

        self._dict_obs = isinstance(self.env.observation_space, gymnasium.spaces.Dict)
        self._last: Observation = {}

    @staticmethod
    def _make(env: Any, camera: int | None, kwargs: dict[str, Any]) -> Any:
        import gymnasium

        if isinstance(env, str):
            if camera is not None:
                kwargs.update(render_mode="rgb_array", width=camera, height=camera)
            try:
                return gymnasium.make(env, **kwargs)
            except gymnasium.error.Error as exc:
                raise ConfigError(f"gymnasium cannot make {env!r}: {exc}") from exc
            except Exception as exc:  # MuJoCo loads the GL backend named by MUJOCO_GL eagerly
                backend = os.environ.get("MUJOCO_GL")
                hint = (f"; MUJOCO_GL={backend!r} names a GL backend that may not load here: "
                        f"unset it for physics only, or install its library (libegl1 for egl, "
                        f"libosmesa6 for osmesa)" if backend else "")
                raise ConfigError(f"gymnasium.make({env!r}) failed: "
                                  f"{type(exc).__name__}: {exc}{hint}") from exc
        if callable(env) and not hasattr(env, "step"):
            env = env()
        if not hasattr(env, "step") or not hasattr(env, "action_space"):
            raise ConfigError(f"GymBridge needs an env id, a gymnasium env or a factory; "
                              f"got {type(env).__name__}")
        if camera is not None and getattr(env, "render_mode", None) != "rgb_array":
            raise ConfigError(f"camera frames need an env made with render_mode='rgb_array' "
                              f"(this one has {getattr(env, 'render_mode', None)!r})")
        return env

    @property
    def contract(self) -> Contract:
        return self._contract

    def _frame(self) -> np.ndarray:
        try:
            frame = self.env.render()
        except Exception as exc:
            raise ConfigError(
                f"camera frames need MuJoCo offscreen rendering, which failed with "
                f"MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}: {type(exc).__name__}: {exc}. "
                f"Install libegl1 (EGL) or libosmesa6 and set MUJOCO_GL=osmesa, or drop camera="
            ) from exc
        return np.asarray(frame, dtype=np.uint8)

    def _observation(self, raw: Any) -> Observation:
        if self._dict_obs:
            obs = {f"observation.{k}": np.asarray(v) for k, v in raw.items()}
        else:
            obs = {"observation.state": np.asarray(raw)}
        if self.camera is not None:
            obs[CAMERA_FEATURE] = self._frame()
        self._last = obs
        return obs

    def reset(self, seed: int | None = None) -> Observation:
        raw, _ = self.env.reset(seed=seed)
        return self._observation(raw)

    def step(self, action: dict[str, np.ndarray]) -> StepResult:
        if len(action) == 1 and "action" in action:
            native: Any = action["action"]
        else:
            native = {name.split(".", 1)[1]: value for name, value in action.items()}
        raw, reward, terminated, truncated, info = self.env.step(native)
        return StepResult(obs=self._observation(raw), reward=float(reward),
                          terminated=bool(terminated), truncated=bool(truncated),
                          info=to_jsonable(info))

    def observe(self) -> Observation:
        return dict(self._last)

    def success(self, obs: Observation, info: dict[str, Any]) -> bool | None:
        if self._success is not None:
            return bool(self._success(obs, info))
        if "is_success" in info:  # the gymnasium-robotics convention
            return bool(info["is_success"])
        if "success" in info:
            return bool(info["success"])
        return None

    def close(self) -> None:
        self.env.close()

"""`RobotCapability`: a simulator served over WebSocket (binding protocol `openpi/0`).

The environment is the server, on 127.0.0.1 inside the container; the agent is the
client, reached through the runtime's tunnel. Every message is one binary msgpack
frame (hud.robot.codec). The conversation:

    server → {"type": "contract", "contract": {...}, "episode": ID, "slot": i, "max_steps": n}
    server → {"type": "obs", "obs": {name: array}, "reward": None, "terminated": false,
              "truncated": false, "info": {}, "step": 0}
    client → {"type": "action", "action": {"action": array}}      one step, or a chunk:
             the same arrays with a leading time axis, run until the episode ends
    server → {"type": "obs", ..., "reward": sum over the steps run, "steps": k}
    server → {"type": "error", "code": "bad_action", "message": ...}   nothing was stepped
    client → {"type": "observe"}                 the current observation, nothing stepped
    client → {"type": "reset", "seed": 7}        anonymous episodes only: start another

Slots: the capability owns `slots` independent simulators; each connection holds one
for its lifetime (waiting up to `slot_timeout` for a free one) and a disconnect frees
it, whatever state the episode was in. Simulators run on the event loop: a MuJoCo step
is tens of microseconds, far below the cost of a thread hop.

Which episode a connection runs comes from its URL (`/?episode=ID`, the ticket a
template reserved, see hud.robot.episodes); without one it gets an anonymous episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed

from hud.capability import Capability
from hud.errors import ConfigError
from hud.messages import Binding
from hud.robot.bridge import GymBridge, SimBridge, SuccessFn, to_jsonable
from hud.robot.codec import CodecError, decode, encode
from hud.robot.contract import PROTOCOL, ActionError, Contract
from hud.robot.episodes import Episode, EpisodeBook, Outcome

if TYPE_CHECKING:  # the server module loads when the capability starts
    from websockets.asyncio.server import Server, ServerConnection

log = logging.getLogger("hud.robot")

#: largest client message accepted (actions are small; this bounds a hostile peer)
MAX_ACTION_BYTES = 16 * 1024 * 1024
SLOT_TIMEOUT = 30.0
#: how long a closing connection waits for the peer's close frame (stop() and grading)
CLOSE_TIMEOUT = 2.0


@dataclass
class _Connection:
    """One client: its socket, its slot's simulator and the episode it is running."""

    ws: ServerConnection
    slot: int
    bridge: SimBridge
    episode: Episode


def _error(code: str, message: str, **extra: Any) -> bytes:
    return encode({"type": "error", "code": code, "message": message, **extra})


class RobotCapability(Capability):
    """A simulated robot: N slots of a simulator behind one WebSocket server.

    Args:
        sim: a `SimBridge`, or a zero-argument factory of one (called once per slot,
            when the capability starts, so importing the env module stays cheap).
        name: the binding name.
        slots: independent simulators, one per concurrent client (needs a factory if > 1).
        max_steps: default step limit of an episode (None: the simulator's own).
        slot_timeout: how long a connection waits for a free slot before an error frame.

    Raises:
        ConfigError: several slots asked of a single simulator object, or slots < 1.
    """

    protocol = PROTOCOL

    def __init__(self, sim: SimBridge | Callable[[], SimBridge], *, name: str = "robot",
                 slots: int = 1, max_steps: int | None = None,
                 slot_timeout: float = SLOT_TIMEOUT) -> None:
        if slots < 1:
            raise ConfigError(f"a robot capability needs at least one slot, got slots={slots}")
        if isinstance(sim, SimBridge) and slots > 1:
            raise ConfigError(f"slots={slots} needs {slots} independent simulators: pass a "
                              f"factory (e.g. lambda: GymBridge('Reacher-v5')), not one bridge")
        self.name = name
        self.slots = slots
        self.max_steps = max_steps
        self.slot_timeout = slot_timeout
        self._sim = sim
        self._bridges: list[SimBridge] = []
        self._free: asyncio.Queue[int] | None = None
        self._server: Server | None = None
        self._contract: Contract | None = None
        #: the binding published by the last start(), None while stopped
        self.binding: Binding | None = None
        self.book = EpisodeBook()
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def gym(cls, env: str | Any | Callable[[], Any], *, name: str = "robot", slots: int = 1,
            camera: int | None = None, max_steps: int | None = None,
            success: SuccessFn | None = None, **make_kwargs: Any) -> RobotCapability:
        """Serve a gymnasium env (an id, an env object, or a factory of envs).

        Raises:
            ConfigError: see `RobotCapability` (an env object allows one slot only).
        """
        def make() -> SimBridge:
            return GymBridge(env, camera=camera, make_kwargs=make_kwargs, success=success)

        if isinstance(env, str) or callable(env):
            return cls(make, name=name, slots=slots, max_steps=max_steps)
        if slots > 1:
            raise ConfigError(f"slots={slots} needs an env id or a factory, not one env object")
        return cls(make(), name=name, slots=1, max_steps=max_steps)

    @property
    def contract(self) -> Contract:
        """The simulator's contract (available once started).

        Raises:
            ConfigError: the capability has not started yet.
        """
        if self._contract is None:
            raise ConfigError(f"robot capability {self.name!r} has not started yet")
        return self._contract

    @property
    def last_outcome(self) -> Outcome | None:
        """The outcome of the most recently finished episode, reserved or anonymous."""
        last = self.book.last
        return last.outcome.model_copy(deep=True) if last is not None else None

    def reserve(self, *, seed: int | None = None, max_steps: int | None = None,
                success: SuccessFn | None = None, end_on_success: bool = True) -> Episode:
        """Reserve an episode for the agent of the current task (see hud.robot.episodes).

        `success(obs, info) -> bool` overrides the simulator's; when `end_on_success`,
        the episode terminates at the first successful step.
        """
        return self.book.add(Episode(seed=seed, max_steps=max_steps or self.max_steps,
                                     success=success, end_on_success=end_on_success,
                                     binding=self.name))

    async def episode(self, ref: Episode | str, timeout: float = 10.0) -> Outcome:
        """The outcome of a reserved episode (by object or id); see `Episode.result`.

        Raises:
            ConfigError: no episode has that id.
        """
        episode = ref if isinstance(ref, Episode) else self.book.get(ref)
        if episode is None:
            raise ConfigError(f"no robot episode {ref!r}; reserve one with {self.name}.reserve()")
        return await episode.result(timeout)

    async def start(self) -> Binding:
        import websockets.asyncio.server as ws_server

        if not self._bridges:
            sim = self._sim
            self._bridges = [sim if isinstance(sim, SimBridge) else sim()
                             for _ in range(self.slots)]
        self._contract = self._bridges[0].contract
        self._free = asyncio.Queue()
        for slot in range(self.slots):
            self._free.put_nowait(slot)
        # no keepalive pings: a policy may think for minutes between frames, and a dead
        # peer shows up as EOF through the tunnel anyway
        self._server = await ws_server.serve(
            self._handle, "127.0.0.1", 0, compression=None, max_size=MAX_ACTION_BYTES,
            ping_interval=None, close_timeout=CLOSE_TIMEOUT, server_header=None)
        port = self._server.sockets[0].getsockname()[1]
        self.binding = Binding(name=self.name, protocol=self.protocol,
                               url=f"tcp://127.0.0.1:{port}",
                               params={"contract": self._contract.model_dump(mode="json"),
                                       "slots": self.slots, "path": "/"})
        return self.binding

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 10)
            self._server = None
        self.binding = None
        if not isinstance(self._sim, SimBridge):  # a bridge object passed in stays its owner's
            for bridge in self._bridges:
                with contextlib.suppress(Exception):
                    bridge.close()
            self._bridges = []

    async def _drop(self, ws: ServerConnection, code: int = 1000, reason: str = "episode over") -> None:
        """End a connection without waiting for its peer to answer the close frame."""
        task = asyncio.create_task(ws.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def healthy(self) -> bool:
        return self._server is not None and self._server.server.is_serving()

    def _claim(self, path: str) -> Episode:
        """The episode a connection asked for (`?episode=ID`), or a new anonymous one.

        Raises:
            ConfigError: the ticket is unknown or already used.
        """
        wanted = parse_qs(urlsplit(path).query).get("episode", [None])[0]
        if wanted is None:
            return self.book.add(Episode(max_steps=self.max_steps, reserved=False,
                                         binding=self.name))
        episode = self.book.get(wanted)
        if episode is None:
            raise ConfigError(f"no episode {wanted!r} is reserved here; use the ticket from "
                              f"this task's start frame")
        if episode.outcome.status != "pending":
            raise ConfigError(f"episode {wanted!r} was already run ({episode.outcome.status})")
        return episode

    async def _handle(self, ws: ServerConnection) -> None:
        free = self._free  # a restart makes a new queue: slots go back where they came from
        assert free is not None
        request = ws.request
        assert request is not None  # a handler runs after the opening handshake
        try:
            episode = self._claim(request.path)
        except ConfigError as exc:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_error("bad_episode", str(exc)))
                await ws.close(1008, "bad episode")
            return
        try:
            slot = await asyncio.wait_for(free.get(), self.slot_timeout)
        except TimeoutError:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_error("busy", f"all {self.slots} simulator slots of {self.name!r} "
                                             f"stayed busy for {self.slot_timeout:g}s"))
                await ws.close(1013, "slots busy")
            return
        conn = _Connection(ws, slot, self._bridges[slot], episode)
        try:
            await self._serve(conn)
        except ConnectionClosed:
            pass  # the client went away mid-episode: it ends as "disconnected" below
        except Exception as exc:  # a simulator bug must not take the daemon down
            log.exception("robot slot %d failed", slot)
            conn.episode.finish("failed", f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                await ws.send(_error("sim_error", f"the simulator failed: {type(exc).__name__}: {exc}"))
                await self._drop(ws, 1011, "simulator failed")
        finally:
            conn.episode.finish("disconnected")
            self.book.finished(conn.episode)
            free.put_nowait(slot)

    async def _serve(self, conn: _Connection) -> None:
        ws = conn.ws
        await self._begin(conn, contract=True)
        async for message in ws:
            try:
                frame = decode(message)
                if not isinstance(frame, dict):
                    raise CodecError(f"a message is a map with a 'type', got {type(frame).__name__}")
            except CodecError as exc:
                await ws.send(_error("bad_frame", str(exc)))
                continue
            kind = frame.get("type")
            if kind == "action":
                await self._act(ws, conn.bridge, conn.episode, frame.get("action"))
            elif kind == "observe":
                await ws.send(encode({"type": "obs", "obs": conn.bridge.observe(), "reward": None,
                                      "terminated": False, "truncated": False, "info": {},
                                      "step": conn.episode.outcome.steps, "steps": 0}))
            elif kind == "reset" and not conn.episode.reserved:
                conn.episode.finish("truncated")
                self.book.finished(conn.episode)
                seed = frame.get("seed")
                conn.episode = self.book.add(Episode(
                    seed=seed if isinstance(seed, int) else None, max_steps=self.max_steps,
                    reserved=False, binding=self.name))
                await self._begin(conn, contract=False)
            elif kind == "reset":
                await ws.send(_error("bad_request", "a reserved episode cannot be reset; it "
                                                    "ends when terminated or truncated"))
            else:
                await ws.send(_error("bad_request", f"unknown message type {kind!r}; send "
                                                    f"'action', 'observe' or 'reset'"))

    async def _begin(self, conn: _Connection, contract: bool) -> None:
        episode, ws = conn.episode, conn.ws
        obs = conn.bridge.reset(episode.seed)
        episode.begin(conn.slot, lambda: self._drop(ws))
        if contract:
            await ws.send(encode({"type": "contract", "contract": self.contract.model_dump(mode="json"),
                                  "episode": episode.id, "slot": conn.slot,
                                  "max_steps": episode.max_steps}))
        await ws.send(encode({"type": "obs", "obs": obs, "reward": None, "terminated": False,
                              "truncated": False, "info": {}, "step": 0,
                              "episode": episode.id}))

    async def _act(self, ws: ServerConnection, bridge: SimBridge, episode: Episode, action: Any) -> None:
        outcome = episode.outcome
        if outcome.done:
            await ws.send(_error("episode_over", f"episode {episode.id} is over ({outcome.status}); "
                                 f"no more actions are stepped"))
            return
        try:
            steps = self.contract.check_action(action)
        except ActionError as exc:
            outcome.rejected += 1
            await ws.send(_error("bad_action", str(exc), step=outcome.steps))
            return
        reward: float | None = None
        result = None
        executed = 0
        for step in steps:
            result = bridge.step(step)
            outcome.steps += 1
            executed += 1
            if result.reward is not None:
                reward = (reward or 0.0) + result.reward
                outcome.total_reward += result.reward
            success = (episode.success_fn(result.obs, result.info) if episode.success_fn
                       else bridge.success(result.obs, result.info))
            if success is not None:
                result.info["success"] = bool(success)
                if success and outcome.success_step is None:
                    outcome.success, outcome.success_step = True, outcome.steps
                    result.terminated = result.terminated or episode.end_on_success
                elif outcome.success is None:
                    outcome.success = False
            if episode.max_steps is not None and outcome.steps >= episode.max_steps:
                result.truncated = True
            if result.terminated or result.truncated:
                break
        assert result is not None
        # plain data only: grading code may put it in a JSON reward, and the wire carries it
        outcome.info = info = to_jsonable(result.info)
        if result.terminated or result.truncated:
            episode.finish("terminated" if result.terminated else "truncated")
            self.book.finished(episode)
        await ws.send(encode({"type": "obs", "obs": result.obs, "reward": reward,
                              "terminated": result.terminated, "truncated": result.truncated,
                              "info": info, "step": outcome.steps,
                              "steps": executed}))

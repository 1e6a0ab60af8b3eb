"""A seeded fuzzer over the control protocol against real `hud serve` daemons.

Three transports: TCP without a token, TCP with a token (--token-file), and the stdio
bridge `hud connect` on the unix socket. Each connection gets bursts of frames derived
from valid ones — random bytes, truncation, invalid UTF-8, lone surrogates, deep
nesting, huge numbers, wrong types, unknown methods, oversize frames, many frames in one
write, frames split across writes, tasks.* with junk params — each burst followed by a
sentinel request. A model of the protocol (DESIGN §4) says which frames get a reply and
with which id; the daemon must send exactly those replies, in order, close a connection
only where the protocol says so (after bye, a first-frame tunnel.open, or an auth
failure — each answered first), stay alive, serve a normal start/grade at the end, and
come back near its starting RSS.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hud.messages import Request
from tests.conftest import ENVS
from tests.tcpkit import free_port, rss_kib, token_file

SEED = 20261130
BURSTS = 400  # per transport; ~4 frames each
MAX_FRAME = 256 * 1024
AUTH_LIMIT = 64 * 1024
TOKEN = "fuzz-token-0b7e"
# templates the fuzzer may start: every way of failing, none that waits on purpose
TEMPLATES = ["count_letter", "add", "raises_in_setup", "key_error_in_setup", "raises_in_grading",
             "no_reward", "text_reward", "bad_prompt", "chat_prompt", "cleanup_tracked",
             "exits_in_setup", "interrupts_in_setup", "escapes_in_setup",
             "generator_exit_in_setup", "cancels_itself_in_setup", "exits_while_grading",
             "interrupts_while_grading", "exits_in_cleanup", "exits_in_solution",
             "unencodable_reward", "unencodable_prompt", "does_not_exist"]
METHODS = ["hello", "tasks.list", "tasks.start", "tasks.grade", "tasks.cancel", "tasks.solve",
           "tunnel.open", "tasks.explode", "", "HELLO"]
JUNK: list[Any] = [None, True, -1, 0, 2**70, 1.5, -0.0, "", "x" * 300, "\ud800", [], [1, [2]],
                   {}, {"a": {"b": None}}]


class Frames:
    """Seeded generation of frames and bursts."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_id = 0

    def _id(self) -> Any:
        self.next_id += 1
        return self.rng.choice([self.next_id, self.next_id, f"s{self.next_id}",
                                float(self.next_id), None])

    def params(self, method: str) -> Any:
        r = self.rng
        if method == "tasks.start":
            args = r.choice([{}, {"a": r.choice(JUNK)}, {"word": r.choice(JUNK)},
                             {"a": 2, "b": r.randint(-5, 5)}, r.choice(JUNK)])
            return {"id": r.choice([*TEMPLATES, r.choice(JUNK)]), "args": args}
        if method == "tasks.grade":
            return r.choice([{"answer": r.choice(["3", "x", None, r.choice(JUNK)])},
                             {"answer": "3", "id": r.choice(TEMPLATES)},
                             {"answer": "1", "session_id": r.choice(JUNK)}, {"bogus": 1}])
        if method in ("tasks.cancel", "hello"):
            return r.choice([{}, {"session_id": "feedface"}, {"id": r.choice(JUNK)}, {"x": 1}])
        if method == "tunnel.open":
            return {"capability": r.choice(["shell", r.choice(JUNK)])}
        return r.choice([{}, {}, {"unexpected": r.choice(JUNK)}, r.choice(JUNK)])

    def valid(self) -> bytes:
        method = self.rng.choice(METHODS)
        frame = {"jsonrpc": "2.0", "id": self._id(), "method": method,
                 "params": self.params(method)}
        return json.dumps(frame).encode()

    def mutated(self) -> bytes:
        r = self.rng
        base = self.valid()
        kind = r.randrange(13)
        if kind == 0:
            return bytes(r.randrange(256) for _ in range(r.randrange(1, 200)))
        if kind == 1:
            return base[: r.randrange(len(base))]
        if kind == 2:
            at = r.randrange(len(base))
            return base[:at] + r.choice([b"\xff\xfe", b"\xed\xa0\x80", b"\xc3"]) + base[at:]
        if kind == 3:
            return base.replace(b'"2.0"', b'"2.0", "extra": "\\udc80"', 1)
        if kind == 4:
            depth = r.choice([50, 400, 6000, 60000])
            closing = b"]" * depth if r.random() < 0.7 else b""
            return b'{"jsonrpc":"2.0","id":1,"method":"tasks.grade","params":{"answer":' + \
                b"[" * depth + closing + b"}}"
        if kind == 5:
            number = r.choice([b"1e999", b"-1e999", b"9" * 5000, b"1" * 300, b"NaN", b"-Infinity"])
            return b'{"jsonrpc":"2.0","id":' + number + b',"method":"tasks.list"}'
        if kind == 6:
            field_ = r.choice(["jsonrpc", "method", "params", "id"])
            obj = json.loads(base)
            obj[field_] = r.choice(JUNK)
            return json.dumps(obj).encode()
        if kind == 7:
            size = r.choice([MAX_FRAME - 40, MAX_FRAME + 1, MAX_FRAME + r.randrange(1, 50_000)])
            head = b'{"jsonrpc":"2.0","id":9,"method":"tasks.list","params":{"x":"'
            return head + b"a" * (size - len(head) - 3) + b'"}}'
        if kind == 8:
            return b'{"jsonrpc":"2.0","id":"\\ud800","method":"tasks.list"}'
        if kind == 9:
            return b"[1, 2, 3]" if r.random() < 0.5 else b'"just a string"'
        if kind == 10:
            return b"   " if r.random() < 0.5 else b"\r"
        if kind == 11:
            return b'{"jsonrpc":"2.0","id":3,"id":4,"method":"hello","method":"tasks.list"}'
        return base

    def burst(self) -> list[bytes]:
        count = self.rng.choice([1, 1, 2, 3, 5, 8])
        return [self.mutated() if self.rng.random() < 0.7 else self.valid() for _ in range(count)]

    def writes(self, data: bytes) -> list[bytes]:
        """`data` as one write, or split at random places (frames across writes)."""
        if self.rng.random() < 0.5 or len(data) < 4:
            return [data]
        cuts = sorted(self.rng.sample(range(1, len(data)), min(4, len(data) - 1)))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _decode(raw: bytes) -> tuple[Request | None, Any]:
    """What the protocol makes of one frame: (request, None) or (None, error reply id)."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    try:
        return Request.model_validate(obj), None
    except (ValueError, RecursionError):  # hud.messages.Invalid is a ValueError
        rid = obj.get("id")
        return None, rid if isinstance(rid, (int, str)) else None


@dataclass
class Model:
    """Which replies a connection owes, frame by frame (DESIGN §4)."""

    token: str | None
    first: bool = True
    ended: bool = False
    authed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.authed = self.token is None

    def expect(self, raw: bytes) -> list[Any]:
        """The ids of the replies `raw` gets (0 or 1 of them); may end the connection."""
        if self.ended or not raw.strip():
            return []
        if not self.authed:
            self.ended = True  # unless the token checks out, below
            if len(raw) > AUTH_LIMIT:
                return [None]
            request, rid = _decode(raw)
            if request is None or request.params.get("token") != self.token:
                return [rid if request is None else request.id]
            self.ended, self.authed = False, True
        elif len(raw) > MAX_FRAME:
            return [None]
        request, rid = _decode(raw)
        if request is None:
            return [rid]
        if self.first:
            self.first = False
            if request.method == "tunnel.open":
                self.ended = True
                return [request.id]
        if request.method == "bye":
            self.ended = True
        return [] if request.id is None else [request.id]


class Peer:
    """One connection: TCP, or a `hud connect` bridge process."""

    def __init__(self, reader: asyncio.StreamReader, writer: Any, proc: Any = None) -> None:
        self.reader, self.writer, self.proc = reader, writer, proc

    async def write(self, chunks: list[bytes]) -> None:
        try:
            for chunk in chunks:
                self.writer.write(chunk)
                await self.writer.drain()
        except (ConnectionError, BrokenPipeError):
            pass  # the daemon ended the connection; the replies tell whether it should have

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 30)

    async def close(self) -> None:
        self.writer.close()
        if self.proc is not None:
            await asyncio.wait_for(self.proc.wait(), 30)


async def _tcp(port: int) -> Peer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    return Peer(reader, writer)


async def _bridge(socket_path: Path) -> Peer:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hud.cli.main", "connect", "--socket", str(socket_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 22)
    assert proc.stdin is not None and proc.stdout is not None
    return Peer(proc.stdout, proc.stdin, proc)


async def _session(peer: Peer, gen: Frames, model: Model, bursts: int) -> int:
    """Drive one connection; returns how many frames were sent."""
    sent = 0
    if model.token is not None and gen.rng.random() < 0.8:  # mostly log in properly
        hello = {"jsonrpc": "2.0", "id": "login", "method": "hello", "params": {"token": TOKEN}}
        frames = [json.dumps(hello).encode()]
    else:
        frames = gen.burst()
    for number in range(bursts):
        if number:
            frames = gen.burst()
        data = b"".join(f + b"\n" for f in frames)  # random bytes may hold newlines too
        expected = [rid for raw in data.split(b"\n")[:-1] for rid in model.expect(raw)]
        if not model.ended:  # a sentinel: every reply before it is accounted for
            sentinel = json.dumps({"jsonrpc": "2.0", "id": f"sentinel-{number}",
                                   "method": "tasks.list"}).encode()
            expected += model.expect(sentinel)
            data += sentinel + b"\n"
        await peer.write(gen.writes(data))
        sent += len(frames)
        received = []
        for _ in expected:
            line = await peer.line()
            assert line, f"connection closed with {expected[len(received):]} unanswered " \
                         f"after {received} (burst {frames!r:.300})"
            received.append(json.loads(line)["id"])
        assert received == expected, f"replies {received} != expected {expected} for {frames!r:.300}"
        if model.ended:
            assert await peer.line() == b"", "the daemon kept a connection the protocol ends"
            break
    await peer.close()
    return sent


async def _clean_up_and_check(client: Peer) -> None:
    """Cancel what the fuzz left parked, then a normal start/grade must work."""
    async def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
        frame = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        await client.write([json.dumps(frame).encode() + b"\n"])
        return json.loads(await client.line())

    for _ in range(200):
        reply = await call("tasks.cancel", {})
        data = reply.get("error", {}).get("data") or {}
        for session_id in data.get("sessions", []):
            await call("tasks.cancel", {"session_id": session_id})
        if "no task in progress" in reply.get("error", {}).get("message", ""):
            break
    started = await call("tasks.start", {"id": "count_letter"})
    assert "strawberry" in started["result"]["prompt"], started
    assert (await call("tasks.grade", {"answer": "3"}))["result"] == {"score": 1.0}


@pytest.mark.parametrize("transport", ["tcp", "tcp+token", "bridge"])
async def test_fuzzed_frames_are_all_answered(start_daemon, short_dir: Path, transport: str) -> None:
    """Seeded mutations of valid frames: the daemon lives, answers every request with an
    id exactly once, closes only where the protocol says, still serves, and gives its
    memory back."""
    port = free_port()
    extra = ["--tcp", f"127.0.0.1:{port}", "--max-frame", str(MAX_FRAME)]
    if transport == "tcp+token":
        extra += ["--token-file", str(token_file(short_dir, TOKEN))]
    daemon = start_daemon(str(ENVS / "faults.py"), *extra)
    token = TOKEN if transport == "tcp+token" else None
    rng = random.Random(f"{SEED}-{transport}")
    gen = Frames(rng)

    async def connect() -> Peer:
        return await (_bridge(daemon.socket_path) if transport == "bridge" else _tcp(port))

    await _session(await connect(), Frames(random.Random(0)), Model(token), 3)  # warm up
    baseline = rss_kib(daemon.proc.pid)
    sent, left = 0, BURSTS
    while left > 0:
        bursts = min(left, rng.choice([3, 10, 30]))
        sent += await _session(await connect(), gen, Model(token), bursts)
        left -= bursts
        assert daemon.proc.poll() is None, "hud serve died"
    assert sent >= BURSTS
    checker = await connect()
    if token is not None:
        await checker.write([json.dumps({"jsonrpc": "2.0", "id": 0, "method": "hello",
                                         "params": {"token": TOKEN}}).encode() + b"\n"])
        assert "result" in json.loads(await checker.line())
    await _clean_up_and_check(checker)
    await checker.close()
    assert rss_kib(daemon.proc.pid) < baseline + 48 * 1024

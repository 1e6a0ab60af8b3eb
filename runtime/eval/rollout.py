"""One rollout: provision → start → agent → grade → teardown, with a typed outcome.

The agent sees a `RunContext` (hud.agents.context): the prompt, the manifest's bindings, tunnels to the
capabilities, the trace, and (for the oracle) the task's reference solution. Whatever
goes wrong is classified here, once (the statuses are defined in `hud.eval.results`): the
environment failing before the agent acted is `infra_error` (never a reward of 0), the
agent's harness raising is `agent_error`, running past the deadline `timeout` (0.0), and
grading code raising after the agent acted `grade_error` (counted as unearned).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import traceback
import types
from typing import Any

from hud.agents.context import Agent, RunContext
from hud.clients.untrusted import parse_manifest
from hud.errors import HudError, InfraError, RemoteError
from hud.eval.lease import HELLO, Lease, Placement
from hud.eval.placement import new_id
from hud.eval.results import Run
from hud.eval.traces import TraceWriter, job_dir, redact
from hud.task import Task
from hud.wire import TASK_ERROR


def agent_name(agent: Agent) -> str:
    """What a job and a trace record as the agent: its `name`, else a function's own name
    (`my_agent`, not "function"), else its class's."""
    name = getattr(agent, "name", None)
    if name:
        return str(name)
    if isinstance(agent, (types.FunctionType, types.MethodType, functools.partial)):
        target = agent.func if isinstance(agent, functools.partial) else agent
        return str(getattr(target, "__qualname__", None) or type(agent).__name__)
    return type(agent).__name__


async def run_rollout(
    task: Task, agent: Agent, placement: Placement, *, job_id: str, group_id: str,
    index: int, attempt: int = 1, timeout: float | None = None, max_steps: int | None = None,
) -> Run:
    """Run one rollout to a typed outcome; never raises for rollout failures."""
    trace_id = new_id()
    secrets = tuple(getattr(agent, "secrets", ()) or ())
    trace = TraceWriter(job_dir(job_id) / f"{trace_id}.jsonl", secrets)
    timings: dict[str, float] = {}
    run = Run(trace_id=trace_id, job_id=job_id, task=task, group_id=group_id, index=index,
              attempt=attempt, status="infra_error")
    lease: Lease | None = None
    phase = "placement"
    t = time.monotonic()

    def lap(name: str) -> None:
        nonlocal t
        now = time.monotonic()
        timings[name] = round(now - t, 4)
        t = now

    try:
        trace.event("rollout", task=task.model_dump(mode="json"), agent=agent_name(agent),
                    group_id=group_id, index=index, attempt=attempt)
        lease = await placement.open(job_id, trace_id)
        run.placement = lease.info
        # the manifest is untrusted input (an image someone else built): nothing of it is
        # used, nor any task started, unless it passes the host's strict models. The
        # placement already said `hello` (hud.eval.lease); a custom one may not have.
        hello = lease.hello
        if hello is None:
            hello = await lease.channel.call("hello", dict(HELLO))
        manifest = parse_manifest(hello, lease.source())
        lap("placement")
        trace.event("placement", **lease.info)
        phase = "start"
        limits = _limits(manifest, task.id)
        frame = await lease.channel.call("tasks.start", {"id": task.id, "args": task.args},
                                         timeout=limits["setup_timeout"])
        lap("start")
        run.prompt = frame.get("prompt")
        trace.event("start", prompt=run.prompt, frame={k: v for k, v in frame.items() if k != "prompt"})
        phase = "agent"
        ctx = RunContext(task, run.prompt, frame, manifest, lease, trace, max_steps)
        timeout = agent_timeout(frame, timeout)
        try:
            answer = await asyncio.wait_for(agent(ctx), timeout)
        except TimeoutError:
            lap("agent")
            run.status, run.error = "timeout", f"the agent did not answer within {timeout:g}s"
            run.stop_reason = "timeout"
            run.reward = 0.0  # running out of time is the agent's outcome
            trace.event("timeout", seconds=timeout)
            await _cancel(lease)
            return run
        except (InfraError, RemoteError):
            raise
        except Exception as exc:  # whatever the agent raised is its outcome
            lap("agent")
            if await _connection_lost(lease):
                # its tools broke because the environment went away (the exec died, the
                # container stopped): infrastructure, retried, not the agent's failure
                raise InfraError(f"the environment's connection was lost under the agent, "
                                 f"which then raised {type(exc).__name__}: {exc}") from exc
            run.status, run.stop_reason = "agent_error", ctx.stop_reason or "error"
            run.error = f"{type(exc).__name__}: {exc}"
            trace.event("error", phase="agent", error=run.error, traceback=traceback.format_exc())
            await _cancel(lease)
            return run
        lap("agent")
        run.answer, run.stop_reason = answer, ctx.stop_reason or "answered"
        trace.event("answer", answer=answer, stop_reason=run.stop_reason)
        phase = "grade"
        grade = await lease.channel.call("tasks.grade", {"answer": answer},
                                         timeout=limits["grade_timeout"])
        lap("grade")
        run.reward, run.grade, run.status = float(grade["score"]), grade, "completed"
        trace.event("grade", **grade)
        return run
    except RemoteError as exc:
        kind = "task code raised" if exc.code == TASK_ERROR else "the daemon refused"
        run.error = f"{phase}: {kind}: {exc}"
        if phase == "grade" and exc.code == TASK_ERROR:
            # the grader raised after the agent acted: maybe the agent's doing, so it is
            # never excluded as infra (see hud.eval.results), nor recorded as a 0.0
            run.status = "grade_error"
        trace.event("error", phase=phase, error=run.error, data=exc.data)
        return run
    except HudError as exc:
        run.error = f"{phase}: {exc}"
        trace.event("error", phase=phase, error=run.error)
        return run
    except Exception as exc:  # noqa: BLE001 - a bug in hud: an infra error, traceback kept
        run.error = f"{phase}: {type(exc).__name__}: {exc}"
        trace.event("error", phase=phase, error=run.error, traceback=traceback.format_exc())
        return run
    finally:
        if lease is not None:
            try:
                await lease.close()
            except Exception as exc:  # noqa: BLE001 - recorded; the run's outcome stands
                trace.event("error", phase="teardown", error=f"{type(exc).__name__}: {exc}")
        lap("teardown")
        if run.error and trace.secrets:
            run.error = redact(run.error, trace.secrets)
        run.timings = timings
        trace.event("end", status=run.status, reward=run.reward, timings=timings)
        run.trace = trace.events
        trace.close()


# how much longer than the daemon's own limit the host waits for setup or grading
LIMIT_MARGIN = 120.0


def agent_timeout(frame: dict[str, Any], timeout: float | None) -> float | None:
    """The agent's time: the shorter of `timeout` and the task's own `agent_timeout`
    (seconds, in its start frame, e.g. a Harbor task's [agent] timeout_sec); a value
    that is not a positive number is ignored."""
    own = frame.get("agent_timeout")
    if isinstance(own, bool) or not isinstance(own, (int, float)) or not 0 < own < 1e9:
        return timeout
    return float(own) if timeout is None else min(timeout, float(own))


def _limits(manifest: dict[str, Any], template_id: str) -> dict[str, float]:
    """How long to wait for tasks.start / tasks.grade: the template's limits in the daemon
    plus a margin, so a limit the daemon enforces arrives as the task's error (grade_error)
    rather than a host-side timeout (infra_error)."""
    info: dict[str, Any] = next(
        (t for t in manifest.get("templates", []) if t.get("id") == template_id), {})
    out = {}
    for key in ("setup_timeout", "grade_timeout"):
        value = info.get(key)
        seconds = float(value) if isinstance(value, (int, float)) and value > 0 else 600.0
        out[key] = min(seconds, 86400.0) + LIMIT_MARGIN
    return out


async def _connection_lost(lease: Lease) -> bool:
    """Whether the lease's control channel is gone (asked with a harmless call)."""
    try:
        await lease.channel.call("tasks.list", timeout=30)
    except InfraError:
        return True
    except HudError:
        return False
    return False


async def _cancel(lease: Lease) -> None:
    # the environment is going away anyway; its container is removed next
    with contextlib.suppress(HudError):
        await lease.channel.call("tasks.cancel", timeout=60)

"""`hud eval`, `hud jobs`, `hud trace`, `hud prune`: host-side eval commands.

stdout carries results (a table, or one JSON document with --json); stderr carries the
placement line and progress. Exit codes of `hud eval`: 0 when every rollout was graded (a
wrong answer is a result); 3 when some rollouts failed (agent_error or infra_error after
retries) and the rest were graded; 1 when none could run (every one failed: a bad key, a
provider outage, an image that cannot start) or the command failed; 2 for usage errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from hud.cli.model_options import model_config, model_options
from hud.cli.options import fail
from hud.cli.plain import printable

if TYPE_CHECKING:
    from hud.eval.results import Job


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_table(job: Job) -> None:
    from rich.console import Console
    from rich.table import Table

    stats = job.stats
    table = Table(title=f"job {job.id} — agent {job.agent}, {job.placement}")
    for column in ("task", "n", "mean reward", "std", "errors", "signal"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for slug, s in stats.tasks.items():
        table.add_row(slug, str(s.runs), _number(s.mean), _number(s.std), str(s.errors),
                      "none (zero variance)" if s.zero_variance else "")
    Console(file=sys.stdout, width=max(100, Console().width)).print(table)
    if stats.mean is None:
        click.echo("no run completed")
    elif stats.counted == stats.completed:
        click.echo(f"reward {stats.mean:.3f} over {stats.completed} completed runs")
    else:
        click.echo(f"reward {stats.mean:.3f} over {stats.counted} runs ({stats.completed} "
                   f"completed; {stats.counted - stats.completed} timed out or failed "
                   f"grading, counted as 0.0)")
    for run in job.errors:
        click.echo(printable(f"  {run.status}: {run.slug} #{run.index} ({run.trace_id}): "
                             f"{run.error}"))
    click.echo(f"job id: {job.id}")


@click.command("eval")
@click.argument("source")
@click.argument("agent")
@click.option("--model", default=None, help="Model id for provider agents.")
@click.option("--group", default=1, show_default=True, type=click.IntRange(min=1),
              help="Rollouts per task (a GRPO group).")
@click.option("--max-concurrent", default=None, type=click.IntRange(min=1),
              help="At most this many rollouts at once [default: all].")
@click.option("--runtime", default=None,
              help="local | docker | docker:IMAGE | CONTAINER | tcp://HOST:PORT | ray | "
                   "ray://HOST:PORT (a Ray cluster's nodes; pip install 'hud-python[ray]') "
                   "[default: where SOURCE's tasks come from: its image (docker), its "
                   "container or daemon, a built directory's image; else local].")
@click.option("--task", "task_filter", multiple=True, metavar="PATTERN",
              help="Only these tasks (repeatable): the task whose slug is PATTERN; else, if "
                   "no slug is, every task of the template whose id it is; else every task "
                   "whose slug matches it as a glob ('count_letter-*'). Matching nothing is "
                   "an error that lists the tasks.")
@click.option("--retries", default=0, show_default=True, type=click.IntRange(min=0),
              help="Re-run a rollout that failed on infrastructure this many times.")
@click.option("--timeout", default=None, type=float, help="Seconds the agent gets per rollout.")
@click.option("--max-steps", default=None, type=int, help="Model turns per rollout.")
@click.option("--cpus", default=None, type=float,
              help="docker: CPUs per rollout container [default: no limit].")
@click.option("--memory", default=None,
              help="docker: memory limit per rollout container, e.g. 2g [default: no limit].")
@click.option("--pids-limit", default=None, type=int,
              help="docker: processes and threads per rollout container, so a fork bomb stops "
                   "there [default: 1024; 0 or -1: no limit].")
@click.option("--network", default=None,
              help="docker: the rollout containers' network, e.g. bridge [default: none: no "
                   "network; hud reaches a container over docker exec]. host and "
                   "container:NAME are refused: they give the agent the host's (its loopback "
                   "services) or that container's network namespace.")
@click.option("--allow-shared-network", is_flag=True,
              help="docker: allow --network host or container:NAME (the agent then reaches "
                   "everything that namespace reaches).")
@click.option("--warm", default=0, show_default=True, type=click.IntRange(min=0),
              help="docker: keep this many containers started and ready ahead of the "
                   "rollouts, each used by one rollout and then removed.")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print the job as one JSON document.")
def eval_command(source: str, agent: str, model: str | None, group: int,
                 max_concurrent: int | None, runtime: str | None, task_filter: tuple[str, ...],
                 retries: int, timeout: float | None, max_steps: int | None,
                 cpus: float | None, memory: str | None, pids_limit: int | None,
                 network: str | None, allow_shared_network: bool, warm: int, as_json: bool,
                 **agent_options: Any) -> None:
    """Run every task of SOURCE with AGENT (oracle, nop, replay:JOB_ID, or a model id).

    SOURCE is an image (IMAGE or docker:IMAGE: its tasks from its label, a fresh container
    per rollout), a running container's name or tcp://HOST:PORT (its daemon's tasks, run
    there), a built env directory (the tasks in its hud.lock.json, run on its image), a
    task file (.jsonl, from `hud task export`), or tasks.py / an env directory not built
    (imported here, run in-process). Only the local placement imports the environment.

    Against one running container (--runtime CONTAINER or tcp://...) rollouts run one at
    a time, unless its environment declares it serves more at once. With --warm N (docker)
    N containers are started ahead of the rollouts, so a container starts while agents
    work; Ctrl-C removes every one."""
    from hud.agents import create_agent
    from hud.eval import Taskset

    if network is not None:
        from hud.errors import ConfigError
        from hud.eval.placement import check_network

        try:
            check_network(network, allow_shared_network)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--network") from None
    taskset = Taskset.from_source(source, runtime=runtime)
    if task_filter:
        from hud.errors import ConfigError

        try:
            taskset = taskset.filter(task_filter)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--task") from None
    config = model_config(agent_options)
    if runtime is not None and (runtime == "ray" or runtime.startswith("ray://")):
        from hud.eval.ray import AgentSpec  # reaches the nodes by name and config

        the_agent: Any = AgentSpec(model or agent, **config)
    else:
        the_agent = create_agent(model or agent, **config)
    placement = taskset.placement(runtime)
    if cpus is not None or memory is not None or pids_limit is not None or network is not None:
        from hud.eval import DockerPlacement

        if not isinstance(placement, DockerPlacement):
            raise click.UsageError("--cpus/--memory/--pids-limit/--network apply to the docker "
                                   f"placement only, not {placement.describe()}")
        placement.cpus, placement.memory = cpus, memory
        if network is not None:
            placement.network = network
            placement.allow_shared_network = allow_shared_network
        if pids_limit is not None:
            placement.pids_limit = pids_limit
    if warm:
        from hud.errors import ConfigError
        from hud.eval.pool import check_warm

        try:
            check_warm(warm, placement)
        except ConfigError as exc:
            raise click.UsageError(f"--warm: {exc}") from None
    pool = f", warm pool of {warm}" if warm else ""
    click.echo(f"placement: {placement.describe()}{pool}", err=True)
    drift = taskset.image_warning(placement)
    if drift:
        click.echo(drift, err=True)
    total = len(taskset) * group
    progress = _Progress(total, retries) if sys.stderr.isatty() and not as_json else None

    try:
        job = asyncio.run(taskset.run(the_agent, group=group, max_concurrent=max_concurrent,
                                      runtime=placement, retries=retries, timeout=timeout,
                                      max_steps=max_steps, warm=warm,
                                      on_run=progress.advance if progress else None))
    finally:
        if progress:
            progress.stop()
    if as_json:  # the runs and `stats` (per task and for the job)
        click.echo(job.model_dump_json(indent=2))
    else:
        _print_table(job)
    from hud.view.beacon import viewer_hint  # the job's page in a running `hud view`

    click.echo(viewer_hint(job.id), err=True)
    sys.exit(_exit_code(job))


#: `hud eval`'s exit code when some rollouts failed (agent_error or infra_error after
#: retries) and the others were graded; 1 is nothing graded, 2 is click's usage error
SOME_FAILED = 3


def _exit_code(job: Job) -> int:
    """0: every rollout was graded (completed, timeout and grade_error are the agent's
    outcome); SOME_FAILED: some were, the others failed; 1 (with `error: ...`): none was,
    for a job with rollouts, as when the provider key is bad or the image cannot start."""
    from hud.eval.results import COUNTED

    runs = job.final_runs
    failed = [r for r in runs if r.status not in COUNTED]
    if runs and len(failed) == len(runs):
        kinds = ", ".join(f"{sum(r.status == k for r in failed)} {k}"
                          for k in ("agent_error", "infra_error")
                          if any(r.status == k for r in failed))
        fail(printable(f"no rollout could run ({kinds}): {failed[0].error}"))
    if failed:
        click.echo(printable(f"warning: {len(failed)} of {len(runs)} rollouts failed (not "
                             f"graded, left out of the reward; exit {SOME_FAILED}); first: "
                             f"{failed[0].status}: {failed[0].error}"), err=True)
        return SOME_FAILED
    return 0


class _Progress:
    """A rich progress bar on stderr (terminals only)."""

    def __init__(self, total: int, retries: int) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task("rollouts", total=total)
        self._retries = retries
        self._progress.start()

    def advance(self, run: Any) -> None:
        # an infra failure that will be re-run is not a finished rollout yet
        if run.status != "infra_error" or run.attempt > self._retries:
            self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


@click.command()
@click.argument("job_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def jobs(job_id: str | None, as_json: bool) -> None:
    """List jobs in the local trace store, or the runs of JOB_ID."""
    from hud.eval.traces import list_jobs, load_job

    if job_id:
        job = load_job(job_id)
        if as_json:
            click.echo(json.dumps(job, indent=2))
            return
        for number, run in enumerate(job.get("runs", []), 1):
            try:
                reward = "-" if run["reward"] is None else f"{float(run['reward']):.3f}"
                fields = [run["trace_id"], run["task"]["slug"], f"#{run['index']}",
                          run["status"], reward]
            except (TypeError, KeyError, ValueError):
                click.echo(f"warning: skipped run {number} of job {printable(job['id'])}: not "
                           f"a run record (no trace_id, task slug, index, status or reward)",
                           err=True)
                continue
            click.echo("\t".join(printable(str(field)) for field in fields))
        return
    bad: list[str] = []
    listing = list_jobs(bad=bad)
    for message in bad:
        click.echo(f"warning: skipped {message}", err=True)
    if as_json:
        click.echo(json.dumps([{k: j.get(k) for k in ("id", "agent", "placement", "group")}
                               | {"runs": len(j.get("runs", []))} for j in listing], indent=2))
        return
    for j in listing:
        mean = _stored_reward(j)
        # written at the start with finished_at 0, rewritten at the end
        state = "\t(running, or killed)" if j.get("finished_at", None) == 0 else ""
        click.echo("\t".join(printable(str(field)) for field in (
            j["id"], j["agent"], f"{len(j.get('runs', []))} runs",
            f"reward {'-' if mean is None else f'{mean:.3f}'}", j["placement"])) + state)


def _stored_reward(data: dict[str, Any]) -> float | None:
    """`Job.reward` of a stored job summary; None when it is not one this hud can read."""
    from pydantic import ValidationError

    from hud.eval.results import Job

    try:
        return Job.model_validate(data).reward
    except ValidationError:
        return None


@click.command()
@click.argument("trace_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw events as a JSON list.")
def trace(trace_id: str, as_json: bool) -> None:
    """Render one rollout's trace (prompt, tool calls, answer, grade, timings)."""
    from hud.eval.traces import find_trace, read_trace

    bad: list[str] = []
    events = read_trace(find_trace(trace_id), bad)
    for message in bad:
        click.echo(f"warning: skipped {message}", err=True)
    if as_json:
        click.echo(json.dumps(events, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console()
    for event in events:
        # everything in a trace is untrusted text (the model's, the env's): styled as
        # plain Text, never parsed as markup, and JSON-quoted so control bytes show
        kind = event.get("type")
        label = kind if isinstance(kind, str) and kind.isidentifier() else json.dumps(kind)
        rest = {k: v for k, v in event.items() if k not in ("t", "type")}
        # a model turn's reasoning/thinking is shown under it, dimmed, one line per block
        thinking = rest.pop("thinking") if (kind == "model_turn"
                                            and isinstance(rest.get("thinking"), list)) else []
        t = event.get("t", 0)
        stamp = f"{t:8.3f}s" if isinstance(t, (int, float)) else json.dumps(t, default=str)
        console.print(Text.assemble((stamp, "dim"), " ", (label, "bold"), " ", _quoted(rest)),
                      highlight=False, soft_wrap=True)
        for thought in thinking:
            console.print(Text.assemble(" " * 10, ("thinking", "dim bold"), " ",
                                        (_quoted(thought), "dim italic")),
                          highlight=False, soft_wrap=True)




def _quoted(value: Any) -> str:
    """Trace data as JSON text, cut at 2000 characters, with no control, bidi or zero-width
    character left raw (each shown as its \\uXXXX escape)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 2000:
        text = text[:2000] + f"… ({len(text)} chars)"
    # JSON escapes C0 controls, not the rest of what a terminal acts on
    return printable(text)


@click.command()
@click.option("--job", "job_id", default=None, help="Only containers of this job.")
def prune(job_id: str | None) -> None:
    """Remove containers left behind by killed eval jobs (those of jobs still running on
    this host are kept; --job JOB removes that job's whatever runs it)."""
    from hud.eval.prune import prune_containers

    pruned = prune_containers(job_id)
    click.echo(f"removed {len(pruned.removed)} container(s)")
    for name in pruned.removed:
        click.echo(f"  {name}")
    if pruned.kept:
        click.echo(f"kept {len(pruned.kept)} container(s):")
        for name, why in pruned.kept:
            click.echo(f"  {name}  {why}")

"""`--task` / `Taskset.filter`: an exact slug wins, else a template id, else a glob over
slugs; a pattern that selects nothing is an error listing what exists."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hud.cli.main import cli
from hud.errors import ConfigError
from hud.eval import Taskset
from hud.task import Task
from tests.conftest import ENVS

LETTERS = str(ENVS / "letters.py")


def slugs(taskset: Taskset) -> list[str]:
    return [t.slug for t in taskset]


def test_an_exact_slug_wins_over_the_template_id() -> None:
    """`count_letter` is both a slug (the no-argument task) and a template id: the one task."""
    assert slugs(Taskset.from_source(LETTERS).filter(["count_letter"])) == ["count_letter"]


def test_a_template_id_selects_all_its_tasks_when_no_slug_is_it() -> None:
    """With no task slugged `t`, the pattern `t` selects every task of template `t`."""
    tasks = Taskset([Task(env="e", id="t", args={"n": n}) for n in range(3)]
                    + [Task(env="e", id="u")])
    assert [t.args for t in tasks.filter(["t"])] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_a_glob_matches_slugs() -> None:
    """`count_letter-*` selects the tasks with arguments; `*` every task."""
    tasks = Taskset.from_source(LETTERS)
    assert slugs(tasks.filter(["count_letter-*"])) == ["count_letter-7723267a",
                                                       "count_letter-938911f2"]
    assert len(tasks.filter(["*"])) == 3


def test_several_patterns_select_their_union_in_taskset_order() -> None:
    """Patterns add up; a task two patterns select appears once, in the taskset's order."""
    tasks = Taskset.from_source(LETTERS)
    chosen = tasks.filter(["count_letter-938911f2", "count_letter", "count_letter-9*"])
    assert slugs(chosen) == ["count_letter", "count_letter-938911f2"]


def test_a_pattern_that_selects_nothing_lists_the_tasks_and_templates() -> None:
    """An unknown pattern: ConfigError naming it, the slugs and the template ids."""
    with pytest.raises(ConfigError, match=r"no task 'count_leter' in this taskset .*tasks: "
                       r"count_letter, count_letter-7723267a, count_letter-938911f2; "
                       r"templates: count_letter"):
        Taskset.from_source(LETTERS).filter(["count_leter"])


def test_eval_task_that_selects_nothing_is_a_usage_error() -> None:
    """`hud eval --task nope`: exit 2, the option named, the tasks listed; nothing runs."""
    done = CliRunner().invoke(cli, ["eval", LETTERS, "nop", "--task", "nope"])
    assert done.exit_code == 2
    assert "Invalid value for --task: no task 'nope'" in done.stderr
    assert "count_letter-7723267a" in done.stderr


def test_eval_help_says_how_task_selects() -> None:
    """`hud eval --help` states the rule: slug, else template id, else glob."""
    done = CliRunner().invoke(cli, ["eval", "--help"])
    text = " ".join(done.stdout.split())
    assert "the task whose slug is PATTERN; else, if no slug is, every task of the template " \
           "whose id it is; else every task whose slug matches it as a glob" in text

"""Task: slugs, the plain class's checks and copies, and its place in pydantic models."""

from __future__ import annotations

import copy
import datetime
import enum
import json
import pickle
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from hud.errors import ConfigError
from hud.eval.results import Run
from hud.task import Task, canonical_json, make_slug


class _Holder(BaseModel):
    task: Task


class _Word(enum.StrEnum):
    A = "a"


def test_make_slug_without_args_is_the_id() -> None:
    """No args: the slug is the template id."""
    assert make_slug("fix_bug", {}) == "fix_bug"


def test_make_slug_is_deterministic() -> None:
    """The same args give the same slug in any key order."""
    assert make_slug("t", {"a": 1, "b": [1, 2]}) == make_slug("t", {"b": [1, 2], "a": 1})
    assert make_slug("t", {"a": 1}) != make_slug("t", {"a": 2})


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    """Canonical JSON is compact and key-sorted."""
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_task_round_trips_through_json() -> None:
    """A Task serialises and loads back equal (Tasksets are stored as JSON Lines)."""
    task = Task(env="e", id="t", args={"x": 1})
    again = Task.model_validate_json(task.model_dump_json())
    assert again == task and again.slug == make_slug("t", {"x": 1})


def test_using_tasks_imports_no_pydantic() -> None:
    """Minting, comparing, hashing, copying, dumping and validating tasks leaves pydantic
    unloaded: every env module mints tasks, and the daemon must not pay for pydantic."""
    probe = (
        "import copy, json, pickle, sys\n"
        "from hud.task import Task\n"
        "t = Task(env='e', id='t', args={'w': 'x', 'n': [1, 2.5, None, {'k': True}]},"
        " description='d')\n"
        "assert Task.model_validate(t.model_dump()) == t and len({t, copy.deepcopy(t)}) == 1\n"
        "assert Task.model_validate_json(t.model_dump_json()) == pickle.loads(pickle.dumps(t))\n"
        "assert t.model_dump(mode='json')['args'] == t.args and repr(t)\n"
        "try:\n    Task(env=1, id='t')\nexcept ValueError:\n    pass\n"
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] in"
        " ('pydantic', 'pydantic_core')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(("fields", "message"), [
    ({"env": 1, "id": "t"}, r"env: Input should be a valid string \(got 1\)"),
    ({"env": "e", "id": None}, r"id: Input should be a valid string \(got None\)"),
    ({"env": "e", "id": "t", "slug": 2}, r"slug: Input should be a valid string"),
    ({"env": "e", "id": "t", "args": []}, r"args: Input should be a valid dictionary"),
    ({"env": "e", "id": "t", "args": None}, r"args: Input should be a valid dictionary"),
    ({"env": "e", "id": "t", "args": {1: "x"}}, r"args\.1\.\[key\]: Input should be a valid string"),
    ({"env": "e", "id": "t", "description": 3}, r"description: Input should be a valid string or None"),
    ({"env": "e", "id": "t", "word": "x"}, r"word: Extra inputs are not permitted"),
    ({"id": "t"}, r"env: Field required"),
])
def test_a_wrong_field_is_refused_with_its_name(fields: dict[str, Any], message: str) -> None:
    """A wrong type, an unknown or a missing field: a ValueError (as pydantic's was) naming it."""
    with pytest.raises(ValueError, match=message):
        Task(**fields)
    with pytest.raises(ValueError, match=message):
        Task.model_validate(fields)


def test_every_problem_is_named_and_the_error_is_a_config_error() -> None:
    """All wrong fields are listed in one message, and it is hud's ConfigError too."""
    with pytest.raises(ConfigError, match=r"^invalid Task: env: Field required; id: Input should"):
        Task.model_validate({"id": 5})


def test_model_validate_refuses_what_is_no_mapping() -> None:
    """A list is neither a Task nor its fields."""
    with pytest.raises(ValueError, match=r"valid dictionary or instance of Task \(got \[1\]\)"):
        Task.model_validate([1])


def test_model_validate_returns_a_task_as_is() -> None:
    """A Task given to model_validate is that very Task, as pydantic returned it."""
    task = Task(env="e", id="t")
    assert Task.model_validate(task) is task


def test_strings_are_taken_as_pydantic_lax_mode_took_them() -> None:
    """Bytes and str enums become plain str, as pydantic coerced them."""
    task = Task(env=b"e", id=_Word.A, args={_Word.A: 1})  # type: ignore[arg-type]
    assert (task.env, task.id, list(task.args)) == ("e", "a", ["a"])
    assert type(task.id) is str and all(type(k) is str for k in task.args)


def test_a_task_is_frozen() -> None:
    """Setting or deleting a field raises (a task's slug must keep matching its args)."""
    task = Task(env="e", id="t")
    with pytest.raises(ValueError, match="Task is frozen: cannot set env"):
        task.env = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="Task is frozen: cannot delete slug"):
        del task.slug  # type: ignore[misc]
    assert task.env == "e"


def test_args_default_to_a_new_dict_and_are_copied_in() -> None:
    """Each task gets its own args dict; the caller's dict is not shared."""
    given = {"x": 1}
    task = Task(env="e", id="t", args=given)
    given["x"] = 2
    assert task.args == {"x": 1}
    assert Task(env="e", id="t").args == {} and Task(env="e", id="t").args is not Task(
        env="e", id="t").args


def test_an_empty_slug_is_computed_and_a_given_one_kept() -> None:
    """slug '' means make_slug(id, args); a slug given (read from a file) is kept."""
    assert Task(env="e", id="t", args={"x": 1}).slug == make_slug("t", {"x": 1})
    assert Task(env="e", id="t", args={"x": 1}, slug="mine").slug == "mine"


def test_equality_takes_all_fields_and_the_hash_env_and_slug() -> None:
    """Equal when all five fields are; hashed by (env, slug); never equal to its dict."""
    task = Task(env="e", id="t", args={"x": 1})
    assert task == Task(env="e", id="t", args={"x": 1})
    assert hash(task) == hash(("e", task.slug))
    assert task != Task(env="e", id="t", args={"x": 1}, description="other")
    assert task != Task(env="f", id="t", args={"x": 1})
    assert task != task.model_dump()
    assert len({task, Task(env="e", id="t", args={"x": 1})}) == 1


def test_repr_shows_every_field() -> None:
    """The repr reads like the call that makes the task."""
    assert repr(Task(env="e", id="t", args={"x": 1}, slug="s")) == (
        "Task(env='e', id='t', args={'x': 1}, slug='s', description=None)")


def test_pickle_and_copies_round_trip() -> None:
    """pickle (Ray ships tasks), copy and deepcopy give equal tasks; a deep copy's args
    are its own."""
    task = Task(env="e", id="t", args={"n": [1, 2]}, description="d")
    for again in (pickle.loads(pickle.dumps(task)), copy.copy(task), copy.deepcopy(task)):
        assert again == task and type(again) is Task
    assert copy.deepcopy(task).args["n"] is not task.args["n"]


def test_model_dump_json_mode_makes_arguments_json() -> None:
    """mode='json' turns a tuple into a list and a date into ISO text; python mode keeps them."""
    day = datetime.date(2024, 1, 2)
    task = Task(env="e", id="t", args={"pair": (1, 2), "day": day}, slug="s")
    assert task.model_dump(mode="json") == {
        "env": "e", "id": "t", "args": {"pair": [1, 2], "day": "2024-01-02"},
        "slug": "s", "description": None}
    assert task.model_dump()["args"] == {"pair": (1, 2), "day": day}


def test_model_dump_json_is_compact() -> None:
    """The JSON text has no whitespace and keeps non-ASCII text as is (as pydantic wrote it)."""
    text = Task(env="e", id="t", args={"w": "é"}, slug="s").model_dump_json()
    assert text == '{"env":"e","id":"t","args":{"w":"é"},"slug":"s","description":null}'


def test_a_task_field_round_trips_in_a_pydantic_model() -> None:
    """A model with a Task field dumps it as its dict and loads it back, as JSON and as
    Python data; a Task given is kept as is."""
    task = Task(env="e", id="t", args={"pair": (1, 2)}, description="d")
    holder = _Holder(task=task)
    assert holder.task is task
    assert json.loads(holder.model_dump_json())["task"]["args"] == {"pair": [1, 2]}
    assert _Holder.model_validate_json(holder.model_dump_json()).task == Task(
        env="e", id="t", args={"pair": [1, 2]}, slug=task.slug, description="d")
    assert holder.model_dump() == {"task": task.model_dump()}
    assert _Holder.model_validate(holder.model_dump()).task == task


def test_a_bad_task_field_is_a_pydantic_error_at_its_place() -> None:
    """A wrong task inside a model fails that model's validation, located at the field."""
    with pytest.raises(ValidationError, match=r"task\.env\n  Input should be a valid string"):
        _Holder.model_validate({"task": {"env": 1, "id": "t"}})
    with pytest.raises(ValidationError, match=r"task\.x\n  Extra inputs are not permitted"):
        _Holder.model_validate({"task": {"env": "e", "id": "t", "x": 1}})


def test_a_model_with_a_task_has_a_json_schema() -> None:
    """model_json_schema describes a Task field as an object of the five fields."""
    schema = _Holder.model_json_schema()["properties"]["task"]
    assert schema["title"] == "Task" and schema["required"] == ["env", "id"]
    assert set(schema["properties"]) == {"env", "id", "args", "slug", "description"}


def test_a_run_round_trips_with_its_task() -> None:
    """A Run (what traces and job files hold) loads back with an equal task."""
    run = Run(trace_id="t1", job_id="j", task=Task(env="e", id="t", args={"w": "x"}),
              group_id="g", status="completed", reward=1.0)
    assert Run.model_validate_json(run.model_dump_json()) == run
    assert Run.model_validate(run.model_dump(mode="json")).task == run.task

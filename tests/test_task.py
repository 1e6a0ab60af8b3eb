"""Task model and slugs."""

from hud.task import Task, canonical_json, make_slug


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

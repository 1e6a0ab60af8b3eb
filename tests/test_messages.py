"""hud.messages' plain records against the pydantic models they replaced: same values
accepted, same values produced, same problems named, over a generated corpus of frames."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hud import messages as p
from hud.clients.untrusted import HostBinding  # the host's pydantic binding: the old one
from hud.records import Invalid, Record

# -- the pydantic models hud.messages held before it dropped pydantic (the reference) --


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jsonrpc: Literal["2.0"]
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    id: int | str | None = None


class HelloParams(_Params):
    session_id: str | None = None
    token: str | None = None
    client: str | None = None


class TunnelOpenParams(_Params):
    capability: str
    token: str | None = None


class StartParams(_Params):
    id: str
    args: dict[str, Any] = Field(default_factory=dict)


class GradeParams(_Params):
    answer: Any = None
    id: str | None = None
    session_id: str | None = None


class CancelParams(_Params):
    id: str | None = None
    session_id: str | None = None


class EmptyParams(_Params):
    pass


class EnvInfo(BaseModel):
    name: str
    version: str
    layer: str = "base"
    concurrency: int = Field(1, ge=1)


class TaskInfo(BaseModel):
    slug: str
    id: str
    args: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None


class TemplateInfo(BaseModel):
    id: str
    description: str | None = None
    args_schema: dict[str, Any]
    has_solution: bool = False
    setup_timeout: float | None = None
    grade_timeout: float | None = None


REFERENCE: dict[type[Record], type[BaseModel]] = {
    p.Request: Request, p.HelloParams: HelloParams, p.TunnelOpenParams: TunnelOpenParams,
    p.StartParams: StartParams, p.GradeParams: GradeParams, p.CancelParams: CancelParams,
    p.EmptyParams: EmptyParams, p.Binding: HostBinding, p.EnvInfo: EnvInfo, p.TaskInfo: TaskInfo,
    p.TemplateInfo: TemplateInfo,
}

# -- the corpus: JSON values of every kind, in the places fields take them --

SCALARS: list[Any] = [None, True, False, 0, 1, -1, 2, 7, 1.0, 1.5, 2.0, -0.0, 10**30,
                      float("inf"), float("nan"), "", "2.0", "1.5", "1e3", "1_000", "-0", "7",
                      " 7 ", "inf", "yes", "Off", "t", "x", "hello", "a b", "ssh/2", "tcp://127.0.0.1:22",
                      "tcp://h:0", "unix:///run/x.sock", "unix:relative", "ö", "\x00"]
VALUES: list[Any] = [*SCALARS, [], [1], {}, {"a": 1}, {"k": [None]}]


def _frames(model: type[Record], rng: random.Random, count: int) -> list[dict[str, Any]]:
    names = [name for name, _, _ in model.FIELDS]
    frames = [{}]
    for _ in range(count):
        frame = {name: rng.choice(VALUES) for name in names if rng.random() < 0.7}
        if rng.random() < 0.15:
            frame[rng.choice(["extra", "Method", "params2"])] = rng.choice(VALUES)
        frames.append(frame)
    return frames


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(map(str, e["loc"])), str(e["msg"]).removeprefix("Value error, "))
            for e in exc.errors()]


@pytest.mark.parametrize("model", list(REFERENCE), ids=lambda m: m.__name__)
def test_a_record_takes_and_refuses_what_its_pydantic_model_did(model: type[Record]) -> None:
    reference = REFERENCE[model]
    rng = random.Random(model.__name__)
    for frame in _frames(model, rng, 400):
        try:
            expected: Any = reference.model_validate(frame).model_dump()
        except ValidationError as exc:
            expected = _problems(exc)
        try:
            got: Any = model.model_validate(frame).model_dump()
        except Invalid as exc:
            got = exc.problems
        assert got == expected, frame
        if isinstance(expected, dict):  # the values' types too: True for an id is 1
            assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_a_record_is_a_value_error_naming_each_field() -> None:
    with pytest.raises(ValueError, match=r"^id: Field required; x: Extra inputs are not "
                                         r"permitted$"):
        p.StartParams.model_validate({"x": 1})
    with pytest.raises(Invalid, match="Input should be a valid dictionary"):
        p.StartParams.model_validate(["id"])


def test_a_manifest_dumps_nested_records_and_names_nested_problems() -> None:
    manifest = p.Manifest(env=p.EnvInfo(name="e", version="1"),
                          bindings=[{"name": "shell", "protocol": "ssh/2",
                                     "url": "tcp://127.0.0.1:22"}],
                          tasks=[p.TaskInfo(slug="t", id="t")])
    dumped = manifest.model_dump(mode="json")
    assert dumped == {"session_id": None, "protocol": p.PROTOCOL_VERSION,
                      "env": {"name": "e", "version": "1", "layer": "base", "concurrency": 1},
                      "bindings": [{"name": "shell", "protocol": "ssh/2",
                                    "url": "tcp://127.0.0.1:22", "params": {}}],
                      "tasks": [{"slug": "t", "id": "t", "args": {}, "description": None}],
                      "templates": []}
    assert json.loads(json.dumps(dumped)) == dumped
    with pytest.raises(Invalid) as caught:
        p.Manifest(env={"name": "e", "version": "1", "concurrency": 0},
                   bindings=[{}, {"name": "a b", "protocol": "ssh/2", "url": "tcp://h:1"}])
    assert caught.value.problems == [
        ("env.concurrency", "Input should be greater than or equal to 1"),
        ("bindings.0.name", "Field required"), ("bindings.0.protocol", "Field required"),
        ("bindings.0.url", "Field required"),
        ("bindings.1.name", "capability name 'a b' is not allowed: use 1-64 letters, digits, "
                            "'_', '.' or '-', starting with a letter or digit")]


def test_records_compare_by_value_and_are_not_hashable() -> None:
    one = p.TaskInfo(slug="t", id="t", args={"a": 1})
    assert one == p.TaskInfo(slug="t", id="t", args={"a": 1})
    assert one != p.TaskInfo(slug="t", id="t")
    assert "args={'a': 1}" in repr(one)
    with pytest.raises(TypeError):
        hash(one)


def test_importing_the_wire_records_does_not_import_pydantic() -> None:
    code = ("import sys, hud.messages as m; m.Manifest(env=m.EnvInfo(name='e', version='1'))"
            ".model_dump(); m.Request.model_validate({'jsonrpc': '2.0', 'method': 'hello'}); "
            "print(sorted(n for n in sys.modules if n.startswith('pydantic')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_a_str_enum_is_taken_as_its_text_as_pydantic_took_it() -> None:
    """A str enum member (a capability author's constant) is its value, not 'E.member'."""
    import enum

    class Kind(str, enum.Enum):  # noqa: UP042 - StrEnum would hide the bug: its str() is the value
        shell = "shell"

    assert p.StartParams(id=Kind.shell).id == "shell"
    assert type(p.StartParams(id=Kind.shell).id) is str
    assert StartParams.model_validate({"id": Kind.shell}).id == "shell"

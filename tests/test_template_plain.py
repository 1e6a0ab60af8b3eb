"""Plain templates without pydantic: the fast paths give what the pydantic model gives."""

from __future__ import annotations

import inspect
import itertools
import json
import math
import subprocess
import sys
import textwrap
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from hud import Environment
from hud.errors import ConfigError
from hud.template import _MODEL_ATTRIBUTES, Template, _describe_error
from tests.importkit import ROOT

P = inspect.Parameter
EMPTY = P.empty


class Str(str):
    """A str subclass: not exactly a str, so it takes the model's path."""


def param(name: str, annotation: object = EMPTY, default: object = EMPTY,
          kind: Any = P.POSITIONAL_OR_KEYWORD) -> inspect.Parameter:
    return P(name, kind, annotation=annotation, default=default)


def make_template(params: list[inspect.Parameter], id: str = "t") -> Template:
    """A template whose function has exactly the signature `params`."""

    async def fn(**kwargs: Any) -> AsyncGenerator[Any, Any]:
        yield f"prompt {sorted(kwargs)}"
        yield 1.0

    # a required parameter after a defaulted one can only be keyword-only
    defaulted = [i for i, p in enumerate(params) if p.default is not EMPTY]
    params = [p.replace(kind=P.KEYWORD_ONLY) if defaulted and i > defaulted[0] else p
              for i, p in enumerate(params)]
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return Environment(name="plain").template(id=id)(fn)


#: plain signatures: each type, required and defaulted, unannotated, string annotations
SIGNATURES: list[list[inspect.Parameter]] = [
    [],
    [param("word", str, "strawberry"), param("letter", str, "r")],
    [param("n", int), param("x_1", float, 0.5), param("flag", bool, False)],
    [param("count_2", int, 3), param("ratio", float, -0.0), param("on", bool, True)],
    [param("a"), param("b", default=None), param("c", default="s"), param("d", default=3),
     param("e", default=2.5), param("f", default=True)],
    [param("s", "str"), param("i", "int", 1), param("f", "float", 1.5), param("b", "bool")],
    [param("snake_case_name", str), param("k", int, 10**30, P.KEYWORD_ONLY)],
    [param("lim", float, math.inf), param("low", float, -math.inf), param("nan", float, math.nan)],
    [param("surrogate", str, "\ud800")],
]

#: values of every kind: exact JSON scalars, coercible ones, subclasses, containers
VALUES: list[object] = [
    "x", "", "7", "3.5", "true", "\ud800", Str("sub"), 0, 7, -3, 10**30, True, False, 1.5,
    3.0, -0.0, math.nan, math.inf, None, [1], {"a": 1}, b"bytes",
]


def some_valid(template: Template) -> dict[str, object]:
    """A value of its exact type for every required parameter."""
    fill = {str: "v", int: 1, float: 1.0, bool: True, "str": "v", "int": 1, "float": 1.0,
            "bool": True, EMPTY: "v"}
    return {p.name: fill[p.annotation] for p in template.signature.parameters.values()
            if p.default is EMPTY}


def arg_cases(template: Template) -> list[dict[Any, object]]:
    """Args for `template`: valid ones, each parameter given each value, missing and
    unknown keys, a non-str key."""
    base = some_valid(template)
    names = list(template.signature.parameters)
    cases: list[dict[Any, object]] = [{}, dict(base), {**base, "unknown": 1}, {**base, 1: 1}]
    for name, value in itertools.product(names, VALUES):
        cases.append({**base, name: value})
        cases.append({name: value})
    return cases


def shown(values: dict[str, Any]) -> list[tuple[str, type, str]]:
    """Values compared by key order, exact type and repr (NaN is not equal to itself)."""
    return [(key, type(value), repr(value)) for key, value in values.items()]


def by_model(template: Template, args: dict[Any, object]) -> tuple[str, object]:
    """What `validate_args` gave before the fast path: the pydantic model's answer."""
    model_type = template.args_model
    try:
        model = model_type.model_validate(args)
    except ValidationError as exc:
        return "error", (f"bad args for task {template.id!r}: {_describe_error(exc)}; "
                         f"the template takes {template.signature}")
    return "ok", shown({name: getattr(model, name) for name in model_type.model_fields})


def canonical_by_model(template: Template, args: dict[Any, object]) -> list[tuple[str, type, str]]:
    """`canonical_args` as it was: pydantic_core's JSON of the model's values, defaults
    dropped."""
    model = template.args_model.model_validate(args)
    full = to_jsonable_python({name: getattr(model, name) for name in type(model).model_fields})
    parameters = template.signature.parameters
    return shown({name: value for name, value in full.items()
                  if parameters[name].default is EMPTY
                  or to_jsonable_python(parameters[name].default) != value})


def by_template(template: Template, args: dict[Any, object]) -> tuple[str, object]:
    try:
        return "ok", shown(template.validate_args(args))
    except ConfigError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("params", SIGNATURES, ids=lambda ps: ",".join(p.name for p in ps))
def test_validate_args_gives_what_the_model_gives(params: list[inspect.Parameter]) -> None:
    """For every signature and args, the result or ConfigError message equals the model's,
    and exactly typed args do take the fast path."""
    template = make_template(params)
    fast = 0
    for args in arg_cases(template):
        assert by_template(template, args) == by_model(template, args), args
        fast += template._plain_args(args) is not None
    assert fast > 0


@pytest.mark.parametrize("params", SIGNATURES, ids=lambda ps: ",".join(p.name for p in ps))
def test_canonical_args_are_what_pydantic_core_gives(params: list[inspect.Parameter]) -> None:
    """canonical_args equals pydantic_core's JSON form with defaults dropped, for every
    args the model accepts."""
    template = make_template(params)
    for args in arg_cases(template):
        if by_model(template, args)[0] == "ok":
            assert shown(template.canonical_args(args)) == canonical_by_model(template, args), args


SCHEMA_IDS = ["count_letter", "count-letter", "v1.2_final", "a.b-c_d", "x"]
#: (name, annotation) pairs: digits, underscores (leading, trailing, doubled), non-ASCII
SCHEMA_NAMES = [("word", str), ("n_2", int), ("ratio_", float), ("flag", bool),
                ("x9y", EMPTY), ("mixed_Case_3", "int"), ("ünï", "str"), ("a__b", "float"),
                ("on", "bool")]
SCHEMA_DEFAULTS = [EMPTY, "d", "", 0, -7, 10**20, 0.0, 2.5, -1e300, True, False, None]
_TYPES = {str: str, int: int, float: float, bool: bool, "str": str, "int": int,
          "float": float, "bool": bool}


def fits(annotation: object, default: object) -> bool:
    """Whether a plain parameter may have this default (exactly its type; any scalar)."""
    if default is EMPTY:
        return True
    if annotation is EMPTY:
        return type(default) in (str, int, float, bool, type(None))
    return type(default) is _TYPES[annotation]  # type: ignore[index]


def schema_signatures() -> list[list[inspect.Parameter]]:
    """Every fitting (name, annotation, default) alone, and a spread of triples of them."""
    singles = [param(name, annotation, default)
               for (name, annotation), default in itertools.product(SCHEMA_NAMES, SCHEMA_DEFAULTS)
               if fits(annotation, default)]
    picked = [[p] for p in singles]
    for i, first in enumerate(singles):
        trio = [first, singles[(i * 7 + 3) % len(singles)], singles[(i * 13 + 5) % len(singles)]]
        if len({p.name for p in trio}) == 3:
            picked.append(trio)
    return picked


@pytest.mark.parametrize("id", SCHEMA_IDS)
def test_args_schema_is_pydantics(id: str) -> None:
    """The hand-written schema equals pydantic's model_json_schema() for every plain
    signature (so a pydantic upgrade that changes its schema fails here)."""
    signatures = schema_signatures()
    assert len(signatures) > 50
    for params in [*signatures, [], *SIGNATURES[:-2]]:
        template = make_template(params, id)
        assert template.args_schema() == template.args_model.model_json_schema(), params
        assert template._plain is not None


def test_a_non_finite_float_default_is_left_to_pydantics_schema() -> None:
    """NaN and infinite defaults (not JSON) get pydantic's own schema."""
    template = make_template(SIGNATURES[-2])
    assert repr(template.args_schema()) == repr(template.args_model.model_json_schema())


def test_the_shadowed_names_cover_basemodels_attributes() -> None:
    """Every public BaseModel attribute outside `model_` is listed, so a parameter named
    like one still builds its model (and pydantic warns) at decoration time."""
    public = {name for name in [*dir(BaseModel), *dir(type(BaseModel))]
              if not name.startswith(("_", "model_"))}
    assert public <= _MODEL_ATTRIBUTES


def test_a_parameter_shadowing_basemodel_still_warns_at_decoration() -> None:
    """A parameter named `json` gets pydantic's warning when the template is defined."""
    with pytest.warns(UserWarning, match='Field name "json"'):
        make_template([param("json", str)])


def test_an_annotation_pydantic_refuses_still_fails_at_decoration() -> None:
    """A non-plain annotation builds the model at once, so a bad one fails when defined."""

    class Opaque:
        pass

    with pytest.raises(Exception, match="Unable to generate pydantic-core schema"):
        make_template([param("thing", Opaque)])


def test_a_null_in_the_id_still_fails_at_decoration() -> None:
    """A template id the model class cannot be named after fails when defined."""
    with pytest.raises(ValueError, match="null"):
        make_template([param("word", str)], id="bad\0id")


def test_non_plain_signatures_validate_through_the_model() -> None:
    """An Optional, a list and a bool default for an int keep pydantic's coercions."""
    template = make_template([param("maybe", "int | None", None), param("items", list[int], []),
                              param("n", int, False)])
    assert template.validate_args({"maybe": "4", "items": ["1", 2]}) == {
        "maybe": 4, "items": [1, 2], "n": False}
    with pytest.raises(ConfigError, match=r"bad args for task 't': items.0: Input should be "
                                          r"a valid integer"):
        template.validate_args({"items": ["x"]})


def loads_pydantic(module: str) -> list[str]:
    """The pydantic modules a fresh interpreter has after importing `module`."""
    probe = (f"import json, sys, {module}; print(json.dumps(sorted(m for m in sys.modules "
             f"if m.split('.')[0] in ('pydantic', 'pydantic_core'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return loaded


PYDANTIC_FREE = textwrap.dedent("""
    import asyncio, json, sys
    from hud.serve.runner import normalize_prompt, normalize_reward
    from hud.template import Template

    class Env:  # the little of an Environment a Template reads
        name, setup_timeout, grade_timeout, stall_timeout = "e", 60.0, 60.0, 10.0

    async def count_letter(word: str = "strawberry", letter: str = "r", times: int = 1,
                           ratio: float = 1.0, strict: bool = False, note=None):
        answer = yield {"prompt": f"count {letter} in {word}", "info": [1, {"a": None}]}
        yield {"score": float(answer == "3"), "info": {"nan": float("nan"), "n": [times]}}

    async def main():
        template = Template(Env(), count_letter, "count-letter.v1", None)
        task = template(word="raspberry", times=2)
        assert template.validate_args({"ratio": 0.5}) == {
            "word": "strawberry", "letter": "r", "times": 1, "ratio": 0.5, "strict": False,
            "note": None}
        assert template.canonical_args({"letter": "r", "note": "x"}) == {"note": "x"}
        schema = template.args_schema()
        gen = template.open(task.args)
        prompt = normalize_prompt(template.id, await gen.__anext__())
        reward = normalize_reward(template.id, await gen.asend("3"))
        await gen.aclose()
        return task.slug, prompt, reward, sorted(schema["properties"])

    result = asyncio.run(main())
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core"))
    print(json.dumps({"result": result, "pydantic": loaded}))
""")


def test_a_plain_template_rollout_never_imports_pydantic() -> None:
    """Minting, validating, canonical args, the schema, and a rollout of a plain template
    (through the runner's prompt and reward normalizers) load neither pydantic nor
    pydantic_core."""
    done = subprocess.run([sys.executable, "-c", PYDANTIC_FREE], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    slug, prompt, reward, properties = report["result"]
    assert slug.startswith("count-letter.v1-")
    assert prompt == {"prompt": "count r in raspberry", "info": [1, {"a": None}]}
    assert reward == {"score": 1.0, "info": {"nan": "NaN", "n": [2]}}
    assert properties == ["letter", "note", "ratio", "strict", "times", "word"]
    if report["pydantic"] and loads_pydantic("hud.task"):
        pytest.xfail("hud.task itself still imports pydantic (being made plain elsewhere)")
    assert report["pydantic"] == []

"""Harbor's task format, read and checked: task.toml, a task folder, an imported env's spec.

A Harbor task is a folder:

    task.toml          [agent] timeout_sec, [verifier] timeout_sec and env, [environment]
                       (docker_image, workdir, allow_internet, cpus, memory...), [solution] env
    instruction.md     the instruction: the agent's prompt, verbatim
    environment/       Dockerfile and its build context (unless [environment] docker_image)
    tests/test.sh      the verifier: writes /logs/verifier/reward.txt (a number) or
                       /logs/verifier/reward.json
    solution/solve.sh  optional reference solution

An env made by `hud harbor import` keeps each task's folder (without environment/) under
`tasks/<id>/`, the one environment/ its tasks share at its top, and `harbor.json` (the
`EnvSpec`): the env's name, its tasks, and the settings its tasks share.

Design decisions:
- task.toml is read as leniently as Harbor reads it: keys hud does not use are kept and
  ignored (Harbor adds keys between schema versions). A key hud uses with the wrong type
  or a value that makes no sense (a negative timeout) is an error naming the file, the
  key and the value.
- Both sides read tasks with this module: the importer on the host, the env in the
  container (`hud.harbor.env`), so a task means the same thing in both places.
- What hud cannot run the way Harbor would is refused here, by name: a multi-container
  (docker-compose) or Windows environment, and `${VAR}` values in [verifier] or
  [solution] env (Harbor fills them from the host's environment; a hud image carries no
  host secrets).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hud.clients.untrusted import loads
from hud.errors import ConfigError

TASK_TOML = "task.toml"
INSTRUCTION = "instruction.md"
TEST_SCRIPT = "tests/test.sh"
SOLVE_SCRIPT = "solution/solve.sh"
ENVIRONMENT = "environment"
SPEC_FILE = "harbor.json"
TASKS_DIR = "tasks"
#: what `hud build` records about the tasks' image inside it (hud.harbor.base)
IMAGE_INFO = "/etc/hud/harbor/image.json"
#: Harbor's default for both timeouts (seconds)
DEFAULT_TIMEOUT = 600.0
LAYOUT = ("a Harbor task folder holds task.toml, instruction.md, environment/Dockerfile "
          "and tests/test.sh (solution/solve.sh optional)")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_HOST_REF = re.compile(r"\$\{[^}]*\}")
#: an image reference as it lands on docker's argv: printable, no spaces, never an option
_IMAGE_REF = re.compile(r"[^-\s\x00-\x1f\x7f-\x9f][^\s\x00-\x1f\x7f-\x9f]{0,1023}")


def _image_ref(value: str | None) -> str | None:
    if value is not None and not _IMAGE_REF.fullmatch(value):
        raise ValueError(f"docker_image {value[:200]!r} is not an image reference: it is "
                         f"empty, starts with '-' (docker would read it as an option) or "
                         f"holds spaces or control characters; name the image as "
                         f"NAME:TAG")
    return value
_Seconds = Field(default=DEFAULT_TIMEOUT, gt=0, allow_inf_nan=False)


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class VerifierConfig(_Section):
    """[verifier]: how long tests/test.sh may run, and its extra environment."""

    timeout_sec: float = _Seconds
    env: dict[str, str] = Field(default_factory=dict)


class AgentConfig(_Section):
    """[agent]: how long the agent may work."""

    timeout_sec: float = _Seconds


class EnvironmentConfig(_Section):
    """[environment]: the image and how the container runs."""

    docker_image: str | None = None
    workdir: str | None = None
    allow_internet: bool = True
    os: str = "linux"

    check_docker_image = field_validator("docker_image")(_image_ref)


class SolutionConfig(_Section):
    """[solution]: the extra environment of solution/solve.sh."""

    env: dict[str, str] = Field(default_factory=dict)


class TaskConfig(_Section):
    """One task.toml (unknown keys and sections kept, as Harbor keeps them)."""

    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    solution: SolutionConfig = Field(default_factory=SolutionConfig)


class EnvSpec(BaseModel):
    """harbor.json: an imported env's tasks and the settings they share."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    name: str
    #: template id -> the task's folder name under tasks/ (its Harbor name)
    tasks: dict[str, str]
    #: the prebuilt image the tasks name ([environment] docker_image), else None: the
    #: env's environment/ folder holds the Dockerfile and its context
    docker_image: str | None = None
    workdir: str | None = None
    allow_internet: bool = True

    check_docker_image = field_validator("docker_image")(_image_ref)


@dataclass(frozen=True)
class HarborTask:
    """A Harbor task folder, read and checked."""

    path: Path
    config: TaskConfig
    instruction: str

    @property
    def name(self) -> str:
        """The task's Harbor name: its folder's name."""
        return self.path.name

    @property
    def id(self) -> str:
        """The hud template id: the name with anything but letters, digits, `_.-` as `-`."""
        return template_id(self.path.name)

    @property
    def has_solution(self) -> bool:
        return (self.path / SOLVE_SCRIPT).is_file()


def template_id(name: str) -> str:
    """A template id from a Harbor task name (`fix the bug` → `fix-the-bug`)."""
    return _SAFE_ID.sub("-", name).strip("-.") or "task"


def _describe(exc: ValidationError) -> str:
    parts = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item["loc"])
        if len(item["loc"]) > 1:
            where = f"[{item['loc'][0]}] {'.'.join(str(p) for p in item['loc'][1:])}"
        parts.append(f"{where}: {item['msg']} (got {item.get('input')!r:.60})")
    return "; ".join(parts)


def read_config(path: Path) -> TaskConfig:
    """Parse and check one task.toml.

    Raises:
        ConfigError: it is missing, not TOML, or a key hud uses has a bad value.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; {LAYOUT} (an empty task.toml takes Harbor's "
                          f"defaults)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix its syntax (key = value "
                          f"lines under [agent], [verifier], [environment] tables)") from None
    try:
        config = TaskConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}; fix the value (timeouts are positive "
                          f"seconds, allow_internet is true or false)") from None
    for section in ("verifier", "solution"):
        for key, value in getattr(config, section).env.items():
            if _HOST_REF.search(value):
                raise ConfigError(
                    f"{path}: [{section}] env.{key} = {value!r} takes a value from the host's "
                    f"environment, which a hud image does not carry; write the value in, or "
                    f"drop the key")
    if config.environment.os.lower() != "linux":
        raise ConfigError(f"{path}: [environment] os = {config.environment.os!r}; hud runs "
                          f"Linux containers only")
    return config


def _instruction(path: Path) -> str:
    file = path / INSTRUCTION
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file} is missing: the instruction (the agent's prompt) goes "
                          f"there; {LAYOUT}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}; write the instruction as UTF-8 "
                          f"text") from None
    if not text.strip():
        raise ConfigError(f"{file} is empty; write the task's instruction there")
    return text


def read_task(path: str | Path, *, environment: bool = True) -> HarborTask:
    """Read and check the Harbor task folder `path`.

    Args:
        path: the task folder.
        environment: whether the folder must carry its environment (environment/Dockerfile,
            unless task.toml names a docker_image); an imported env keeps it elsewhere.

    Raises:
        ConfigError: the folder or one of its required files is missing or malformed (the
            message names the file and the fix), or the task needs what hud cannot run.
    """
    # absolute, so `.` (run inside the task folder) keeps its name; links are not resolved
    path = Path(os.path.abspath(path))
    if not path.is_dir():
        raise ConfigError(f"{path} is not a directory; {LAYOUT}")
    config = read_config(path / TASK_TOML)
    instruction = _instruction(path)
    if not (path / TEST_SCRIPT).is_file():
        raise ConfigError(f"{path / TEST_SCRIPT} is missing: Harbor's verifier, which writes "
                          f"the reward to /logs/verifier/reward.txt (or reward.json); add it")
    env_dir = path / ENVIRONMENT
    for compose in ("docker-compose.yaml", "docker-compose.yml"):
        if (env_dir / compose).is_file():
            raise ConfigError(f"{env_dir / compose}: a multi-container environment; hud runs "
                              f"one container per rollout: use a single Dockerfile")
    if environment and config.environment.docker_image is None \
            and not (env_dir / "Dockerfile").is_file():
        raise ConfigError(f"{env_dir / 'Dockerfile'} is missing; add the task's Dockerfile "
                          f"there, or name a prebuilt image with [environment] docker_image "
                          f"in {path / TASK_TOML}")
    return HarborTask(path=path, config=config, instruction=instruction)


def read_spec(env_dir: str | Path) -> EnvSpec:
    """The harbor.json of an env made by `hud harbor import`.

    Raises:
        ConfigError: it is missing or malformed.
    """
    file = Path(env_dir) / SPEC_FILE
    try:
        data: Any = loads(file.read_text(encoding="utf-8"))
        return EnvSpec.model_validate(data)
    except FileNotFoundError:
        raise ConfigError(f"{file} is missing: {env_dir} was not made by `hud harbor import` "
                          f"(make one with `hud harbor import TASK_DIR... -o ENV`)") from None
    except (OSError, ValueError) as exc:  # ValidationError is a ValueError
        raise ConfigError(f"{file} is malformed ({exc}); import the tasks again with "
                          f"`hud harbor import`") from None


def write_spec(env_dir: Path, spec: EnvSpec) -> Path:
    """Write harbor.json into `env_dir`."""
    file = env_dir / SPEC_FILE
    file.write_text(json.dumps(spec.model_dump(mode="json"), indent=2) + "\n")
    return file

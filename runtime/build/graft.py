"""Fits the portable runtime into a root image: users, folders, the programs it execs.

Runs in the image being built (images/portable/base.Dockerfile), once the tree of
hud.build.portable is at /opt/hud, on that tree's own interpreter:

    RUN ["/opt/hud/venv/bin/python3", "-I", "-m", "hud.build.graft"]

so it needs nothing from the root: no shell, no useradd, no Python. It makes what the
Debian base layer makes with apt and useradd (images/base/Dockerfile):

- the users `agent` (uid 1000) and `hud-grader` (hud.build.accounts). The agent's login
  shell is the root's /bin/bash, else the carried bash.
- /workspace (the agent's: the uid and gid `agent` has, 1000 unless the root had its own
  `agent` already), /opt/hud/env (root's, 0700: the env's code and graders),
  /var/lib/hud/grade (root's, 0711), /etc/hud/entrypoint.d.
- for each program the runtime execs (hud.build.portable.TOOLS) that the root lacks on
  the agent's PATH, a link /usr/local/bin/NAME -> /opt/hud/tools/NAME; OpenSSH's
  sftp-server where the ssh capability looks for it; /usr/local/bin/hud. A program the
  root has is left alone: the agent and task code keep the image's own. hud itself runs
  the carried ones whatever the root has (hud.capabilities.programs looks in
  /opt/hud/tools first), so a busybox `setpriv` or `timeout` lacking an option hud passes
  is never what it runs.
- a check that the runtime is self-contained on this root: every extension module hud
  carries is imported, and the build fails if a shared library came from outside
  /opt/hud (or one does not load at all).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import sysconfig
import warnings
from pathlib import Path

from hud.build.accounts import AGENT, AGENT_UID, Accounts
from hud.build.portable import PREFIX, SFTP_SERVER, TOOLS

#: where the runtime looks programs up for the agent (hud.capabilities.users.USER_PATH)
USER_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
LINKS_DIR = "/usr/local/bin"
#: (path, mode, owned by the agent)
FOLDERS = (("/workspace", 0o755, True), (f"{PREFIX}/env", 0o700, False),
           ("/var/lib/hud/grade", 0o711, False), ("/etc/hud/entrypoint.d", 0o755, False))


def has_program(root: Path, name: str) -> bool:
    """Whether the root has `name` on the agent's PATH."""
    return any(os.path.exists(root / folder.lstrip("/") / name) for folder in USER_PATH)


def link_tools(root: Path, prefix: str = PREFIX) -> list[str]:
    """Link the carried programs the root lacks; return the links made."""
    made: list[str] = []
    links = root / LINKS_DIR.lstrip("/")
    wanted = [(f"{LINKS_DIR}/{name}", f"{prefix}/tools/{name}") for name in TOOLS
              if not has_program(root, name)]
    wanted.append((SFTP_SERVER, f"{prefix}/tools/sftp-server"))
    wanted.append((f"{LINKS_DIR}/hud", f"{prefix}/bin/hud"))
    links.mkdir(parents=True, exist_ok=True)
    for path, target in wanted:
        where = root / path.lstrip("/")
        if os.path.lexists(where):
            continue
        where.parent.mkdir(parents=True, exist_ok=True)
        where.symlink_to(target)
        made.append(path)
    return made


def agent_shell(root: Path) -> str:
    """The root's bash, else the carried one (linked into /usr/local/bin by link_tools)."""
    return "/bin/bash" if os.path.exists(root / "bin" / "bash") else f"{LINKS_DIR}/bash"


def make_folders(root: Path, agent_uid: int, agent_gid: int) -> None:
    """The folders of the base layer, with their modes and owners (the agent's ones to
    `agent_uid`:`agent_gid`, the real agent's, as `install -d -o agent` gives them)."""
    for path, mode, agent in FOLDERS:
        where = root / path.lstrip("/")
        where.mkdir(parents=True, exist_ok=True)
        os.chown(where, agent_uid if agent else 0, agent_gid if agent else 0)
        where.chmod(mode)


def graft(root: Path = Path("/"), prefix: str = PREFIX) -> list[str]:
    """Make `root` ready for the runtime carried at `prefix`; return what was done.

    Raises:
        OSError: a file could not be written (the build stops there).
    """
    done = [f"linked {path}" for path in link_tools(root, prefix)]
    accounts = Accounts(root)
    if accounts.add_agent(agent_shell(root)):
        done.append(f"added user agent (uid {AGENT_UID})")
    if accounts.add_grader():
        done.append("added user hud-grader")
    accounts.save()
    agent = accounts.passwd.find(AGENT)
    assert agent is not None
    make_folders(root, int(agent[2]), int(agent[3]))
    return done


def _extension_modules() -> list[str]:
    """Import names of every extension module of the interpreter and the venv."""
    names: list[str] = []
    dynload = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"  # the base's, not the venv's
    names += sorted(path.name.split(".", 1)[0] for path in dynload.glob("*.so"))
    site = Path(sysconfig.get_paths()["platlib"])
    for path in sorted(site.rglob("*.so")):
        parts = [*path.relative_to(site).parts[:-1], path.name.split(".", 1)[0]]
        if all(part.isidentifier() for part in parts):  # not a bundled lib in pkg.libs/
            names.append(".".join(parts))
    return names


def check_self_contained(prefix: str = PREFIX) -> list[str]:
    """Import every carried extension module; return what failed or loaded a shared
    library from outside `prefix` (empty: self-contained)."""
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated stdlib modules (nis, audioop, ...)
        for name in _extension_modules():
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - every failure is reported the same way
                problems.append(f"import {name}: {type(exc).__name__}: {exc}")
    with open("/proc/self/maps") as maps:
        loaded = {line.split()[-1] for line in maps if len(line.split()) >= 6}
    problems += [f"loaded {path} from the image (not {prefix}/lib)" for path in sorted(loaded)
                 if ".so" in os.path.basename(path) and not path.startswith(prefix + "/")]
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -I -m hud.build.graft [--root DIR] [--no-check]`."""
    parser = argparse.ArgumentParser(prog="python -m hud.build.graft",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/"), help="the root to fit")
    parser.add_argument("--prefix", default=PREFIX, help="where the runtime tree is")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the self-contained check (for a root that is not /)")
    args = parser.parse_args(argv)
    for line in graft(args.root, args.prefix):
        print(f"hud graft: {line}")
    if not args.no_check:
        problems = check_self_contained(args.prefix)
        if problems:
            print("hud graft: the carried runtime is not self-contained on this root:\n  "
                  + "\n  ".join(problems) + "\nreport this with the base image's name",
                  file=sys.stderr)
            return 1
        print("hud graft: the runtime loads only its own libraries here")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The portable runtime: hud's interpreter, libraries and tools as one self-contained tree.

`hud build --base-image IMG` on a root that is not Debian 12 (an older Debian, a root with
no Python, another distribution) cannot install hud with the root's own packages. It
carries this tree into IMG at /opt/hud instead (hud.build.graft fits it in there). The tree
is assembled once per hud build, in a stage FROM the Debian 12 hud-base layer
(images/portable/Dockerfile runs `python -I -m hud.build.portable OUT` there):

    /opt/hud/python   the interpreter (Debian 12's CPython: python3.X, python3.X._pth) and
                      its standard library (lib/python3.X)
    /opt/hud/venv     hud and its dependencies: hud-base's venv, re-pointed at /opt/hud/python
    /opt/hud/lib      every shared library those load, Debian 12's glibc and its loader
    /opt/hud/tools    tini (static) and the programs the runtime execs (TOOLS, sftp-server)
    /opt/hud/bin      hud, the entrypoint and pip-staged (the only folder put on PATH)

Design decisions:
- Independent of the root's libc: the interpreter and the tools get PT_INTERP =
  /opt/hud/lib/<loader> and DT_RPATH = /opt/hud/lib (patchelf --force-rpath). DT_RPATH,
  not DT_RUNPATH: the loader searches the executable's DT_RPATH for every object that has
  no DT_RUNPATH of its own, extension modules dlopened later included, and before
  LD_LIBRARY_PATH, so the one entry covers the stdlib's and the wheels' .so files even in
  an image that sets LD_LIBRARY_PATH (CUDA images do). A carried .so that has a run path of
  its own (auditwheel's $ORIGIN) gets it as DT_RPATH plus /opt/hud/lib, so the chain holds.
- Nothing global: no LD_LIBRARY_PATH (it would reach the image's own programs, which task
  code runs). A program the runtime starts from the image runs on the image's loader.
- The libraries are the `ldd` closure of every carried ELF file, resolved here in the
  Debian 12 stage and copied under the names the files ask for.
- `sys.executable` (/opt/hud/venv/bin/python3) is the patched interpreter itself, so a
  subprocess the runtime starts with it works the same.
- The image's PYTHONHOME and PYTHONPATH are for the image's Python (a 3.9 one, say), and
  would break hud's: a `python3.X._pth` file beside the interpreter names its sys.path
  (stdlib, lib-dynload, the venv's site-packages) and so puts it in isolated mode, for
  every start: `hud`, pip, and `sys.executable` subprocesses alike. Its `import site`
  line keeps the venv a venv (sys.prefix, pip installing into it).
- Copies keep modification times, so the compiled .pyc files stay valid: nothing is
  recompiled when `hud task start` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from hud.errors import InfraError
from hud.proc import run

PREFIX = "/opt/hud"
#: programs the runtime execs, which a root may lack or have only in a form without the
#: options hud passes (busybox): carried in tools/, where the runtime takes them from first
#: (hud.capabilities.programs), and linked into /usr/local/bin, the agent's PATH, where the
#: root has none (hud.build.graft); name -> the Debian package it comes from
TOOLS: dict[str, str] = {
    # switches to the agent's and the grading user's uid (hud.capabilities.users)
    "setpriv": "util-linux",
    # gives an interactive ssh session its terminal (`setsid --ctty`, hud.capabilities.shells)
    "setsid": "util-linux",
    # puts the agent's and the grader's processes first in line for the OOM killer
    "choom": "util-linux",
    # bounds a grader's memory, processes and file sizes (hud.grading.bounded)
    "prlimit": "util-linux",
    # removes the grading user's IPC objects (hud.grading.leftovers)
    "ipcrm": "util-linux",
    # the agent's login shell on a root without one; the workspace copy's pipe (scratch)
    "bash": "bash",
    # bounds a command run in the workspace (workspace.run)
    "timeout": "coreutils",
    # empties the agent's folders, as the agent (hud.capabilities.scratch)
    "find": "findutils",
    # gives a locked folder of the agent's back to it before emptying (find -exec chmod)
    "chmod": "coreutils",
    # fills the workspace from the env's project folder, as the agent
    "tar": "tar",
    # resets the agent's home from /etc/skel
    "cp": "coreutils",
}
#: where the ssh capability looks for OpenSSH's sftp-server (hud.capabilities.ssh)
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
#: PID 1; Debian's tini-static needs no loader at all
TINI = "/usr/bin/tini-static"
#: what a runtime never imports: left out of the carried standard library
STDLIB_SKIP = ("test", "idlelib", "tkinter", "turtledemo", "sitecustomize.py")
STEP_TIMEOUT = 120.0


def python_name() -> str:
    """`python3.11`: the interpreter's versioned name (and its stdlib folder's)."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def is_elf(path: Path) -> bool:
    """Whether `path` is a regular file (not a link) that starts with the ELF magic."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def elf_files(roots: Iterable[Path]) -> list[Path]:
    """Every ELF file under `roots`, sorted (links are not followed)."""
    found: list[Path] = []
    for root in roots:
        for folder, _, names in os.walk(root):
            found += [Path(folder, name) for name in names if is_elf(Path(folder, name))]
    return sorted(found)


def _tool(*argv: str) -> str:
    done = run(list(argv), timeout=STEP_TIMEOUT)
    if not done.ok:
        raise InfraError(f"{' '.join(argv)} failed (exit {done.code}): {done.tail(5)}")
    return done.stdout


def parse_ldd(text: str, path: Path) -> dict[str, str]:
    """`ldd`'s answer as {name asked for: file it resolved to} (the loader and vdso left out).

    Raises:
        InfraError: a library was not found (the tree would not run anywhere).
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if not arrow:
            continue
        target = rest.split(" (", 1)[0].strip()
        if target == "not found":
            raise InfraError(f"{path} needs {name}, which is not installed in the build "
                             f"stage; add its package to images/base/Dockerfile")
        if target.startswith("/"):
            found[name] = target
    return found


def closure(files: Iterable[Path]) -> dict[str, str]:
    """The shared libraries `files` load, transitively: {soname: resolved file}.

    Raises:
        InfraError: ldd failed on a dynamic file, or a library is missing.
    """
    libraries: dict[str, str] = {}
    for path in files:
        done = run(["ldd", str(path)], timeout=STEP_TIMEOUT)
        if not done.ok:
            if "not a dynamic executable" in done.stdout + done.stderr:
                continue  # static: needs nothing
            raise InfraError(f"ldd {path} failed (exit {done.code}): {done.tail(5)}")
        libraries.update(parse_ldd(done.stdout, path))
    return libraries


def _rewrite_shebang(path: Path, interpreter: str) -> None:
    lines = path.read_bytes().split(b"\n", 1)
    path.write_bytes(b"#!" + interpreter.encode() + b"\n" + (lines[1] if len(lines) > 1 else b""))


def copy_python(out: Path, prefix: str) -> Path:
    """The interpreter, its standard library and hud's venv, re-pointed; returns the
    copied interpreter."""
    name = python_name()
    binary = Path(os.path.realpath(sys.executable))
    # beside lib/, not in bin/: the folder of the ._pth file becomes sys.base_prefix
    target = out / "python" / name
    target.parent.mkdir(parents=True)
    shutil.copy2(binary, target)
    # dereferenced: Debian links some stdlib files to /etc/pythonX.Y, absent elsewhere
    shutil.copytree(sysconfig.get_paths()["stdlib"], out / "python" / "lib" / name,
                    symlinks=False, ignore=shutil.ignore_patterns(*STDLIB_SKIP))
    venv = out / "venv"
    shutil.copytree(sys.prefix, venv, symlinks=True)
    link = venv / "bin" / "python3"
    link.unlink()
    link.symlink_to(f"{prefix}/python/{name}")
    version = ".".join(map(str, sys.version_info[:3]))
    (venv / "pyvenv.cfg").write_text(
        f"home = {prefix}/python\ninclude-system-site-packages = false\n"
        f"version = {version}\nexecutable = {prefix}/python/{name}\n")
    stdlib = f"{prefix}/python/lib/{name}"
    site = f"{prefix}/venv/lib/{name}/site-packages"
    (target.parent / f"{name}._pth").write_text(
        f"{stdlib}\n{stdlib}/lib-dynload\n{site}\nimport site\n")
    return target


def copy_tools(out: Path, prefix: str, bin_dir: Path) -> list[Path]:
    """tini, TOOLS and sftp-server into tools/; hud, entrypoint, pip-staged into bin/.
    Returns the dynamic executables (everything but tini).

    Raises:
        InfraError: a tool is missing from the build stage.
    """
    tools = out / "tools"
    tools.mkdir()
    wanted = {name: shutil.which(name) for name in TOOLS} | {"sftp-server": SFTP_SERVER}
    packages = {**TOOLS, "sftp-server": "openssh-sftp-server", TINI: "tini"}
    missing = [name for name, path in [*wanted.items(), (TINI, TINI)]
               if not path or not os.path.isfile(path)]
    if missing:
        raise InfraError(f"the build stage lacks {', '.join(missing)} (Debian packages "
                         f"{', '.join(sorted({packages[n] for n in missing}))}); the hud-base "
                         f"layer installs them (images/base/Dockerfile)")
    copied = []
    for name, path in wanted.items():
        assert path is not None
        shutil.copy2(path, tools / name)
        copied.append(tools / name)
    shutil.copy2(TINI, tools / "tini")
    bin_out = out / "bin"
    bin_out.mkdir()
    for script in ("entrypoint", "pip-staged"):
        shutil.copy2(bin_dir / script, bin_out / script)
        # the root may have no /bin/sh at all: the carried bash runs them
        _rewrite_shebang(bin_out / script, f"{prefix}/tools/bash")
    (bin_out / "hud").symlink_to(f"{prefix}/venv/bin/hud")
    return copied


def patch(executables: Iterable[Path], libraries: Iterable[Path], loader: str,
          prefix: str) -> None:
    """Point the executables at the carried loader and libraries; make a carried library's
    own run path a DT_RPATH that ends in the carried libraries.

    Raises:
        InfraError: patchelf failed.
    """
    lib = f"{prefix}/lib"
    for path in executables:
        _tool("patchelf", "--set-interpreter", f"{lib}/{loader}", "--force-rpath",
              "--set-rpath", lib, str(path))
    for path in libraries:
        own = _tool("patchelf", "--print-rpath", str(path)).strip()
        if own:
            _tool("patchelf", "--force-rpath", "--set-rpath", f"{own}:{lib}", str(path))


def assemble(out: Path, prefix: str = PREFIX, bin_dir: Path | None = None) -> None:
    """Assemble the portable runtime under `out`, to be copied to `prefix` in an image.

    Runs in the Debian 12 build stage, on the venv's interpreter.

    Raises:
        InfraError: a tool, a library or patchelf is missing, or a step failed.
    """
    if out.exists():
        raise InfraError(f"{out} already exists; assemble into a fresh folder")
    interpreter = copy_python(out, prefix)
    executables = [interpreter, *copy_tools(out, prefix, bin_dir or Path(prefix) / "bin")]
    carried = elf_files([out / "python", out / "venv", out / "tools"])
    lib = out / "lib"
    lib.mkdir()
    for soname, source in sorted(closure(carried).items()):
        shutil.copy2(source, lib / soname)  # follows the link to the real file
    loader_path = _tool("patchelf", "--print-interpreter", str(interpreter)).strip()
    loader = os.path.basename(loader_path)
    shutil.copy2(loader_path, lib / loader)
    shared = [path for path in [*carried, *elf_files([lib])] if path not in executables
              and path.name != loader and path != out / "tools" / "tini"]
    patch(executables, shared, loader, prefix)


def main(argv: list[str] | None = None) -> int:
    """`python -m hud.build.portable OUT [--prefix /opt/hud]`."""
    parser = argparse.ArgumentParser(prog="python -m hud.build.portable",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to assemble the tree in")
    parser.add_argument("--prefix", default=PREFIX, help="where the tree lives in the image")
    args = parser.parse_args(argv)
    try:
        assemble(args.out, args.prefix)
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

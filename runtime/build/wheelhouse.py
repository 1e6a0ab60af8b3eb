"""The wheelhouse: every Python package an image needs, built on the host.

Inside containers PyPI is unreachable here (TLS fails) and on an air-gapped host there is
no network at all, so the images install with `pip install --no-index --find-links`
from a folder of wheels made on the host and copied into the build context.

Design decisions:
- The hud wheel is made from what is installed, so the image runs the host's runtime:
  * a source checkout or editable install (a `setup.cfg` beside the package's parent
    folder) is built with `pip wheel --no-deps`, with SOURCE_DATE_EPOCH pinned so the same
    source gives the same bytes and Docker's layer cache holds;
  * an installed wheel (no source) is re-packed from its installed files and RECORD,
    which needs neither the network nor the original file.
  Either way it is cached under the source fingerprint, so an unchanged install is free.
- Dependencies are fetched once for the image's interpreter (Debian 12: CPython 3.11,
  manylinux, the host's machine type) with `pip download --only-binary=:all:` and cached in
  `~/.cache/hud/wheelhouse/deps-<key>/`, keyed by the requirement set and target; the second
  build needs no network. `HUD_WHEELHOUSE=DIR` supplies a carried wheelhouse instead.
- The wheels never stay in an image: the build installs them in a throwaway stage and
  copies only the installed files into the image (images/base/Dockerfile, pip-staged.sh).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import platform
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from hud.errors import ConfigError, InfraError
from hud.proc import run

DIST = "hud-python"
PYTHON_VERSION = "3.11"  # Debian 12's python3
GLIBC_MINORS = range(17, 37)  # manylinux_2_17 .. manylinux_2_36 (Debian 12 has glibc 2.36)
PIP_TIMEOUT = 900.0
KEEP_HUD_WHEELS = 4
#: in the dependency folder: hud's requirements, for `pip install -r` in the base image
REQUIREMENTS = "requirements.txt"


def cache_root() -> Path:
    """`$HUD_CACHE`, else `$XDG_CACHE_HOME/hud`, else `~/.cache/hud`."""
    if os.environ.get("HUD_CACHE"):
        return Path(os.environ["HUD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hud"


def source_dir() -> Path | None:
    """The project checkout behind an editable/source install, or None for a wheel install."""
    import hud

    root = Path(hud.__file__).resolve().parent.parent
    return root if (root / "setup.cfg").is_file() and (root / "runtime").is_dir() else None


def fingerprint() -> str:
    """A short hash of the installed hud: its source files, or its wheel's RECORD."""
    digest = hashlib.sha256()
    src = source_dir()
    if src is not None:
        # images/ and templates/ ship in the wheel too (hud/_assets): they count
        for top in ("runtime", "cli", "images", "templates", "setup.cfg", "setup.py",
                    "pyproject.toml"):
            path = src / top
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for file in files:
                if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                    digest.update(str(file.relative_to(src)).encode())
                    digest.update(file.read_bytes())
    else:
        record = metadata.distribution(DIST).read_text("RECORD") or ""
        digest.update(record.encode())
    return digest.hexdigest()[:16]


def requirements(wheel_file: Path) -> list[str]:
    """The install requirements (no extras) in a wheel's METADATA.

    Read from the wheel rather than the installed metadata: an editable install's
    metadata goes stale when setup.cfg changes, the wheel is what pip will resolve.
    """
    with zipfile.ZipFile(wheel_file) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    reqs = [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Requires-Dist:")]
    return sorted(r for r in reqs if "extra ==" not in r.replace('"', "'").replace("'", ""))


def platform_tags() -> list[str]:
    """The manylinux platform tags the image's interpreter accepts."""
    machine = platform.machine() or "x86_64"
    tags = [f"manylinux_2_{minor}_{machine}" for minor in GLIBC_MINORS]
    return [*tags, f"manylinux2014_{machine}", "linux_" + machine]


def _scratch(cached: Path) -> Path:
    """A fresh folder beside the cache entry `cached`, private to this process (several
    builds may fill the same entry at once: tests in parallel, two `hud build`s)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cached.parent))


def _publish(tmp: Path, cached: Path, complete: Callable[[Path], bool]) -> None:
    """Move the finished folder `tmp` into place as `cached`. When a concurrent build got
    there first with a complete entry (the same content: the key says so), keep it."""
    try:
        tmp.rename(cached)
        return
    except OSError:
        if complete(cached):
            shutil.rmtree(tmp, ignore_errors=True)
            return
    shutil.rmtree(cached, ignore_errors=True)
    tmp.rename(cached)


def _hud_wheel(dest: Path) -> Path:
    """Build (or reuse from the cache) the hud wheel of the installed hud."""
    key = fingerprint()
    cached = cache_root() / "wheelhouse" / f"hud-{key}"
    wheels = list(cached.glob("*.whl")) if cached.is_dir() else []
    if not wheels:
        tmp = _scratch(cached)
        src = source_dir()
        try:
            if src is not None:
                _build_from_source(src, tmp)
            else:
                _repack_installed(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _publish(tmp, cached, lambda entry: any(entry.glob("*.whl")))
        wheels = list(cached.glob("*.whl"))
        # Each source edit makes a new entry; keep the few most recent.
        entries = sorted(cached.parent.glob("hud-*"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-KEEP_HUD_WHEELS]:
            shutil.rmtree(old, ignore_errors=True)
    shutil.copy2(wheels[0], dest / wheels[0].name)
    return dest / wheels[0].name


def _build_from_source(src: Path, out: Path) -> None:
    """`pip wheel` a clean copy of the checkout (an in-tree build/ could hold stale files)."""
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out)]
    try:  # offline-friendly: build with the host's setuptools when it has them
        import setuptools  # noqa: F401 - only: can this host build without isolation?
        import wheel  # noqa: F401 - same

        argv.append("--no-build-isolation")
    except ImportError:
        pass
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    copy = out / "src"
    # Hidden files are never package data; skipping them also skips editors' temp files.
    # Only the named source folders are copied, so a stale top-level build/ never comes
    # along (and runtime/build/, the hud.build package, must).
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*")
    for name in ("runtime", "cli", "images", "templates"):
        if (src / name).is_dir():
            shutil.copytree(src / name, copy / name, ignore=ignore)
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "LICENSE"):
        if (src / name).is_file():
            shutil.copy2(src / name, copy / name)
    try:
        done = run([*argv, str(copy)], timeout=PIP_TIMEOUT, env=env)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    if not done.ok or not list(out.glob("*.whl")):
        raise InfraError(f"building the hud wheel from {src} failed: {done.tail(10)}")


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def _repack_installed(out: Path) -> None:
    """Zip the installed distribution's files back into a wheel (wheel installs)."""
    dist = metadata.distribution(DIST)
    files = [f for f in (dist.files or []) if not str(f).startswith("..")
             and "__pycache__" not in str(f)]
    info_dir = next((str(f).split("/")[0] for f in files if ".dist-info/" in str(f)), None)
    if info_dir is None or not any(str(f) == f"{info_dir}/WHEEL" for f in files):
        raise ConfigError(f"cannot re-pack the installed {DIST}: no .dist-info/WHEEL; "
                          f"reinstall it from a wheel or a source checkout")
    version = dist.version
    name = f"hud_python-{version}-py3-none-any.whl"
    skip = {f"{info_dir}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    rows: list[list[str]] = []
    with zipfile.ZipFile(out / name, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(files, key=str):
            if str(rel) in skip:
                continue
            data = Path(str(rel.locate())).read_bytes()
            info = zipfile.ZipInfo(str(rel), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
            rows.append(_record_line(str(rel), data))
        rows.append([f"{info_dir}/RECORD", "", ""])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        zf.writestr(zipfile.ZipInfo(f"{info_dir}/RECORD", date_time=(1980, 1, 1, 0, 0, 0)),
                    buf.getvalue())


def _dependency_key(reqs: list[str]) -> str:
    text = "\n".join([*reqs, PYTHON_VERSION, *platform_tags()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fetch_wheels(dest: Path, reqs: list[str]) -> int:
    """Copy the wheels of `reqs` (and their dependencies) for the image's Python into
    `dest`, downloading them into the cache on a miss; returns how many.

    Raises:
        InfraError: the download failed.
    """
    cached = cache_root() / "wheelhouse" / f"deps-{_dependency_key(reqs)}"
    if not (cached / ".complete").is_file():
        tmp = _scratch(cached)
        argv = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                "--python-version", PYTHON_VERSION, "--implementation", "cp",
                "--abi", "cp" + PYTHON_VERSION.replace(".", ""), "--abi", "abi3", "--abi", "none",
                "-d", str(tmp)]
        for tag in platform_tags():
            argv += ["--platform", tag]
        done = run([*argv, *reqs], timeout=PIP_TIMEOUT,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        if not done.ok:
            shutil.rmtree(tmp, ignore_errors=True)
            raise InfraError(
                f"downloading hud's dependencies for the image (CPython {PYTHON_VERSION}, "
                f"{platform.machine()}) failed: {done.tail(8)}\nthe host needs PyPI (or a pip "
                f"index/find-links) once; or set HUD_WHEELHOUSE to a carried wheelhouse"
            )
        (tmp / ".complete").write_text("\n".join(reqs) + "\n")
        _publish(tmp, cached, lambda entry: (entry / ".complete").is_file())
    count = 0
    for wheel_file in cached.glob("*.whl"):
        shutil.copy2(wheel_file, dest / wheel_file.name)
        count += 1
    return count


def make_wheelhouse(dest: Path, hud_dest: Path | None = None) -> list[str]:
    """Fill `dest` with every dependency wheel and a `requirements.txt` naming hud's own
    requirements, and `hud_dest` (default: `dest`) with the hud wheel; return the wheel
    file names.

    The base image installs the two folders in separate build steps, so an edit to hud
    reinstalls only the hud wheel while the dependencies' layer stays cached.
    `HUD_WHEELHOUSE=DIR` (a carried wheelhouse, e.g. on an air-gapped host) is used for the
    dependencies instead of the cache; it must hold every one of them.

    Raises:
        InfraError: the hud wheel could not be built or the dependencies downloaded.
        ConfigError: `HUD_WHEELHOUSE` is not a directory.
    """
    dest.mkdir(parents=True, exist_ok=True)
    carried = os.environ.get("HUD_WHEELHOUSE")
    if carried:
        folder = Path(carried)
        if not folder.is_dir():
            raise ConfigError(f"HUD_WHEELHOUSE={carried!r} is not a directory of wheels")
        for wheel_file in folder.glob("*.whl"):
            if not wheel_file.name.startswith("hud_python-"):
                shutil.copy2(wheel_file, dest / wheel_file.name)
    hud_dest = hud_dest or dest
    hud_dest.mkdir(parents=True, exist_ok=True)
    hud_wheel = _hud_wheel(hud_dest)
    reqs = requirements(hud_wheel)
    if not carried:
        fetch_wheels(dest, reqs)
    (dest / REQUIREMENTS).write_text("".join(f"{req}\n" for req in reqs))
    return sorted({p.name for folder in (dest, hud_dest) for p in folder.glob("*.whl")})

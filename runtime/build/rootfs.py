"""Build a Debian root filesystem image with no container registry: debootstrap + import.

`hud images bootstrap` runs `debootstrap --variant=minbase` against a Debian mirror and
`docker import`s the result as `hud-rootfs:<suite>`. Hosts that reach no registry (this
machine, CI, an air-gapped site with a local mirror) build every hud layer on top of it.

Design decisions:
- The mirror defaults to the host's own apt configuration (deb822 `URIs:` in
  /etc/apt/sources.list.d/*.sources, else `deb` lines in /etc/apt/sources.list): whatever
  the host already trusts and reaches. No mirror hostname is written into hud.
- The packages the base layer needs (python3, python3-venv, tini, ...) are included at
  debootstrap time, so building the base layer on this rootfs needs no network at all.
  The base Dockerfile still installs whatever is missing, so a stock Debian image works.
- The rootfs keeps its apt sources (the same mirror), so author Dockerfiles can still
  `RUN apt-get install ...` on top.
- Any suite the mirror carries works (`suite="bullseye", include=()` gives a Debian 11
  minbase root with no Python: a root for `--base-image`, where hud carries its runtime
  in); `include` is for bookworm, the root of hud's own layers.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from hud.build.docker import docker, ensure_engine
from hud.errors import ConfigError, DockerError, InfraError
from hud.proc import run

DEFAULT_SUITE = "bookworm"
ROOTFS_REPO = "hud-rootfs"
DEBOOTSTRAP_TIMEOUT = 1800.0
# What the base layer needs; present at bootstrap time so its build is offline.
INCLUDE = ("python3", "python3-venv", "tini", "ca-certificates", "util-linux", "procps",
           "openssh-sftp-server")
_SOURCES_D = Path("/etc/apt/sources.list.d")
_SOURCES_LIST = Path("/etc/apt/sources.list")
# Suites of Debian's main archive (not -security, not third-party repositories).
_DEBIAN_SUITES = ("buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
                  "oldstable", "stable", "testing", "unstable")
_MAIN_SUITE = re.compile(rf"^({'|'.join(_DEBIAN_SUITES)})(-updates)?$")


def rootfs_tag(suite: str = DEFAULT_SUITE) -> str:
    """The image tag a bootstrapped rootfs gets, e.g. `hud-rootfs:bookworm`."""
    return f"{ROOTFS_REPO}:{suite}"


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
        elif line.startswith("#") or line[0].isspace():
            continue
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key.strip().lower()] = value.strip()
    return stanzas


def _is_debian_main(uri: str, suites: list[str], components: list[str]) -> bool:
    return (uri.startswith(("http://", "https://", "file:/"))
            and "main" in components
            and any(_MAIN_SUITE.match(s) and not s.endswith("-security") for s in suites)
            and "security" not in uri)


def mirror_candidates(sources_d: Path | None = None,
                      sources_list: Path | None = None) -> list[str]:
    """Debian main-archive URIs from the host's apt sources, in the order apt sees them."""
    sources_d = sources_d or _SOURCES_D
    sources_list = sources_list or _SOURCES_LIST
    found: list[str] = []
    if sources_d.is_dir():
        for path in sorted(sources_d.glob("*.sources")):
            for stanza in _deb822_stanzas(path.read_text(errors="replace")):
                if "deb" not in stanza.get("types", "").split():
                    continue
                if stanza.get("enabled", "yes").lower() == "no":
                    continue
                suites = stanza.get("suites", "").split()
                comps = stanza.get("components", "").split()
                for uri in stanza.get("uris", "").split():
                    if _is_debian_main(uri, suites, comps) and uri not in found:
                        found.append(uri)
    if sources_list.is_file():
        for line in sources_list.read_text(errors="replace").splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) < 4 or parts[0] != "deb":
                continue
            rest = [p for p in parts[1:] if not p.startswith("[")]
            rest = [p for p in rest if not p.endswith("]")] if "[" in line else rest
            uri, suite, comps = rest[0], rest[1], rest[2:]
            if _is_debian_main(uri, [suite], comps) and uri not in found:
                found.append(uri)
    # Debian's own archive first: a Debian suite name is what debootstrap will ask for.
    return sorted(found, key=lambda u: 0 if u.rstrip("/").endswith("/debian") else 1)


def default_mirror() -> str:
    """The Debian mirror this host's apt uses.

    Raises:
        ConfigError: the host has no Debian main-archive source; pass --mirror URL.
    """
    found = mirror_candidates()
    if not found:
        raise ConfigError(
            f"no Debian mirror found in {_SOURCES_D}/*.sources or {_SOURCES_LIST}; "
            f"pass one with `hud images bootstrap --mirror URL`"
        )
    return found[0]


def bootstrap(suite: str = DEFAULT_SUITE, mirror: str | None = None, tag: str | None = None,
              include: tuple[str, ...] = INCLUDE) -> str:
    """Debootstrap `suite` from `mirror` and import it into Docker as `tag`.

    Returns:
        The image tag (default `hud-rootfs:<suite>`).

    Raises:
        ConfigError: no mirror given or found.
        InfraError: debootstrap is missing, not root, or debootstrap failed (log tail).
        DockerError: the engine is down or `docker import` failed.
    """
    ensure_engine()
    mirror = mirror or default_mirror()
    tag = tag or rootfs_tag(suite)
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if not debootstrap:
        raise InfraError("debootstrap is not installed; install it as root with "
                         "`bash scripts/setup` (or `apt-get install debootstrap`)")
    if os.geteuid() != 0:
        raise InfraError("debootstrap needs root (it creates device nodes and chroots); run "
                         "`sudo hud images bootstrap`, or load a rootfs built elsewhere with "
                         "`hud images load FILE`")
    work = Path(tempfile.mkdtemp(prefix="hud-rootfs-", dir=os.environ.get("HUD_TMPDIR")))
    try:
        root = work / "root"
        extra = [f"--include={','.join(include)}"] if include else []
        done = run([debootstrap, "--variant=minbase", *extra, suite, str(root), mirror],
                   timeout=DEBOOTSTRAP_TIMEOUT)
        if not done.ok:
            log = root / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace")[-2000:] if log.is_file() else done.tail(15)
            raise InfraError(f"debootstrap {suite} from {mirror} failed (exit {done.code}):\n"
                             f"{detail}\ncheck that the mirror is reachable, or pass --mirror URL")
        _trim(root)
        archive = work / "rootfs.tar"
        packed = run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(archive), "."],
                     timeout=600)
        if not packed.ok:
            raise InfraError(f"packing the rootfs failed: {packed.tail(5)}")
        imported = docker("import", "--change", 'CMD ["/bin/bash"]',
                          "--change", "ENV LANG=C.UTF-8",
                          "--message", f"hud bootstrap {suite} (debootstrap minbase)",
                          str(archive), tag, timeout=600)
        if not imported.ok:
            raise DockerError(f"docker import of the {suite} rootfs failed: {imported.tail(5)}")
        return tag
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _trim(root: Path) -> None:
    """Drop caches a container never needs (downloaded .debs, apt lists, docs)."""
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                "usr/share/man", "usr/share/info"):
        target = root / sub
        if not target.is_dir():
            continue
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                if child.name != "partial":
                    shutil.rmtree(child, ignore_errors=True)
            elif child.name != "lock":
                child.unlink(missing_ok=True)

"""The carried runtime's parts without Docker: accounts and links on a folder root, ldd, tags."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hud import __version__
from hud.build.foreign import describe, is_debian12, parse_os_release
from hud.build.graft import agent_shell, graft, link_tools
from hud.build.layers import layer_tag
from hud.build.portable import TOOLS, elf_files, parse_ldd
from hud.errors import InfraError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to uid 1000 needs root")

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd4a7e2000)
\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f2a1c600000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2a1c41f000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f2a1c8a0000)
"""


def _root(tmp_path: Path, passwd: str, group: str, *, shadow: bool = True) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "skel").mkdir(parents=True)
    (root / "etc" / "skel" / ".bashrc").write_text("# skel\n")
    (root / "etc" / "passwd").write_text(passwd)
    (root / "etc" / "group").write_text(group)
    if shadow:
        (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
        (root / "etc" / "gshadow").write_text("root:*::\n")
    (root / "bin").mkdir()
    (root / "bin" / "bash").write_text("")
    return root


DEBIAN_PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/bin/false\n"
DEBIAN_GROUP = "root:x:0:\nadm:x:4:\nnogroup:x:65534:\n"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@needs_root
def test_graft_adds_the_users_as_useradd_would(tmp_path: Path) -> None:
    """agent (1000, own group, home from skel, bash) and hud-grader (999, no login), with
    locked passwords in shadow and gshadow."""
    root = _root(tmp_path, DEBIAN_PASSWD, DEBIAN_GROUP)
    graft(root)
    assert _lines(root / "etc/passwd")[-2:] == [
        "agent:x:1000:1000::/home/agent:/bin/bash",
        "hud-grader:x:999:999::/nonexistent:/usr/sbin/nologin"]
    assert _lines(root / "etc/group")[-2:] == ["agent:x:1000:", "hud-grader:x:999:"]
    assert [line.split(":")[:2] for line in _lines(root / "etc/shadow")[-2:]] == [
        ["agent", "!"], ["hud-grader", "!"]]
    assert _lines(root / "etc/gshadow")[-2:] == ["agent:!::", "hud-grader:!::"]
    bashrc = (root / "home/agent/.bashrc").stat()
    assert (bashrc.st_uid, bashrc.st_gid) == (1000, 1000)


@needs_root
def test_graft_makes_the_folders_with_their_modes(tmp_path: Path) -> None:
    """/workspace is the agent's; /opt/hud/env root's 0700; the grading folder 0711."""
    root = _root(tmp_path, DEBIAN_PASSWD, DEBIAN_GROUP)
    graft(root)
    seen = {path: ((st := (root / path).stat()).st_uid, oct(st.st_mode & 0o7777))
            for path in ("workspace", "opt/hud/env", "var/lib/hud/grade", "etc/hud/entrypoint.d")}
    assert seen == {"workspace": (1000, "0o755"), "opt/hud/env": (0, "0o700"),
                    "var/lib/hud/grade": (0, "0o711"), "etc/hud/entrypoint.d": (0, "0o755")}


@needs_root
def test_an_existing_agent_is_kept(tmp_path: Path) -> None:
    """A root that has `agent` already keeps it as it is (uid and shell included)."""
    root = _root(tmp_path, DEBIAN_PASSWD + "agent:x:1001:1001::/home/agent:/bin/sh\n",
                 DEBIAN_GROUP + "agent:x:1001:\n")
    graft(root)
    assert [line for line in _lines(root / "etc/passwd") if line.startswith("agent:")] == [
        "agent:x:1001:1001::/home/agent:/bin/sh"]


@needs_root
def test_the_user_holding_uid_1000_is_replaced(tmp_path: Path) -> None:
    """Another user with uid 1000 goes, with its home, its group and its memberships."""
    root = _root(tmp_path, DEBIAN_PASSWD + "ubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n",
                 "root:x:0:\nadm:x:4:syslog,ubuntu\nubuntu:x:1000:\n")
    (root / "home/ubuntu").mkdir(parents=True)
    graft(root)
    assert not (root / "home/ubuntu").exists()
    assert "ubuntu" not in (root / "etc/passwd").read_text() + (root / "etc/group").read_text()
    assert "adm:x:4:syslog" in _lines(root / "etc/group")
    assert "agent:x:1000:1000::/home/agent:/bin/bash" in _lines(root / "etc/passwd")


@needs_root
def test_grader_takes_the_next_free_system_uid(tmp_path: Path) -> None:
    """With 999 taken, hud-grader gets 998 (counting down, as useradd --system does)."""
    root = _root(tmp_path, DEBIAN_PASSWD + "systemd-x:x:999:999::/:/bin/false\n",
                 DEBIAN_GROUP + "systemd-x:x:999:\n")
    graft(root)
    assert "hud-grader:x:998:998::/nonexistent:/usr/sbin/nologin" in _lines(root / "etc/passwd")


@needs_root
def test_a_root_without_account_files_gets_them(tmp_path: Path) -> None:
    """A root with no /etc/passwd (a scratch image) gets root, agent and hud-grader, and
    no shadow file that was not there; the agent's shell is the carried bash."""
    root = tmp_path / "bare"
    root.mkdir()
    graft(root)
    assert [line.split(":")[0] for line in _lines(root / "etc/passwd")] == [
        "root", "agent", "hud-grader"]
    assert "agent:x:1000:1000::/home/agent:/usr/local/bin/bash" in _lines(root / "etc/passwd")
    assert not (root / "etc/shadow").exists()


def test_only_missing_programs_are_linked(tmp_path: Path) -> None:
    """A program the root has on the agent's PATH is left alone; the others, sftp-server
    and hud are linked to the carried ones."""
    (tmp_path / "usr/bin").mkdir(parents=True)
    for name in ("setpriv", "find", "bash"):
        (tmp_path / "usr/bin" / name).write_text("")
    made = link_tools(tmp_path)
    expected = sorted({f"/usr/local/bin/{n}" for n in TOOLS} - {
        "/usr/local/bin/setpriv", "/usr/local/bin/find", "/usr/local/bin/bash"})
    assert sorted(made) == sorted([*expected, "/usr/lib/openssh/sftp-server",
                                   "/usr/local/bin/hud"])
    assert os.readlink(tmp_path / "usr/local/bin/choom") == "/opt/hud/tools/choom"
    assert link_tools(tmp_path) == []  # a second run changes nothing


def test_agent_shell_is_the_roots_bash_else_the_carried_one(tmp_path: Path) -> None:
    """/bin/bash when the root has it, /usr/local/bin/bash (the carried one) otherwise."""
    assert agent_shell(tmp_path) == "/usr/local/bin/bash"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "bash").write_text("")
    assert agent_shell(tmp_path) == "/bin/bash"


def test_ldd_output_becomes_names_and_files() -> None:
    """Resolved libraries are kept by the name asked for; vdso and the loader are not."""
    assert parse_ldd(LDD, Path("/x")) == {"libssl.so.3": "/lib/x86_64-linux-gnu/libssl.so.3",
                                          "libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6"}


def test_a_library_ldd_cannot_find_fails_the_assembly() -> None:
    """`not found` names the file and the library instead of carrying a broken tree."""
    with pytest.raises(InfraError, match=r"/opt/x.so needs libfoo.so.1, which is not installed"):
        parse_ldd("\tlibfoo.so.1 => not found\n", Path("/opt/x.so"))


def test_elf_files_are_found_by_their_magic(tmp_path: Path) -> None:
    """ELF files are found whatever their name; links and other files are not."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "tool").write_bytes(b"\x7fELF\x02\x01\x01")
    (tmp_path / "script.so").write_text("#!/bin/sh\n")
    (tmp_path / "link").symlink_to(tmp_path / "sub" / "tool")
    assert elf_files([tmp_path]) == [tmp_path / "sub" / "tool"]


def test_a_layer_on_a_root_gets_a_valid_tag_of_its_own() -> None:
    """Any image reference becomes a valid tag after `hud-base:<version>-on-`."""
    tag = layer_tag("base", root="registry.example:5000/Team/CUDA_img:12.4-devel")
    assert tag == f"hud-base:{__version__}-on-registry.example-5000-team-cuda_img-12.4-devel"
    assert re.fullmatch(r"[\w][\w.-]{0,127}", tag.split(":", 1)[1])


def test_only_debian_12_keeps_the_debian_layer() -> None:
    """os-release decides: Debian 12 yes; Debian 11, Ubuntu, nothing known no."""
    bookworm = parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                                'ID=debian\nVERSION_ID="12"\n# comment\njunk\n')
    assert is_debian12(bookworm) and describe(bookworm) == "Debian GNU/Linux 12 (bookworm)"
    assert not is_debian12(parse_os_release('ID=debian\nVERSION_ID="11"\n'))
    assert not is_debian12(parse_os_release('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="12"\n'))
    assert describe({}) == "no /etc/os-release"

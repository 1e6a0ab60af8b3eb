"""The agent and grading users, written straight into a root's /etc/passwd, group, shadow.

A root the portable runtime is carried into may have no `useradd` (no shadow package, or
no shell to run it from), so hud.build.graft adds the users with this module: plain text
edits of the account files, with the same outcome the Debian base layer gets from
`useradd` (images/base/Dockerfile):

- `agent`, uid 1000, its own group, home /home/agent from /etc/skel, a login shell. A user
  called `agent` that exists already is kept as it is; another user holding uid 1000 is
  removed first, with its home and its own group (as `userdel -r` would).
- `hud-grader`, a system user: uid 999 when free, else the highest free one below 1000;
  no home (/nonexistent), no login.
- Locked passwords (`!`) in /etc/shadow and /etc/gshadow, only where those files exist.

Runs inside the image being built, on the carried interpreter: standard library only.
Every path is taken under `root`, so the tests run it on a folder.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

AGENT = "agent"
AGENT_UID = 1000
GRADER = "hud-grader"
GRADER_UID = 999
NOLOGIN = "/usr/sbin/nologin"


def _field(row: list[str], index: int) -> str:
    return row[index] if len(row) > index else ""


@dataclass
class Table:
    """One colon-separated account file (passwd, group, shadow, gshadow) under a root."""

    path: Path
    rows: list[list[str]]

    @classmethod
    def read(cls, path: Path) -> Table:
        text = path.read_text() if path.is_file() else ""
        return cls(path, [line.split(":") for line in text.splitlines() if line.strip()])

    def find(self, name: str) -> list[str] | None:
        return next((row for row in self.rows if row[0] == name), None)

    def ids(self) -> set[int]:
        return {int(row[2]) for row in self.rows if len(row) > 2 and row[2].isdigit()}

    def write(self) -> None:
        """Rewrite in place (keeps the file's mode and owner: shadow stays 0640 root:shadow)."""
        text = "".join(":".join(row) + "\n" for row in self.rows)
        if self.path.exists():
            with self.path.open("w") as handle:
                handle.write(text)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(text)


class Accounts:
    """The account files of a root, edited together and written by `save()`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        etc = root / "etc"
        self.passwd = Table.read(etc / "passwd")
        self.group = Table.read(etc / "group")
        self.shadow = Table.read(etc / "shadow") if (etc / "shadow").is_file() else None
        self.gshadow = Table.read(etc / "gshadow") if (etc / "gshadow").is_file() else None
        if self.passwd.find("root") is None:  # a root with no account files at all
            self.passwd.rows.insert(0, ["root", "x", "0", "0", "root", "/root", "/bin/sh"])
        if self.group.find("root") is None:
            self.group.rows.insert(0, ["root", "x", "0", ""])

    def at(self, path: str) -> Path:
        """`path` (absolute in the image) under the root."""
        return self.root / path.lstrip("/")

    def save(self) -> None:
        for table in (self.passwd, self.group, self.shadow, self.gshadow):
            if table is not None:
                table.write()

    def _lock(self, name: str, days: bool) -> None:
        if self.shadow is not None and self.shadow.find(name) is None:
            today = str(int(time.time() // 86400))
            self.shadow.rows.append([name, "!", today, *(["0", "99999", "7"] if days
                                                          else ["", "", ""]), "", "", ""])

    def _add_group(self, name: str, gid: int) -> int:
        existing = self.group.find(name)
        if existing is not None:
            return int(existing[2])
        self.group.rows.append([name, "x", str(gid), ""])
        if self.gshadow is not None and self.gshadow.find(name) is None:
            self.gshadow.rows.append([name, "!", "", ""])
        return gid

    def remove_user(self, name: str) -> None:
        """Remove a user, its home, its own group (when no other user has it as primary
        group) and its memberships, as `userdel -r` does."""
        entry = self.passwd.find(name)
        if entry is None:
            return
        self.passwd.rows.remove(entry)
        if self.shadow is not None:
            self.shadow.rows = [row for row in self.shadow.rows if row[0] != name]
        home = _field(entry, 5)
        if home.startswith("/home/") and self.at(home).is_dir():  # never / or a system folder
            shutil.rmtree(self.at(home))
        own = self.group.find(name)
        if own is not None and not any(_field(row, 3) == own[2] for row in self.passwd.rows):
            self.group.rows.remove(own)
            if self.gshadow is not None:
                self.gshadow.rows = [row for row in self.gshadow.rows if row[0] != name]
        for table in (self.group, self.gshadow):
            for row in table.rows if table is not None else []:
                if len(row) > 3:
                    row[3] = ",".join(m for m in row[3].split(",") if m and m != name)

    def add_agent(self, shell: str) -> bool:
        """Add `agent` (uid 1000) with a home from /etc/skel; False when it exists already."""
        if self.passwd.find(AGENT) is not None:
            return False
        holder = next((row for row in self.passwd.rows if _field(row, 2) == str(AGENT_UID)),
                      None)
        if holder is not None:
            self.remove_user(holder[0])
        taken = self.group.ids()
        gid = self._add_group(AGENT, next(g for g in range(AGENT_UID, 60000) if g not in taken))
        home = "/home/agent"
        self.passwd.rows.append([AGENT, "x", str(AGENT_UID), str(gid), "", home, shell])
        self._lock(AGENT, days=True)
        target = self.at(home)
        skel = self.at("/etc/skel")
        if skel.is_dir():
            shutil.copytree(skel, target, symlinks=True, dirs_exist_ok=True)
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o755)
        for folder, dirs, files in os.walk(target):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(name, AGENT_UID, gid)
        return True

    def add_grader(self) -> bool:
        """Add the `hud-grader` system user; False when it exists already."""
        if self.passwd.find(GRADER) is not None:
            return False
        users, groups = self.passwd.ids(), self.group.ids()
        # from 999 down, as `useradd --system` counts
        uid = next(i for i in range(GRADER_UID, 99, -1) if i not in users)
        gid = self._add_group(GRADER, uid if uid not in groups else
                              next(i for i in range(GRADER_UID, 99, -1) if i not in groups))
        self.passwd.rows.append([GRADER, "x", str(uid), str(gid), "", "/nonexistent", NOLOGIN])
        self._lock(GRADER, days=False)
        return True

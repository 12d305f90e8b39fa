"""A user database seen only by the bus: extra user names that alias an existing uid.

CVE-2020-35512 needs two user names with one numeric uid (dbus-daemon's user cache freed an
entry twice when both were looked up). The rig never edits the machine's /etc/passwd: the
bus process starts in a mount namespace of its own, where a copy of /etc/passwd with the
aliases appended is bind-mounted over the original. Everything else sees the real file.
This needs CAP_SYS_ADMIN (the rig running as root).
"""

from __future__ import annotations

import ctypes
import os
import pwd

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PASSWD = "/etc/passwd"

_libc = ctypes.CDLL(None, use_errno=True)


def resolve_user(value: str | int) -> pwd.struct_passwd:
    """The passwd entry of a user name or uid; KeyError if there is none."""
    return pwd.getpwuid(value) if isinstance(value, int) else pwd.getpwnam(value)


def aliased_passwd(original: str, aliases: tuple[tuple[str, int], ...]) -> str:
    """`original` passwd text plus one line per (alias, uid), copying that uid's entry."""
    lines = original.rstrip("\n").split("\n") if original.strip() else []
    for alias, uid in aliases:
        entry = pwd.getpwuid(uid)
        lines.append(":".join([alias, "x", str(uid), str(entry.pw_gid), "busrig alias",
                               entry.pw_dir, entry.pw_shell]))
    return "\n".join(lines) + "\n"


def write_aliased_passwd(workdir: str, aliases: tuple[tuple[str, int], ...]) -> str:
    path = os.path.join(workdir, "passwd")
    with open(PASSWD) as f:
        text = aliased_passwd(f.read(), aliases)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def enter_private_passwd(path: str) -> None:
    """In a fresh child, before exec: a private mount namespace where /etc/passwd is `path`.
    Raises OSError (errno and which step) when the kernel refuses."""
    for what, rc in (
            ("unshare(CLONE_NEWNS)", lambda: _libc.unshare(CLONE_NEWNS)),
            ("make / private", lambda: _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)),
            (f"bind {path} over {PASSWD}",
             lambda: _libc.mount(path.encode(), PASSWD.encode(), None, MS_BIND, None))):
        if rc() != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

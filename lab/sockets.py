"""Where SSH ControlMaster sockets go: one short private directory per owner, for every master
the project opens (the lab's ssh_config, Ansible in `sovereign configure`, lab or real site).

A unix socket path holds at most 107 bytes, and ssh first binds the master at
`<path>.<16 random characters>` before renaming it. State directories sit under home
directories of any depth (`/home/<user>/.local/state/sovereign/configure/<stack>/...`), so
sockets never live there: they go to a runtime directory, in a subdirectory named by a hash of
the owner's path (a lab dir, a configure state dir), so owners never share or close each other's
masters. `socket_dir` only chooses; `ensure` creates it (0700) when a master is about to open.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from lab.errors import LabEnvironmentError

SUN_PATH_MAX = 107  # sizeof(sun_path) - 1 for the terminating NUL
SSH_BIND_SUFFIX = 17  # "." + 16 random characters while ssh sets the master up
ROOT_BASE = Path("/run/sovereign/ssh")  # tmpfs, root only: the same for every root shell and sudo
TMP = Path("/tmp")  # the last resort, where every user can make a private directory
_KEY_CHARS = 12
_RUNTIME_SUBDIR = "sovereign"


class SocketDirError(LabEnvironmentError):
    """No short, private directory for SSH control sockets (exit 3); the message says what to do."""


def socket_dir(owner: Path, longest_name: int) -> Path:
    """The directory for `owner`'s sockets, whose names are at most `longest_name` characters.

    Candidates in order: /run/sovereign/ssh as root (stable whatever the shell's environment, so
    `lab nodes down` finds the masters `up` opened), else $XDG_RUNTIME_DIR/sovereign, else
    /tmp/sovereign-<uid>. The first that is short enough and can be ours wins.
    """
    key = hashlib.sha256(str(owner.absolute()).encode()).hexdigest()[:_KEY_CHARS]
    budget = max_dir_length(longest_name)
    tried = []
    for base in _bases():
        path = base / key
        if len(str(path)) > budget:
            tried.append(f"{path} is {len(str(path))} characters")
            continue
        problem = _unusable(base)
        if problem:
            tried.append(problem)
            continue
        return path
    limit = budget - len(f"/{_RUNTIME_SUBDIR}/") - _KEY_CHARS  # what XDG_RUNTIME_DIR may take
    raise SocketDirError(
        f"no directory short enough for SSH control sockets (at most {budget} characters, so that "
        f"a {longest_name}-character socket name fits unix sockets' {SUN_PATH_MAX} bytes): "
        f"{'; '.join(tried)}. Set XDG_RUNTIME_DIR to a directory only you can write, "
        f"at most {limit} characters long"
    )


def max_dir_length(longest_name: int) -> int:
    """The longest directory that still fits `<dir>/<name>.<16 random>` into a unix socket."""
    return SUN_PATH_MAX - SSH_BIND_SUFFIX - longest_name - 1


def ensure(path: Path) -> Path:
    """Create `path` and its base 0700, owned by us; refuse one another user could tamper with."""
    for directory in (path.parent, path):
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SocketDirError(f"cannot create the SSH control socket directory {directory}: {exc.strerror}") from None
        problem = _unusable(directory)
        if problem:
            raise SocketDirError(f"SSH control socket directory {problem}")
    return path


def _bases() -> Iterator[Path]:
    uid = os.geteuid()
    if uid == 0:
        yield ROOT_BASE
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        yield Path(runtime) / _RUNTIME_SUBDIR
    yield TMP / f"sovereign-{uid}"


def _unusable(base: Path) -> str | None:
    """Why `base` cannot hold our sockets (None: it can, or it can be created)."""
    try:
        info = base.lstat()
    except FileNotFoundError:
        parent = next((p for p in base.parents if p.exists()), Path("/"))
        return None if os.access(parent, os.W_OK | os.X_OK) else f"{parent} is not writable"
    except OSError as exc:
        return f"{base}: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{base} is not a directory"
    if info.st_uid != os.geteuid():
        return f"{base} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})"
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{base} is open to other users (mode {stat.S_IMODE(info.st_mode):o}, expected 700)"
    return None

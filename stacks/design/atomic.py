"""Files the project writes appear whole or not at all, and never through a symlink.

Here, below cli/, nodeconfig/, report/ and lab/, because all of them write state that people and
later runs read (plans, inventories, ssh_config, reports, lab records, keys): one implementation,
importable from every layer without a layer importing one above it.

- `write_file`: the bytes go to a new temp file in the target's directory (created exclusively,
  never following a link), are fsynced, then renamed over the target — or linked to it when the
  target must not exist yet, which fails if anything (even a dangling link) is there. A full disk
  or Ctrl-C leaves the old file as it was, and at most a temp file that is removed on the way out.
- `replace_directory`: a set of files (plan.json + plan.txt) is written into a fresh directory
  beside the target, which then takes the target's place in one rename (Linux renameat2 with
  RENAME_EXCHANGE); the old set is removed afterwards. Readers, crashes and interrupts see the
  complete old set or the complete new set, never a mix.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputRefused(ValueError):
    """The target holds something this write would destroy without being asked to (exit 2)."""


def write_file(path: Path, data: str | bytes, *, replace: bool = True, mode: int | None = None) -> bool:
    """Write `path` atomically; True if it replaced a file. With replace=False, FileExistsError
    if anything is at `path`. `mode` sets the permissions exactly (keys, kubeconfigs: 0o600),
    before any byte is written; without it the umask applies as for any file a user writes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = os.path.lexists(path)
    if existed and path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    if existed and not replace:
        raise FileExistsError(errno.EEXIST, "exists", str(path))
    temp = _new_file(path.parent, path.name, data, mode)
    try:
        if replace:
            os.replace(temp, path)  # replaces a symlink itself, never the file it points to
        else:
            os.link(temp, path, follow_symlinks=False)  # atomic "create only if absent"
        _fsync_directory(path.parent)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    return existed


def replace_directory(folder: Path, files: Mapping[str, str | bytes]) -> list[str]:
    """Make `folder` hold exactly `files`, swapped in whole; returns the names it replaced."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    replaced = _replaceable(folder, files)
    staging = _new_directory(folder.parent, folder.name, ".new")
    try:
        for name, data in files.items():
            os.rename(_new_file(staging, name, data), staging / name)
        os.chmod(staging, 0o777 & ~_umask())
        _fsync_directory(staging)
        if replaced is None:
            os.rename(staging, folder)  # fails rather than merge if a folder appeared meanwhile
        else:
            _swap(staging, folder)  # `staging` now holds the old set
        _fsync_directory(folder.parent)
    finally:
        if os.path.lexists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return replaced or []


def _replaceable(folder: Path, files: Mapping[str, str | bytes]) -> list[str] | None:
    """None if nothing is at `folder`; else the names the new set replaces, or OutputRefused."""
    if not os.path.lexists(folder):
        return None
    if folder.is_symlink() or not folder.is_dir():
        kind = "a symlink" if folder.is_symlink() else "not a folder"
        raise OutputRefused(f"{folder} exists and is {kind}; it is left as it is: move it, or write elsewhere")
    present = set(os.listdir(folder))
    foreign = sorted(present - set(files))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OutputRefused(
            f"{folder} holds files this command does not write ({shown}); replacing the folder would "
            f"delete them: move them, or write elsewhere"
        )
    return sorted(present & set(files))


def _swap(new: Path, old: Path) -> None:
    try:
        _renameat2(new, old, _RENAME_EXCHANGE)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
        # A filesystem without RENAME_EXCHANGE: two renames. An interruption between them leaves
        # the old set whole in the hidden `.old` folder beside it.
        aside = _new_directory(old.parent, old.name, ".old")
        os.rename(old, aside / old.name)
        os.rename(new, old)
        os.rename(aside / old.name, new)
        os.rmdir(aside)


def _renameat2(src: Path, dst: Path, flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(dst))
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(dst))


def _new_file(directory: Path, name: str, data: str | bytes, mode: int | None = None) -> Path:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        temp = directory / f".{name[:200]}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temp, flags, 0o666 if mode is None else mode & 0o600)
            break
        except FileExistsError:
            continue
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # exact, whatever the umask; opened no wider than 0o600 meanwhile
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(temp)
        raise
    return temp


def _new_directory(parent: Path, name: str, suffix: str) -> Path:
    while True:
        path = parent / f".{name[:200]}.{secrets.token_hex(4)}{suffix}"
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""Fast tier: the one place SSH ControlMaster sockets go (lab.sockets), and that they fit."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import sockets

ANSIBLE_NAME = 40  # %C: a SHA-1 in hex
DEEP = Path("/home/" + "a-rather-long-user-name") / ".local/state/sovereign/configure" / ("x" * 60) / "site-a"


def bind_worst_case(directory: Path, name_length: int) -> None:
    """Bind a real unix socket where ssh binds first: `<dir>/<name>.<16 random>`."""
    path = directory / ("n" * name_length + "." + "r" * 16)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
    path.unlink()


@pytest.fixture
def short() -> Iterator[Path]:
    """A short scratch dir (pytest's tmp_path is itself too long for socket paths)."""
    path = Path(tempfile.mkdtemp(prefix="h6s", dir="/tmp"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, short: Path) -> Path:
    """An unprivileged view: euid 1000, a runtime dir and /tmp of our own (the real ones are shared)."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    tmp_path = short
    runtime = tmp_path / "u1000"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, 1000, 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setattr(sockets, "TMP", tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    return runtime


def test_root_gets_a_short_directory_under_run_whatever_the_owner_path() -> None:
    chosen = sockets.socket_dir(DEEP, ANSIBLE_NAME)
    assert chosen.parent == sockets.ROOT_BASE
    assert len(str(chosen)) <= sockets.max_dir_length(ANSIBLE_NAME)
    assert sockets.socket_dir(DEEP, ANSIBLE_NAME) == chosen  # stable: `down` finds what `up` opened
    assert sockets.socket_dir(DEEP / "other", ANSIBLE_NAME) != chosen  # owners never share


def test_the_worst_case_socket_binds_in_the_chosen_directory(tmp_path: Path) -> None:
    owner = tmp_path / ("y" * 150)
    chosen = sockets.ensure(sockets.socket_dir(owner, ANSIBLE_NAME))
    try:
        assert stat.S_IMODE(chosen.stat().st_mode) == 0o700
        bind_worst_case(chosen, ANSIBLE_NAME)
        # and the limit is real: one character more than the budget does not bind
        too_long = Path(str(chosen) + "z" * (sockets.max_dir_length(ANSIBLE_NAME) - len(str(chosen)) + 1))
        too_long.mkdir()
        with pytest.raises(OSError):
            bind_worst_case(too_long, ANSIBLE_NAME)
        too_long.rmdir()
    finally:
        chosen.rmdir()


def test_a_user_gets_the_runtime_dir(as_user: Path) -> None:
    chosen = sockets.socket_dir(DEEP, ANSIBLE_NAME)
    assert chosen.parent == as_user / "sovereign"


def test_a_user_without_a_short_runtime_dir_falls_back_to_tmp(
    as_user: Path, monkeypatch: pytest.MonkeyPatch, short: Path
) -> None:
    tmp_path = short
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("r" * 80)))
    assert sockets.socket_dir(DEEP, ANSIBLE_NAME).parent == tmp_path / "tmp" / "sovereign-1000"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert sockets.socket_dir(DEEP, ANSIBLE_NAME).parent == tmp_path / "tmp" / "sovereign-1000"


def test_a_tmp_directory_someone_else_owns_is_refused_with_what_to_do(
    as_user: Path, monkeypatch: pytest.MonkeyPatch, short: Path
) -> None:
    tmp_path = short
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    (tmp_path / "tmp" / "sovereign-1000").mkdir(mode=0o700)  # made by root (uid 0), not by "us"
    with pytest.raises(sockets.SocketDirError) as caught:
        sockets.socket_dir(DEEP, ANSIBLE_NAME)
    message = str(caught.value)
    assert "belongs to uid 0" in message and "Set XDG_RUNTIME_DIR" in message
    # what XDG_RUNTIME_DIR may be: the budget less "/sovereign/" and the 12-character key
    assert f"at most {sockets.max_dir_length(ANSIBLE_NAME) - 23} characters" in message


def test_no_short_directory_anywhere_says_so(as_user: Path, monkeypatch: pytest.MonkeyPatch, short: Path) -> None:
    tmp_path = short
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("r" * 80)))
    monkeypatch.setattr(sockets, "TMP", tmp_path / ("t" * 80))
    with pytest.raises(sockets.SocketDirError, match=r"no directory short enough .* is \d+ characters"):
        sockets.socket_dir(DEEP, ANSIBLE_NAME)


def test_ensure_refuses_a_directory_open_to_others(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    with pytest.raises(sockets.SocketDirError, match="open to other users"):
        sockets.ensure(base / "key")
    base.chmod(0o700)
    made = sockets.ensure(base / "key")
    assert made.is_dir() and stat.S_IMODE(made.stat().st_mode) == 0o700


def test_the_runtime_dir_limit_in_the_message_is_exact(as_user: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = sockets.max_dir_length(ANSIBLE_NAME) - len("/sovereign/") - 12
    fits = as_user / ("f" * (limit - len(str(as_user)) - 1))
    fits.mkdir(mode=0o700)
    os.chown(fits, 1000, 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(fits))
    assert len(str(fits)) == limit and sockets.socket_dir(DEEP, ANSIBLE_NAME).parent == fits / "sovereign"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(fits) + "g")
    assert sockets.socket_dir(DEEP, ANSIBLE_NAME).parent.name == "sovereign-1000"

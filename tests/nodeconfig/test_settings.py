"""Fast tier: the environment a run gives Ansible — SSH masters, host keys, tuned vs stock."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from nodeconfig.settings import NO_REUSE, STOCK, TUNED, SshAccess, ansible_env

CONTROL = "/run/sovereign/ssh/0123456789ab/%C"


def access(tmp_path: Path, **kw) -> SshAccess:
    return SshAccess(tmp_path / "ssh_config", CONTROL, (tmp_path / "known_hosts",), **kw)


def ssh_options(env: dict[str, str]) -> dict[str, str]:
    """ANSIBLE_SSH_ARGS as Ansible splits it (shlex), the `-o` options as a dict."""
    args = shlex.split(env["ANSIBLE_SSH_ARGS"])
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-o")


def test_only_a_lab_run_skips_host_key_checking(tmp_path: Path) -> None:
    lab = ansible_env(TUNED, access=access(tmp_path, lab=True), state_dir=tmp_path)
    site = ansible_env(TUNED, access=access(tmp_path), state_dir=tmp_path)
    assert lab["ANSIBLE_HOST_KEY_CHECKING"] == "False"
    assert site["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert ssh_options(site)["StrictHostKeyChecking"] == "yes"
    assert "StrictHostKeyChecking" not in ssh_options(lab)  # the lab's ssh_config pins its keys


def test_first_contact_accepts_new_keys_only_when_asked(tmp_path: Path) -> None:
    env = ansible_env(STOCK, access=access(tmp_path, accept_new_host_keys=True), state_dir=tmp_path)
    assert ssh_options(env)["StrictHostKeyChecking"] == "accept-new"
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"


def test_masters_use_the_given_short_control_path(tmp_path: Path) -> None:
    env = ansible_env(TUNED, access=access(tmp_path), state_dir=tmp_path / ("deep" * 30))
    options = ssh_options(env)
    # quoted for ssh's own parser; Ansible adds no ControlPath of its own when one is given
    assert options["ControlPath"] == f'"{CONTROL}"'
    assert options["ControlMaster"] == "auto" and options["ControlPersist"] == "600s"
    assert not any(k.startswith("ANSIBLE_SSH_CONTROL_PATH") for k in env)
    assert shlex.split(env["ANSIBLE_SSH_ARGS"])[:2] == ["-F", str(tmp_path / "ssh_config")]


def test_stock_is_ansibles_shipped_connection_sharing(tmp_path: Path) -> None:
    env = ansible_env(STOCK, access=access(tmp_path), state_dir=tmp_path)
    options = ssh_options(env)
    assert options["ControlMaster"] == "auto" and options["ControlPersist"] == "60s"
    assert env["ANSIBLE_FORKS"] == "5" and env["ANSIBLE_PIPELINING"] == "False" and "ANSIBLE_CACHE_PLUGIN" not in env


def test_no_reuse_opens_no_master(tmp_path: Path) -> None:
    options = ssh_options(ansible_env(NO_REUSE, access=access(tmp_path), state_dir=tmp_path))
    assert options["ControlMaster"] == "no" and options["ControlPath"] == "none"


@pytest.mark.parametrize("name", ["with space", "quote'd"])
def test_paths_survive_ansibles_split(tmp_path: Path, name: str) -> None:
    odd = tmp_path / name
    env = ansible_env(TUNED, access=SshAccess(odd / "ssh_config", f"{odd}/%C", ()), state_dir=tmp_path)
    args = shlex.split(env["ANSIBLE_SSH_ARGS"])
    assert args[1] == str(odd / "ssh_config")
    assert f'ControlPath="{odd}/%C"' in args

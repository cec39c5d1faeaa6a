"""Ansible settings for a run: the project's tuned profile, Ansible's stock defaults, or no SSH reuse.

All are kept so the benchmark can measure what tuning buys; `sovereign configure` uses the tuned
one. Everything is passed as environment variables, so no ansible.cfg in the tree changes a run.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from stacks.design.assets import asset_dir
from stacks.design.project import current_project_or_none

# Shipped inside the package (a wheel has no source tree around it); a plain directory on disk,
# since ansible-playbook reads them by path.
ROLES_PATH = asset_dir("roles")
PLAYBOOKS = asset_dir("playbooks")


def roles_path() -> str:
    """The current project's own roles/ first (to add or override a role), then the shipped ones."""
    project = current_project_or_none()
    own = [project.roles_dir] if project is not None and project.roles_dir.is_dir() else []
    return os.pathsep.join(str(path) for path in (*own, ROLES_PATH))


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    forks: int
    pipelining: bool
    control_persist: str | None  # None: a new SSH connection for every task
    fact_cache: bool
    sharded: bool  # one ansible-runner process per scalable unit, or one for everything
    strategy: str = "linear"


TUNED = Profile("tuned", forks=50, pipelining=True, control_persist="600s", fact_cache=True, sharded=True)
# Ansible as shipped: 5 forks, no pipelining, SSH masters kept 60 s (ControlMaster=auto), no fact
# cache, one process for the whole inventory.
STOCK = Profile("stock", forks=5, pipelining=False, control_persist="60s", fact_cache=False, sharded=False)
# Stock without SSH connection sharing: a new SSH session per task, as where ControlMaster is off.
NO_REUSE = Profile("no-reuse", forks=5, pipelining=False, control_persist=None, fact_cache=False, sharded=False)
PROFILES = {p.name: p for p in (TUNED, STOCK, NO_REUSE)}


@dataclass(frozen=True, slots=True)
class SshAccess:
    """How a run reaches its nodes over SSH, whichever profile it uses.

    `ssh_config` carries identity and the trusted host keys: the lab's own (keys pinned by
    `lab nodes up`), or for a real site the one nodeconfig.hostkeys writes (the design's keys
    and those recorded at first contact). `control_path` is a ControlPath pattern in a short
    directory from lab.sockets: state paths are too long for unix sockets.
    """

    ssh_config: Path
    control_path: str
    known_hosts: tuple[Path, ...]  # the files whose keys are trusted, named in error messages
    lab: bool = False  # only a lab run may skip host key checking
    accept_new_host_keys: bool = False  # first contact: record unknown keys; a changed key still fails


def ansible_env(profile: Profile, *, access: SshAccess, state_dir: Path, forks: int | None = None) -> dict[str, str]:
    env = {
        # ansible-playbook from this interpreter's environment, even when it is not activated.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_ROLES_PATH": roles_path(),
        # Lab nodes' keys are pinned by `lab nodes up`, but a lab is rebuilt often and is nobody's
        # attack surface; a real site's keys are always checked (ssh_config, and below).
        "ANSIBLE_HOST_KEY_CHECKING": str(not access.lab),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_FORKS": str(forks or profile.forks),
        "ANSIBLE_PIPELINING": str(profile.pipelining),
        "ANSIBLE_STRATEGY": profile.strategy,
        "ANSIBLE_TIMEOUT": "15",
        "ANSIBLE_LOCAL_TEMP": str(state_dir / "tmp"),
    }
    ssh_args = ["-F", str(access.ssh_config), "-o", "ServerAliveInterval=15"]
    if not access.lab:
        # Explicit, so no ssh_config or ~/.ssh/config can loosen it.
        ssh_args += ["-o", f"StrictHostKeyChecking={'accept-new' if access.accept_new_host_keys else 'yes'}"]
    if profile.control_persist:
        # An explicit ControlPath: Ansible's default (~/.ansible/cp) is as long as a home path,
        # and with it `lab nodes down` could not find and close a lab run's masters.
        ssh_args += [
            "-o", "ControlMaster=auto",
            "-o", f"ControlPersist={profile.control_persist}",
            "-o", f'ControlPath="{access.control_path}"',
        ]  # fmt: skip
    else:
        ssh_args += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    # Ansible splits this with shlex: quote, so a path with a space stays one argument.
    env["ANSIBLE_SSH_ARGS"] = shlex.join(ssh_args)
    if profile.fact_cache:
        env["ANSIBLE_GATHERING"] = "smart"
        env["ANSIBLE_CACHE_PLUGIN"] = "ansible.builtin.jsonfile"
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(state_dir / "facts")
        env["ANSIBLE_CACHE_PLUGIN_TIMEOUT"] = "3600"
    return env

"""Ansible settings for a run: the project's tuned profile, or Ansible's stock defaults.

Both are kept so the benchmark can measure what tuning buys; `sovereign configure` uses the tuned
one. Everything is passed as environment variables, so no ansible.cfg in the tree changes a run.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stacks.design.project import current_project_or_none

# Shipped inside the package (a wheel has no source tree around it); a plain directory on disk,
# since ansible-playbook reads them by path.
ROLES_PATH = Path(str(resources.files("nodeconfig") / "roles"))
PLAYBOOKS = Path(str(resources.files("nodeconfig") / "playbooks"))


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
STOCK = Profile("stock", forks=5, pipelining=False, control_persist=None, fact_cache=False, sharded=False)
PROFILES = {p.name: p for p in (TUNED, STOCK)}


def ansible_env(profile: Profile, *, ssh_config: Path | None, state_dir: Path, forks: int | None = None) -> dict[str, str]:
    env = {
        # ansible-playbook from this interpreter's environment, even when it is not activated.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_ROLES_PATH": roles_path(),
        "ANSIBLE_HOST_KEY_CHECKING": "False",  # lab nodes get new host keys on every `lab up`
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
    ssh_args = ["-o", "ServerAliveInterval=15"]
    if ssh_config is not None:
        ssh_args = ["-F", str(ssh_config), *ssh_args]
    if profile.control_persist:
        ssh_args += ["-o", "ControlMaster=auto", "-o", f"ControlPersist={profile.control_persist}"]
        # Short path: unix sockets are limited to 108 bytes.
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(state_dir / "cp")
        env["ANSIBLE_SSH_CONTROL_PATH"] = "%(directory)s/%%C"
    else:
        ssh_args += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    env["ANSIBLE_SSH_ARGS"] = " ".join(ssh_args)
    if profile.fact_cache:
        env["ANSIBLE_GATHERING"] = "smart"
        env["ANSIBLE_CACHE_PLUGIN"] = "ansible.builtin.jsonfile"
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(state_dir / "facts")
        env["ANSIBLE_CACHE_PLUGIN_TIMEOUT"] = "3600"
    return env

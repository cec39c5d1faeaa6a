"""ansible-lint's production profile over every role (with its Molecule scenario), the playbooks and
the shared Molecule create/destroy playbooks."""

from __future__ import annotations

import subprocess

from tests.roles.helpers import REPO, ROLES, tool, tool_env


def test_roles_exist() -> None:
    assert ROLES == [
        "baseline",
        "container_runtime",
        "hardening",
        "infiniband",
        "kubernetes_control_plane",
        "kubernetes_node",
        "monitoring_agent",
        "nvidia_host",
        "time_sync",
    ]


def test_production_profile() -> None:
    out = subprocess.run(
        [tool("ansible-lint"), "--profile", "production", "--nocolor", "-f", "pep8", "roles/", "playbooks/", "tests/roles/molecule/"],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, f"ansible-lint failed:\n{out.stdout}\n{out.stderr}"

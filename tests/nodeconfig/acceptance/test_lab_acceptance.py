"""Real tier: the acceptance suite against real Debian systemd nodes over SSH.

Two lab nodes (standing in for a storage and a GPU node of a stack) get the baseline, hardening,
infiniband and nvidia_host roles; the suite must pass them, then name exactly what was broken on one node, and
report a stopped node as unreachable (error), not as failed. GPU and InfiniBand checks run for
real too: lab nodes have neither, and their inventory expects none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.nodes import NodeLab
from nodeconfig.acceptance import VerifyReport, verify
from nodeconfig.configure import plan_target, write_inventory
from nodeconfig.settings import ROLES_PATH, TUNED, ansible_env
from tests.lab_session import fresh_lab

pytestmark = pytest.mark.lab
STACK = "ke-staging"
ROLES = ["baseline", "hardening", "nvidia_host", "infiniband"]


@pytest.fixture(scope="module")
def lab() -> Iterator[NodeLab]:
    with fresh_lab("acc", 2) as node_lab:
        yield node_lab


@pytest.fixture(scope="module")
def site(lab: NodeLab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The lab configured with the roles under test; (inventory, ssh_config)."""
    target = plan_target(STACK, lab=lab.name)
    inventory = write_inventory(target)
    work = tmp_path_factory.mktemp("play")
    playbook = work / "roles.yml"
    # The roles whose checks this module runs, on the groups site.yml gives them.
    playbook.write_text(
        "- hosts: all\n  become: true\n  roles: [baseline, hardening]\n"
        "- hosts: gpu:storage\n  become: true\n  roles: [infiniband]\n"
        "- hosts: gpu\n  become: true\n  roles: [nvidia_host]\n"
    )
    env = {**os.environ, **ansible_env(TUNED, access=target.access, state_dir=target.state_dir)}
    for sub in ("tmp", "facts"):
        (target.state_dir / sub).mkdir(parents=True, exist_ok=True)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["ANSIBLE_ROLES_PATH"] = str(ROLES_PATH)
    run = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(playbook)], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:]
    return inventory, target.ssh_config


def node_names(lab: NodeLab) -> list[str]:
    spec = lab.spec()
    assert spec is not None
    return [n.name for n in spec.nodes]


def failures(report: VerifyReport) -> list[tuple[str, str, str, str]]:
    return [(r.host, r.role, r.check, r.status) for r in report.rows if r.status != "passed"]


def test_configured_nodes_pass(site: tuple[Path, Path], lab: NodeLab) -> None:
    inventory, ssh_config = site
    report = verify(inventory, ssh_config=ssh_config, roles=ROLES)
    assert report.ok, failures(report)
    storage, gpu = node_names(lab)
    assert {(r.host, r.role) for r in report.rows} >= {
        (gpu, "nvidia_host"),
        (gpu, "infiniband"),
        (storage, "infiniband"),
    }
    assert (storage, "nvidia_host") not in {(r.host, r.role) for r in report.rows}  # not a storage role
    gpu_count = next(r for r in report.rows if r.host == gpu and r.check == "gpu_count")
    assert gpu_count.message == "no GPUs expected; none on the PCI bus"


def test_broken_node_fails_exactly_where_it_was_broken(site: tuple[Path, Path], lab: NodeLab) -> None:
    inventory, ssh_config = site
    victim = node_names(lab)[1]
    out = lab.ssh(
        victim,
        "chmod 0644 /etc/shadow && dpkg -r jq >/dev/null"
        " && sed -i 's/^MaxAuthTries .*/MaxAuthTries 9/' /etc/ssh/sshd_config.d/*sovereign-hardening.conf",
    )
    assert out.returncode == 0, out.stderr
    report = verify(inventory, ssh_config=ssh_config, roles=ROLES, limit=victim)
    assert failures(report) == [
        (victim, "baseline", "packages", "failed"),
        (victim, "hardening", "sshd", "failed"),
        (victim, "hardening", "file_permissions", "failed"),
    ]
    messages = {r.check: r.message for r in report.rows if r.status == "failed"}
    assert messages["packages"] == "packages missing: jq"
    assert messages["sshd"] == "maxauthtries=9 (want 4)"
    assert messages["file_permissions"] == "/etc/shadow is 644 root:shadow (want 640 root:shadow)"


def test_stopped_node_is_an_error_not_a_failure(site: tuple[Path, Path], lab: NodeLab) -> None:
    inventory, ssh_config = site
    storage = node_names(lab)[0]
    lab.stop_node(storage, kill=True)
    try:
        report = verify(inventory, ssh_config=ssh_config, roles=["baseline"], limit=storage, timeout_s=120)
    finally:
        lab.start_node(storage)
    assert report.rows and {r.status for r in report.rows} == {"error"}
    assert all(f"cannot run commands on {storage}" in r.message for r in report.rows)

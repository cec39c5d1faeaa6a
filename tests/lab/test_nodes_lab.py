"""Real tier: LXC nodes on this host, reached over real SSH, and removed without a trace.

Needs root; installs its host packages when missing. Never skipped: a host that cannot run
the lab fails these tests loudly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.nodes import NodeLab
from tests.lab.conftest import unique_name
from tests.lab.leftovers import leftovers

pytestmark = pytest.mark.lab


def ssh_ok(lab: NodeLab, node: str, command: str) -> str:
    proc = lab.ssh(node, command, timeout=120)
    assert proc.returncode == 0, f"{node}: {command!r} failed: {proc.stderr.strip()}"
    return proc.stdout.strip()


def test_every_node_boots_systemd_and_answers_ssh(node_lab: NodeLab) -> None:
    status = node_lab.status()
    assert [n.state for n in status.nodes] == ["RUNNING"] * len(status.nodes)
    for node in status.nodes:
        out = ssh_ok(
            node_lab, node.name, "systemctl is-system-running --wait; hostname; systemctl is-active ssh"
        )
        assert out.splitlines() == ["running", node.name, "active"]


def test_nodes_have_distinct_identities(node_lab: NodeLab) -> None:
    names = [n.name for n in node_lab.status().nodes]
    ids = {ssh_ok(node_lab, n, "cat /etc/machine-id") for n in names}
    keys = {ssh_ok(node_lab, n, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1] for n in names}
    assert len(ids) == len(keys) == len(names)


def test_lab_files_let_plain_ssh_and_ansible_in(node_lab: NodeLab) -> None:
    spec = node_lab.spec()
    described = json.loads(spec.lab_json.read_text())
    assert described["name"] == node_lab.name and described["bridge"] == spec.bridge
    node = described["nodes"][0]
    proc = subprocess.run(
        ["ssh", "-F", described["ssh_config"], "-o", "BatchMode=yes", node["name"], "hostname -I"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert node["ip"] in proc.stdout.split()
    ansible = Path(sys.executable).with_name("ansible")
    proc = subprocess.run(
        [str(ansible), "-i", described["inventory"], "lab_nodes", "-m", "ping", "-o"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(described["nodes"])


def test_up_again_changes_nothing(node_lab: NodeLab) -> None:
    spec = node_lab.spec()
    first = spec.nodes[0].name
    ssh_ok(node_lab, first, "touch /run/sovereign-still-booted")  # /run is lost on reboot
    known_hosts = spec.known_hosts.read_text()
    started = time.monotonic()
    status = node_lab.up()
    assert time.monotonic() - started < 15
    assert [(n.name, n.ip, n.state) for n in status.nodes] == [(n.name, n.ip, "RUNNING") for n in spec.nodes]
    assert spec.known_hosts.read_text() == known_hosts
    ssh_ok(node_lab, first, "test -e /run/sovereign-still-booted")


def test_up_with_a_larger_count_adds_nodes_and_tells_the_others(node_lab: NodeLab) -> None:
    before = node_lab.spec().count
    status = node_lab.up(before + 1)
    assert len(status.nodes) == before + 1 and status.running == before + 1
    new = status.nodes[-1]
    assert ssh_ok(node_lab, status.nodes[0].name, f"getent hosts {new.name}").split()[0] == new.ip
    assert ssh_ok(node_lab, new.name, "hostname") == new.name
    # a smaller count never removes nodes
    assert len(node_lab.up(1).nodes) == before + 1


def test_a_stopped_node_returns_with_the_same_identity(node_lab: NodeLab) -> None:
    node = node_lab.spec().nodes[1].name
    machine_id = ssh_ok(node_lab, node, "cat /etc/machine-id")
    ssh_ok(node_lab, node, "echo kept > /root/disk-survives")
    node_lab.stop_node(node)
    stopped = {n.name: n for n in node_lab.status().nodes}[node]
    assert (stopped.state, stopped.ssh) == ("STOPPED", False)
    others = [n.name for n in node_lab.status().nodes if n.name != node]
    assert all(ssh_ok(node_lab, n, "hostname") == n for n in others)
    node_lab.start_node(node)
    assert ssh_ok(node_lab, node, "cat /etc/machine-id; cat /root/disk-survives").splitlines() == [
        machine_id,
        "kept",
    ]


def test_apt_uses_the_preseeded_cache_and_reaches_the_mirror(node_lab: NodeLab) -> None:
    node = node_lab.spec().nodes[0].name
    # --no-download: the .debs must come from the base image's archive cache
    ssh_ok(node_lab, node, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download pciutils")
    assert ssh_ok(node_lab, node, "command -v lspci") == "/usr/bin/lspci"
    out = ssh_ok(node_lab, node, "apt-get update 2>&1")
    assert "Err:" not in out and "Failed to fetch" not in out


def test_nat_only_reaches_the_mirror(node_lab: NodeLab) -> None:
    spec = node_lab.spec()
    for table in ("filter", "nat"):
        rules = subprocess.run(
            ["iptables", "-w", "-t", table, "-S", spec.chain], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        accepted = [r for r in rules if r.endswith(("ACCEPT", "MASQUERADE")) and " -d " in r]
        assert accepted, rules
        assert {r.split(" -d ")[1].split()[0] for r in accepted} == {f"{ip}/32" for ip in spec.mirror_ips}
        assert all("--dports 80,443" in r for r in accepted)
    filter_rules = subprocess.run(["iptables", "-w", "-S", spec.chain], capture_output=True, text=True, check=False).stdout
    assert filter_rules.rstrip().splitlines()[-2:] == [
        f"-A {spec.chain} -i {spec.bridge} -j DROP",
        f"-A {spec.chain} -o {spec.bridge} -j DROP",
    ]


def test_a_second_lab_runs_beside_and_down_leaves_nothing(node_lab: NodeLab, state_root: Path) -> None:
    other = NodeLab(unique_name("u"), state_root=state_root)
    try:
        status = other.up(1)
        spec = other.spec()
        assert spec.subnet != node_lab.spec().subnet and spec.bridge != node_lab.spec().bridge
        node = status.nodes[0].name
        ssh_ok(other, node, "true")  # leaves a ControlMaster behind, which down must close
        masters = [
            p
            for p in os.listdir("/proc")
            if p.isdigit() and _cmdline(p).startswith(f"ssh: {spec.control_dir}")
        ]
        assert masters, "expected a ControlMaster for the second lab"
        described = other.status().to_json()
    finally:
        removed = other.down()
    assert any(r.startswith("bridge") for r in removed)
    assert leftovers(described) == []
    assert other.down() == []  # idempotent
    # the neighbour is untouched
    first = node_lab.spec().nodes[0].name
    assert ssh_ok(node_lab, first, "hostname") == first


def test_down_after_a_failed_up_leaves_nothing(state_root: Path) -> None:
    lab = NodeLab(unique_name("f"), state_root=state_root)
    try:
        with pytest.raises(LabError, match=r"no SSH after .*lxc\.log"):
            lab.up(1, timeout=0.01)
        described = lab.status().to_json()
    finally:
        lab.down()
    assert described["nodes"], described
    assert leftovers(described) == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""

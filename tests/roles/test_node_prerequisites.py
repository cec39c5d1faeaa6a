"""Real tier: what a GPU node needs before it can join Kubernetes, on one lab node.

baseline and container_runtime converge a node that starts with swap in its fstab; then the GPU
Operator's toolkit is played by hand (a drop-in under /etc/containerd/conf.d, written the way the
toolkit writes it) and a rerun of the roles must leave it alone: changed=0, the drop-in untouched
and still imported, containerd not restarted.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.nodes import NodeLab
from tests.lab_session import fresh_lab
from tests.roles.helpers import tool, tool_env

pytestmark = pytest.mark.lab

PLAY = """
- hosts: lab_nodes
  roles:
    - role: baseline
      vars:
        # The lab's containers have no kernel package: jq stands in to show the hold mechanism.
        baseline_held_packages: ["linux-image-*", kubelet, jq]
    - role: container_runtime
      vars:
        container_runtime_registry_mirrors: {docker.io: ["https://mirror.registry.lab.example"]}
"""
FSTAB_SWAP = "/swapfile none swap sw 0 0\nUUID=1234-abcd  none  swap  defaults,pri=5 0 0\n"
DROPIN = "/etc/containerd/conf.d/99-nvidia.toml"
CRI = "io.containerd.grpc.v1.cri"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@pytest.fixture(scope="module")
def lab() -> Iterator[NodeLab]:
    with fresh_lab("prq", 1) as node_lab:
        yield node_lab


def node(lab: NodeLab) -> str:
    spec = lab.spec()
    assert spec is not None
    return spec.nodes[0].name


def sh(lab: NodeLab, command: str) -> str:
    out = lab.ssh(node(lab), command)
    assert out.returncode == 0, f"{command}: {out.stderr}"
    return out.stdout


def converge(lab: NodeLab, tmp: Path) -> dict[str, int]:
    """One ansible-playbook run of PLAY; the host's recap counts."""
    spec = lab.spec()
    assert spec is not None
    (tmp / "play.yml").write_text(PLAY)
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(tmp / "play.yml")],
        env=tool_env(ANSIBLE_PIPELINING="1"),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    recap = {m[0]: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m[1:]))) for m in RECAP.findall(out.stdout)}
    return recap[node(lab)]


def toolkit_dropin(config_toml: str) -> str:
    """The drop-in the GPU Operator's toolkit (v1.18+) writes: containerd 1.x merges imports one plugin
    section at a time (an imported section replaces the main file's), so the toolkit copies the whole
    CRI section it found and adds its runtime, made the default."""
    cri = config_toml[config_toml.index(f'  [plugins."{CRI}"]') : config_toml.index('  [plugins."io.containerd.internal.v1.opt"]')]
    cri = cri.replace('default_runtime_name = "runc"', 'default_runtime_name = "nvidia"')
    return (
        "version = 2\n\n[plugins]\n" + cri
        + f'\n    [plugins."{CRI}".containerd.runtimes.nvidia]\n'
        '      runtime_type = "io.containerd.runc.v2"\n'
        f'      [plugins."{CRI}".containerd.runtimes.nvidia.options]\n'
        '        BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime"\n'
        "        SystemdCgroup = true\n"
    )


@pytest.fixture(scope="module")
def converged(lab: NodeLab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sh(lab, f"printf '{FSTAB_SWAP}' >> /etc/fstab && systemctl enable apt-daily-upgrade.timer")
    tmp = tmp_path_factory.mktemp("prereq")
    first = converge(lab, tmp)
    assert first["changed"] > 0 and first["failed"] == 0
    return tmp


def test_swap_stays_off_at_boot(lab: NodeLab, converged: Path) -> None:
    fstab = sh(lab, "cat /etc/fstab")
    active = [line for line in fstab.splitlines() if line.split()[2:3] == ["swap"] and not line.startswith("#")]
    assert not active, fstab
    assert "# /swapfile none swap sw 0 0" in fstab
    assert sh(lab, "systemctl is-enabled swap.target || true").strip() == "masked"
    # In a container /proc/swaps is the host's; swapoff itself runs only on hosts (see the role).
    assert len(sh(lab, "cat /proc/swaps").splitlines()) == 1


def test_upgrades_wait_for_an_operator(lab: NodeLab, converged: Path) -> None:
    assert sh(lab, "apt-mark showhold").split() == ["jq"]  # no kernel, no kubelet in a lab container
    assert sh(lab, "apt-config dump APT::Periodic::Unattended-Upgrade").strip() == 'APT::Periodic::Unattended-Upgrade "0";'
    assert sh(lab, "systemctl is-enabled apt-daily-upgrade.timer || true").strip() == "disabled"


def test_toolkit_dropin_survives_a_rerun(lab: NodeLab, converged: Path) -> None:
    config = sh(lab, "cat /etc/containerd/config.toml")
    assert 'imports = ["/etc/containerd/conf.d/*.toml"]' in config
    dropin = toolkit_dropin(config)
    sh(lab, f"cat > {DROPIN} <<'EOF'\n{dropin}EOF\nsystemctl restart containerd")
    pid = sh(lab, "systemctl show -p MainPID --value containerd").strip()

    again = converge(lab, converged)

    assert again["changed"] == 0, again
    assert sh(lab, f"cat {DROPIN}") == dropin
    assert sh(lab, "systemctl show -p MainPID --value containerd").strip() == pid, "containerd was restarted"
    effective = tomllib.loads(sh(lab, "containerd config dump"))
    assert DROPIN in effective["imports"]
    cri = effective["plugins"][CRI]
    assert cri["containerd"]["default_runtime_name"] == "nvidia"
    assert cri["containerd"]["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"


def test_nvidia_runtime_without_its_binary_fails_early(lab: NodeLab, converged: Path) -> None:
    """Host mode without the toolkit: every pod would fail, so the role stops with a reason instead."""
    spec = lab.spec()
    assert spec is not None
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(converged / "play.yml"),
         "-e", '{"container_runtime_nvidia_runtime_enabled": true}'],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode != 0
    assert "/usr/bin/nvidia-container-runtime is missing" in out.stdout and "nvidia-container-toolkit" in out.stdout
    assert "default_runtime_name = \"runc\"" in sh(lab, "cat /etc/containerd/config.toml")
    assert os.path.basename(DROPIN) in sh(lab, "ls /etc/containerd/conf.d")

"""Real tier: what a GPU node needs before it can join Kubernetes, on lab nodes.

baseline and container_runtime converge a node that starts with swap in its fstab; then the GPU
Operator's toolkit is played by hand (a drop-in under /etc/containerd/conf.d, written the way the
toolkit writes it) and a rerun of the roles must leave it alone: changed=0, the drop-in untouched
and still imported, containerd not restarted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab.nodes import NodeLab
from nodeconfig.configure import lab_apt_mirrors
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
        # The lab's apt cache plays the partnership's package mirror.
        baseline_apt_mirrors: MIRRORS
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
    with fresh_lab("prq", 2) as node_lab:
        yield node_lab


def node(lab: NodeLab) -> str:
    spec = lab.spec()
    assert spec is not None
    return spec.nodes[0].name


def node_names(lab: NodeLab) -> list[str]:
    spec = lab.spec()
    assert spec is not None
    return [n.name for n in spec.nodes]


def sh(lab: NodeLab, command: str, name: str | None = None) -> str:
    out = lab.ssh(name or node(lab), command)
    assert out.returncode == 0, f"{command}: {out.stderr}"
    return out.stdout


def converge(lab: NodeLab, tmp: Path) -> dict[str, int]:
    """One ansible-playbook run of PLAY; the host's recap counts."""
    spec = lab.spec()
    assert spec is not None
    (tmp / "play.yml").write_text(PLAY.replace("MIRRORS", json.dumps(lab_apt_mirrors(spec.gateway))))
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(tmp / "play.yml"), "--limit", node(lab)],
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


def test_packages_come_through_the_sites_mirror(lab: NodeLab, converged: Path) -> None:
    """baseline points apt at the mirrors only (here the lab's apt-cacher-ng on the bridge), and the
    packages the node installed crossed it (numactl is not among the image's pre-seeded packages)."""
    spec = lab.spec()
    assert spec is not None
    sources = sh(lab, "cat /etc/apt/sources.list.d/*.sources; cat /etc/apt/sources.list 2>/dev/null || true")
    uris = re.findall(r"^URIs: (\S+)", sources, re.M)
    assert uris and all(u.startswith(f"http://{spec.gateway}:3142/") for u in uris), sources
    log = Path(f"/run/sovereign/lab/apt-cache-{spec.octet}/log/apt-cacher.log").read_text()
    assert re.search(r"/pool/main/n/numactl/numactl_\S*\.deb", log), log[-2000:]


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
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(converged / "play.yml"), "--limit", node(lab),
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


# An HGX H100 baseboard as nvidia_host's detection sees it in sysfs: 4 NVSwitches, 8 GPUs.
FAKE_HGX = (
    "set -e; for b in 05 06 07 08 18 2a 3a 5d 9a ab ba db; do d=/srv/fake-sys/devices/0000:$b:00.0; mkdir -p $d;"
    " echo 0x10de > $d/vendor; case $b in 0?) echo 0x068000 > $d/class; echo 0x22a3 > $d/device;;"
    " *) echo 0x030200 > $d/class; echo 0x2330 > $d/device;; esac; done;"
    " mkdir -p /srv/fake-sys/bus/pci/devices; for d in /srv/fake-sys/devices/*; do ln -sfn $d /srv/fake-sys/bus/pci/devices/; done"
)
SITE_MIRROR = "https://mirror.site.example/nvidia"
HOST_MODE_PLAY = f"""
- hosts: lab_nodes
  pre_tasks:
    - name: Use the fake PCI bus
      ansible.builtin.set_fact:
        __nvidia_host_pci_dir: /srv/fake-sys/bus/pci/devices
  roles:
    - role: nvidia_host
      vars:
        nvidia_host_driver_mode: host
        nvidia_host_expected_gpu_count: 8
        # The site's mirrors of NVIDIA's repositories (the lab reaches neither; a keyring path
        # stands in for their keys, which deb822_repository would otherwise fetch even in check mode).
        nvidia_host_repository:
          {{url: "{SITE_MIRROR}/cuda/repos/debian12/x86_64/", key_url: /usr/share/keyrings/debian-archive-keyring.gpg, suite: /}}
        nvidia_host_container_toolkit_repository:
          {{url: "{SITE_MIRROR}/libnvidia-container/stable/deb/$(ARCH)", key_url: /usr/share/keyrings/debian-archive-keyring.gpg,
           suite: /}}
        nvidia_host_container_toolkit_version: "1.17.8-1"
"""


def test_host_mode_adds_the_container_toolkit_from_the_site_mirror(lab: NodeLab, tmp_path: Path) -> None:
    """Host driver mode in check mode on a fake HGX: the NVIDIA Container Toolkit's repository (the
    site's mirror of libnvidia-container) and its pin are what the role would write; nothing is
    written. The packages themselves cannot be installed in the lab (not in Debian's archive)."""
    spec = lab.spec()
    assert spec is not None
    sh(lab, FAKE_HGX + "; apt-get install -y -q python3-debian >/dev/null")
    (tmp_path / "host.yml").write_text(HOST_MODE_PLAY)
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(tmp_path / "host.yml"), "--check", "--diff", "--limit", node(lab)],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:]
    assert "8 NVIDIA GPU(s) (PCI device ids 0x2330), 4 NVSwitch(es); driver mode host" in out.stdout
    # deb822_repository shows no diff in check mode: its loop labels name each repository.
    assert f"nvidia-container-toolkit: {SITE_MIRROR}/libnvidia-container/stable/deb/$(ARCH)" in out.stdout
    assert f"nvidia-cuda: {SITE_MIRROR}/cuda/repos/debian12/x86_64/" in out.stdout
    assert re.search(r"would install linux-headers-\S+, linux-headers-amd64, nvidia-open, nvidia-persistenced, nvidia-fabricmanager-570, "
                     r"libnvidia-nscq-570, datacenter-gpu-manager, nvidia-container-toolkit", out.stdout), out.stdout[-3000:]
    assert "Package: nvidia-container-toolkit* libnvidia-container*" in out.stdout
    assert "Pin: version 1.17.8-1" in out.stdout
    # GPUDirect RDMA and performance settings, previewed with the rest.
    assert 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX iommu=pt"' in out.stdout
    assert "kernel.numa_balancing = 0" in out.stdout
    assert sh(lab, "ls /etc/apt/sources.list.d /etc/apt/preferences.d").count("nvidia") == 0


REBOOT_PLAY = """
- hosts: lab_nodes
  tasks:
    # The lab has no driver to install: the role's own "installed, not loaded" state is set instead
    # (set_fact outranks role vars).
    - name: Stand in for a driver installed but not loaded
      ansible.builtin.set_fact:
        __nvidia_host_reboot_pending: true
    - name: Change something whose handler must run before the reboot (as the initramfs must)
      ansible.builtin.command: "true"
      changed_when: true
      notify: Record the boot the handler ran in
    - name: Reboot through the role
      ansible.builtin.include_role:
        name: nvidia_host
        tasks_from: reboot.yml
  handlers:
    - name: Record the boot the handler ran in
      ansible.builtin.shell: cat /proc/sys/kernel/random/boot_id > /root/handler-boot-id
      changed_when: true
"""


def play_reboot(lab: NodeLab, tmp: Path, **extra: object) -> subprocess.CompletedProcess[str]:
    spec = lab.spec()
    assert spec is not None
    (tmp / "reboot.yml").write_text(REBOOT_PLAY)
    return subprocess.run(
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(tmp / "reboot.yml"), "-e", json.dumps(extra)],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_no_reboot_reports_reboot_required(lab: NodeLab, tmp_path: Path) -> None:
    out = play_reboot(lab, tmp_path, nvidia_host_reboot=False)
    assert out.returncode == 0, out.stdout[-4000:]
    for name in node_names(lab):
        assert f"reboot required: the NVIDIA driver is installed but not loaded on {name}" in out.stdout
        assert "System restart required" in sh(lab, "cat /run/reboot-required", name)


def test_reboots_one_node_at_a_time_after_the_handlers(lab: NodeLab, tmp_path: Path) -> None:
    """Drain, reboot, uncordon one node, then the next; the play's handlers ran before any reboot."""
    hooks = tmp_path / "hooks.log"
    boots = {name: sh(lab, "cat /proc/sys/kernel/random/boot_id", name) for name in node_names(lab)}
    out = play_reboot(
        lab,
        tmp_path,
        nvidia_host_reboot=True,
        nvidia_host_reboot_timeout=300,
        nvidia_host_drain_command=f"sh -c 'echo drain {{node}} >> {hooks}'",
        nvidia_host_uncordon_command=f"sh -c 'echo uncordon {{node}} >> {hooks}'",
    )
    assert out.returncode == 0, out.stdout[-4000:]
    first, second = node_names(lab)
    assert hooks.read_text().split("\n")[:-1] == [f"drain {first}", f"uncordon {first}", f"drain {second}", f"uncordon {second}"]
    for name in node_names(lab):
        assert sh(lab, "cat /proc/sys/kernel/random/boot_id", name) != boots[name], f"{name} did not reboot"
        assert sh(lab, "cat /root/handler-boot-id", name) == boots[name], f"{name}: the handler ran after the reboot"
        assert sh(lab, "test -e /run/reboot-required && echo pending || echo cleared", name).strip() == "cleared"


class StallingMirror(ThreadingHTTPServer):
    """The lab's apt cache behind a proxy that answers the first InRelease with its headers and a
    few bytes, then holds the connection open: the half-sent answer that once left a lab node's apt
    waiting for twelve minutes."""

    daemon_threads = True

    def __init__(self, host: str, upstream: str) -> None:
        self.upstream, self.stalled, self.release = upstream, 0, threading.Event()
        super().__init__((host, 0), _MirrorHandler)


class _MirrorHandler(BaseHTTPRequestHandler):
    server: StallingMirror
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        try:
            with urllib.request.urlopen(self.server.upstream + self.path, timeout=60) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.endswith("/InRelease") and status == 200 and not self.server.stalled:
            self.server.stalled += 1
            self.wfile.write(body[:200])
            self.wfile.flush()
            self.server.release.wait(600)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


STALL_PLAY = """
- hosts: NODE
  tasks:
    - ansible.builtin.include_role: {name: baseline, tasks_from: os.yml}
    - ansible.builtin.include_role: {name: baseline, tasks_from: sources.yml}
      vars:
        baseline_apt_mirrors: MIRRORS
        baseline_apt_refresh_timeout: 20
    - ansible.builtin.debug: {var: __baseline_apt_update.attempts}
"""


def test_a_mirror_that_holds_a_half_sent_answer_is_abandoned_and_retried(lab: NodeLab, tmp_path: Path) -> None:
    """The index refresh through a mirror that stalls mid-answer: the attempt is killed on the node
    past baseline_apt_refresh_timeout, the retry fetches again and succeeds, and no apt is left
    running. (Last in this module: the node's sources point at the proxy afterwards.)"""
    spec = lab.spec()
    assert spec is not None
    name = node_names(lab)[-1]
    mirror = StallingMirror(spec.gateway, f"http://{spec.gateway}:3142")
    serving = threading.Thread(target=mirror.serve_forever, daemon=True)
    serving.start()
    try:
        mirrors = {k: v.replace(":3142/", f":{mirror.server_address[1]}/") for k, v in lab_apt_mirrors(spec.gateway).items()}
        (tmp_path / "stall.yml").write_text(STALL_PLAY.replace("NODE", name).replace("MIRRORS", json.dumps(mirrors)))
        started = time.monotonic()
        out = subprocess.run(
            [tool("ansible-playbook"), "-i", str(spec.inventory), str(tmp_path / "stall.yml")],
            env=tool_env(), capture_output=True, text=True, timeout=600, check=False,
        )
        seconds = time.monotonic() - started
    finally:
        mirror.release.set()
        mirror.shutdown()
        mirror.server_close()
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert mirror.stalled == 1
    assert "FAILED - RETRYING" in out.stdout and "Refresh the package index from the mirrors" in out.stdout
    assert '"__baseline_apt_update.attempts": 2' in out.stdout, out.stdout[-3000:]
    assert seconds < 300, seconds  # the stalled attempt ended at its limit, not the mirror's whim
    assert sh(lab, "pgrep -a -x http || true", name).strip() == ""  # apt's http method
    assert f":{mirror.server_address[1]}/" in sh(lab, "cat /etc/apt/sources.list.d/*.sources", name)

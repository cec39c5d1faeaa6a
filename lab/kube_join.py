"""The lab's side of node joins: its cluster served on the bridge, and LXC nodes able to run a kubelet.

The cluster side of a join (bootstrap RBAC bindings, bootstrap tokens) is nodeconfig/cluster_join.py,
the same code `configure` runs against a partnership's existing cluster. The token serve_joins
returns goes to the caller only; it is never logged or written outside the API server.

Node side, lab only (`prepare_lxc_node`): a kubelet in a privileged LXC container differs from one
on a real host in three places, all made by a boot-time unit the lab installs, never by the role:
- the kubelet reads six kernel tunables (vm.overcommit_memory, kernel.panic, ...) and sets them
  when they differ; in a container /proc/sys is the host's and read-only, so the lab shows the
  kubelet the values it wants (read-only files bound over those entries) instead of changing the
  shared host kernel;
- the kubelet's OOM watcher reads /dev/kmsg, which LXC does not give containers: it is linked to
  /dev/console, as kind does for its node containers;
- on a cgroup v1 host with cpu and cpuacct in separate hierarchies, those two are mounted one by
  one (systemd in the container only tries them jointly), since the kubelet requires both.
And one in the kubelet's configuration (KUBELET_CONFIG, passed as the role's
kubernetes_node_kubelet_config): a node's filesystems are the shared host disk.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lab import ssh
from lab.control_plane import ControlPlane
from lab.errors import LabError
from lab.image_registry import ImageRegistry, pause_image
from lab.nodes import NodeLab
from nodeconfig.cluster_join import JoinError, create_bootstrap_token, ensure_bootstrap_rbac, file_sha256
from stacks.design import atomic
from toolchain import pins

# The values the kubelet (pkg/kubelet/cm setupKernelTunables) wants.
KUBELET_TUNABLES = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
LXC_UNIT = "sovereign-lab-kubelet-host.service"

# A lab node's root and image filesystems are the host's disk, shared with everything else on the
# machine. The kubelet's default thresholds are shares of it (imagefs.available < 15 %): once the
# host's disk is 85 % full for any reason, every lab node reports DiskPressure, is tainted, and the
# scheduler places no pod. Absolute floors keep the eviction manager without tying a test's outcome
# to the host's free space; image GC is off for the same reason (the lab seeds each image once).
KUBELET_CONFIG: dict[str, Any] = {
    "evictionHard": {
        "memory.available": "100Mi",
        "nodefs.available": "1Gi",
        "nodefs.inodesFree": "1%",
        "imagefs.available": "1Gi",
        "imagefs.inodesFree": "1%",
    },
    "imageGCHighThresholdPercent": 100,
    "imageGCLowThresholdPercent": 99,
}


SCRIPT = "/usr/local/sbin/sovereign-lab-kubelet-host"


def lxc_script() -> str:
    lines = [
        "#!/bin/sh",
        "# Lab only (lab/kube_join.py): what a kubelet needs from the host that a container lacks.",
        "set -e",
        "ln -sf /dev/console /dev/kmsg",
        # On a cgroup v1 host whose cpu and cpuacct are separate hierarchies, systemd in the
        # container tries to mount them jointly (cpu,cpuacct), fails, and leaves both unmounted.
        "if [ -d /sys/fs/cgroup/memory ]; then",
        "  for c in cpu cpuacct; do",
        "    if ! mountpoint -q /sys/fs/cgroup/$c; then",
        "      mount -o remount,rw /sys/fs/cgroup",
        "      if [ -L /sys/fs/cgroup/$c ]; then rm /sys/fs/cgroup/$c; fi",
        "      mkdir -p /sys/fs/cgroup/$c",
        "      mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c",
        "      mount -o remount,ro /sys/fs/cgroup",
        "    fi",
        "  done",
        "fi",
        "mkdir -p /run/sovereign-lab-sysctl",
    ]
    for key, value in KUBELET_TUNABLES.items():
        flat = key.replace("/", ".")
        lines += [
            f"if ! grep -q ' /proc/sys/{key} ' /proc/self/mountinfo; then",
            f"  echo {value} > /run/sovereign-lab-sysctl/{flat}",
            f"  mount --bind -o ro /run/sovereign-lab-sysctl/{flat} /proc/sys/{key}",
            "fi",
        ]
    return "\n".join(lines) + "\n"


def lxc_unit() -> str:
    """A oneshot unit run at every boot, before containerd and the kubelet (/dev is a fresh tmpfs
    at each container start, and mounts do not survive a reboot)."""
    return "\n".join(
        [
            "[Unit]",
            "Description=Lab only: what a kubelet needs from the host that a container lacks",
            "Before=containerd.service kubelet.service",
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            f"ExecStart={SCRIPT}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def prepare_lxc_node(lab: NodeLab, name: str) -> None:
    """Install and start the lab unit on one node (idempotent)."""
    steps = [
        (f"cat > {SCRIPT} && chmod 0755 {SCRIPT}", lxc_script()),
        (
            f"cat > /etc/systemd/system/{LXC_UNIT} && systemctl daemon-reload && "
            f"systemctl enable --now {LXC_UNIT} >/dev/null 2>&1 && systemctl is-active {LXC_UNIT}",
            lxc_unit(),
        ),
    ]
    spec = lab.spec()
    if spec is None:
        raise LabError(f"lab {lab.name} does not exist")
    node = spec.find(name)
    if node is None:
        raise LabError(f"lab {lab.name} has no node {name}")
    for command, text in steps:
        proc = ssh.run_on(spec, node, command, input=text, share=False)
        if proc.returncode != 0:
            raise LabError(f"preparing {name} for a kubelet failed: {proc.stderr.strip() or proc.stdout.strip()}")


def serve_joins(lab_name: str, state_root: Path | None = None) -> dict[str, Any]:
    """For a lab whose nodes are up: its control plane on the bridge, its registry seeded, the join
    bindings, the nodes prepared, and a fresh token. Returns what a play needs to join nodes
    (the token included: the caller keeps it out of any output)."""
    node_lab = NodeLab(lab_name, state_root=state_root)
    spec = node_lab.spec()
    if spec is None:
        raise LabError(f"lab {lab_name} has no nodes: run `sovereign lab nodes up --name {lab_name}`")
    control_plane = ControlPlane(lab_name, node_lab.dir, address=spec.gateway)
    control_plane.up()
    registry = ImageRegistry(lab_name, node_lab.dir, spec.gateway)
    registry.up()
    registry.seed()
    api = control_plane.api()
    ensure_bootstrap_rbac(api)
    for node in spec.nodes:
        prepare_lxc_node(node_lab, node.name)
    kubelet = pins.tools_dir() / "bin" / "kubelet"
    return {
        "api_server": control_plane.server,
        "ca_cert": control_plane.pki_dir.joinpath("ca.crt").read_text(),
        "bootstrap_token": create_bootstrap_token(api),
        "kubelet": str(kubelet),
        "kubelet_sha256": file_sha256(kubelet),
        "version": pins.KUBERNETES,
        "pause_image": pause_image(),
        "registry_mirror": registry.mirror_for("registry.k8s.io"),
        "kubelet_config": KUBELET_CONFIG,
        "pod_cidrs": {n.name: f"10.244.{n.index}.0/24" for n in spec.nodes},
    }


def stop_joins(lab_name: str, state_root: Path | None = None) -> None:
    """Stop what serve_joins started (safe to repeat; the lab's `down` removes the files)."""
    node_lab = NodeLab(lab_name, state_root=state_root)
    ImageRegistry(lab_name, node_lab.dir, "").down()
    control_plane = ControlPlane(lab_name, node_lab.dir)
    if control_plane.exists():
        control_plane.down()


def main(argv: list[str]) -> int:
    """`python -m lab.kube_join up LAB FILE` (FILE: 0600 JSON from serve_joins) | `down LAB`:
    for Molecule's prepare and destroy steps, which have no other way to start the cluster."""
    if len(argv) < 2 or argv[0] not in ("up", "down") or (argv[0] == "up" and len(argv) != 3):
        print("usage: python -m lab.kube_join up LAB FILE | down LAB", file=sys.stderr)
        return 2
    try:
        if argv[0] == "down":
            stop_joins(argv[1])
            return 0
        settings = serve_joins(argv[1])
    except (LabError, JoinError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    atomic.write_file(Path(argv[2]), json.dumps(settings), mode=0o600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

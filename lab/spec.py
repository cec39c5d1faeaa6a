"""What a lab is, as data: its name, subnet octet and node count, and every name and path
derived from them. Recorded in `<lab dir>/lab.json` so other tools (Ansible, testinfra,
molecule) can find the nodes without importing this package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import network, sockets

LAB_JSON_VERSION = 1
# The longest name a lab's ControlPath pattern `cm-%r@%h:%p` expands to (the lab connects as root).
_LONGEST_SOCKET = len("cm-root@10.250.254.254:22")


def node_name(lab: str, index: int) -> str:
    """`<lab>-node<i>`, in every lab including `default`.

    Node names double as hostnames and LXC container names, and container names become cgroup
    names (`lxc.payload.<name>`), which are host-wide. Plain `node1` would collide with any other
    `node1` container on the host (a second lab, a scratch nodesim): LXC then renames cgroups
    behind our back and leftover checks can no longer tell whose is whose.
    """
    return f"{lab}-node{index}"


@dataclass(frozen=True)
class Node:
    index: int
    name: str
    ip: str


@dataclass(frozen=True)
class LabSpec:
    name: str
    octet: int
    lab_dir: Path
    rootfs: Path
    count: int
    mirror: dict[str, tuple[str, ...]]  # mirror host -> IPv4 addresses (NAT allows only these)

    # --- network ---
    @property
    def bridge(self) -> str:
        return network.bridge_name(self.octet)

    @property
    def subnet(self) -> str:
        return str(network.subnet(self.octet))

    @property
    def gateway(self) -> str:
        return network.gateway(self.octet)

    @property
    def chain(self) -> str:
        return network.chain_name(self.octet)

    @property
    def mirror_ips(self) -> tuple[str, ...]:
        return tuple(sorted({ip for ips in self.mirror.values() for ip in ips}))

    # --- nodes ---
    @property
    def nodes(self) -> list[Node]:
        return [self.node(i) for i in range(1, self.count + 1)]

    def node(self, index: int) -> Node:
        return Node(index, node_name(self.name, index), network.node_ip(self.octet, index))

    def find(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    # --- files ---
    @property
    def lxc_path(self) -> Path:
        return self.lab_dir / "lxc"

    @property
    def ssh_key(self) -> Path:
        return self.lab_dir / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.lab_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.lab_dir / "inventory.ini"

    @property
    def lab_json(self) -> Path:
        return self.lab_dir / "lab.json"

    @property
    def control_dir(self) -> Path:
        """Where the lab's ssh ControlMaster sockets go (its own and Ansible's): lab.sockets."""
        return sockets.socket_dir(self.lab_dir, _LONGEST_SOCKET)

    @property
    def control_path(self) -> str:
        return f"{self.control_dir}/cm-%r@%h:%p"

    def node_dir(self, node: Node) -> Path:
        return self.lxc_path / node.name

    # --- lab.json ---
    def to_json(self) -> dict[str, Any]:
        return {
            "version": LAB_JSON_VERSION,
            "name": self.name,
            "bridge": self.bridge,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "ntp_server": self.gateway,  # lab/ntp.py: stands in for the site's NTP servers
            "apt_cache": f"http://{self.gateway}:3142",  # lab/aptcache.py: the site's package mirror
            "octet": self.octet,
            "lab_dir": str(self.lab_dir),
            "lxc_path": str(self.lxc_path),
            "rootfs": str(self.rootfs),
            "ssh_key": str(self.ssh_key),
            "ssh_config": str(self.ssh_config),
            "known_hosts": str(self.known_hosts),
            "control_dir": str(self.control_dir),  # derived; recorded for tools that look for masters
            "inventory": str(self.inventory),
            "mirror": {host: list(ips) for host, ips in self.mirror.items()},
            "nodes": [{"name": n.name, "ip": n.ip} for n in self.nodes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabSpec:
        return cls(
            name=data["name"],
            octet=int(data["octet"]),
            lab_dir=Path(data["lab_dir"]),
            rootfs=Path(data["rootfs"]),
            count=len(data["nodes"]),
            mirror={host: tuple(ips) for host, ips in data.get("mirror", {}).items()},
        )

    @classmethod
    def load(cls, lab_dir: Path) -> LabSpec | None:
        try:
            return cls.from_json(json.loads((lab_dir / "lab.json").read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

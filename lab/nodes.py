"""Lab nodes: real Debian 12 systemd machines, reached over real SSH.

Each node is a privileged LXC system container on the lab's private bridge, its root an
overlay of one cached debootstrap rootfs (lab.rootfs) plus a small per-node delta holding its
identity: hostname, /etc/hosts, machine-id, SSH host key and the lab's authorized key.

    lab = NodeLab("ci")            # or NodeLab() for $SOVEREIGN_LAB / "default"
    status = lab.up(3)             # idempotent; returns when every node answers SSH
    lab.stop_node("ci-node2"); lab.start_node("ci-node2")
    lab.down()                     # nothing of the lab is left on the host

Files for other tools live in the lab dir (see lab.spec.LabSpec): lab.json, inventory.ini,
ssh_config, known_hosts, id_ed25519.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import aptcache, lxc, network, ntp, paths, render, sockets, ssh
from lab.errors import LabError, LabInputError
from lab.host import Progress, ensure_host_packages, mountpoints, remove_tree, require_root, run
from lab.image_registry import ImageRegistry
from lab.mirror import Mirror, host_mirror
from lab.registry import Claim, Registry
from lab.rootfs import ensure_rootfs
from lab.spec import LabSpec, Node
from stacks.design import atomic

DEFAULT_COUNT = 3


@dataclass(frozen=True)
class NodeStatus:
    name: str
    ip: str
    state: str  # RUNNING, STOPPED, MISSING (defined in lab.json, not on disk), UNKNOWN (not root)
    ssh: bool  # port 22 answers


@dataclass(frozen=True)
class LabStatus:
    name: str
    exists: bool
    spec: LabSpec | None = None
    nodes: list[NodeStatus] = field(default_factory=list)

    @property
    def running(self) -> int:
        return sum(n.state == "RUNNING" for n in self.nodes)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "exists": self.exists}
        if self.spec:
            data.update(self.spec.to_json())
        data["nodes"] = [vars(n) for n in self.nodes]
        return data


class NodeLab:
    def __init__(
        self,
        name: str | None = None,
        *,
        state_root: Path | None = None,
        cache_root: Path | None = None,
        registry: Registry | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.name = paths.lab_name(name)
        self.dir = paths.lab_dir(self.name, state_root)
        self._cache = cache_root
        self._registry = registry or Registry()
        self._say: Progress = progress or (lambda _msg: None)

    def spec(self) -> LabSpec | None:
        return LabSpec.load(self.dir)

    # --- up ------------------------------------------------------------------------------------
    def up(self, count: int | None = None, *, timeout: float = 120.0) -> LabStatus:
        """Bring the lab to at least `count` running nodes (default: as many as it has, or 3)."""
        if count is not None and not 1 <= count <= network.MAX_NODES:
            raise LabInputError(f"--count must be between 1 and {network.MAX_NODES}, got {count}")
        require_root()
        ensure_host_packages(self._say)
        mirror = host_mirror()
        with self._registry.lab_lock(self.name):
            old = self.spec()
            # Any claimed lab (this one included) may have nodes on the base: never swap it under them.
            in_use = bool(self._registry.claims())
            rootfs = ensure_rootfs(mirror, cache=self._cache, in_use=in_use, progress=self._say)
            want = count or (old.count if old else DEFAULT_COUNT)
            if old and want < old.count:
                self._say(f"lab {self.name} keeps its {old.count} nodes: `up` never removes nodes")
            spec = self._claim_network(old, rootfs, mirror, max(want, old.count if old else 0))
            running = {n.name for n in spec.nodes if lxc.state(spec.lxc_path, n.name) == "RUNNING"}
            self._write_lab_files(spec, running)
            started = time.monotonic()
            for node in spec.nodes:
                if node.name not in running:
                    self._say(f"starting {node.name} ({node.ip})")
                    lxc.start(spec.lxc_path, node.name)
            ntp.start(spec.octet, spec.gateway, spec.subnet, self._cache)
            aptcache.start(spec.octet, spec.gateway, self.dir / "apt-cache", self._cache)
            self._say(f"waiting for SSH on {spec.count} node(s)")
            ssh.wait_ready(spec, spec.nodes, timeout)
            if running and len(running) < spec.count:  # peers were added: tell the old nodes
                self._push_hosts(spec, [n for n in spec.nodes if n.name in running])
            self._say(
                f"lab {self.name}: {spec.count} node(s) answer SSH ({time.monotonic() - started:.1f} s)"
            )
        return self.status()

    def _claim_network(self, old: LabSpec | None, rootfs: Path, mirror: Mirror, count: int) -> LabSpec:
        """Claim a name and a /24 host-wide, record them, then build bridge and rules."""
        reg = self._registry
        with reg.lock():
            claims = reg.claims()
            mine = next((c for c in claims if c.name == self.name), None)
            if mine and Path(mine.lab_dir) != self.dir:
                raise LabInputError(
                    f"a lab named {self.name!r} already runs from {mine.lab_dir}; choose another --name"
                )
            claimed = {c.octet: c.name for c in claims}
            nets = network.host_networks()
            recorded = old.octet if old else (mine.octet if mine else None)
            if recorded and network.octet_clash(recorded, claimed, self.name, nets) is None:
                octet = recorded
            elif old and any(lxc.state(old.lxc_path, n.name) == "RUNNING" for n in old.nodes):
                reason = network.octet_clash(old.octet, claimed, self.name, nets)
                raise LabError(f"lab {self.name}'s subnet {old.subnet} is now {reason}; run down, then up")
            else:
                octet = network.choose_octet(
                    self.name, lambda o: network.octet_clash(o, claimed, self.name, nets)
                )
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            reg.put(Claim(self.name, str(self.dir), octet))
            spec = LabSpec(
                self.name,
                octet,
                self.dir,
                rootfs,
                count,
                {h: ips for h, ips in mirror.addresses.items() if ips},
            )
            _write(spec.lab_json, json.dumps(spec.to_json(), indent=2) + "\n")  # `down` needs it early
            self._say(f"network {spec.bridge} {spec.subnet}, NAT only to {', '.join(spec.mirror_ips)}")
            network.bridge_up(octet)
            network.rules_up(octet, self.name, spec.mirror_ips)
            network.enable_forwarding(reg)
        return spec

    def _write_lab_files(self, spec: LabSpec, running: set[str]) -> None:
        ssh.keygen(spec.ssh_key, f"sovereign-lab-{spec.name}")
        pubkey = spec.ssh_key.with_suffix(".pub").read_text()
        for node in spec.nodes:
            if node.name not in running:  # never write into a mounted overlay's upper dir
                _prepare_node(spec, node, pubkey)
        host_keys = {}
        for node in spec.nodes:
            pub = spec.node_dir(node) / "delta0/etc/ssh/ssh_host_ed25519_key.pub"
            host_keys[node.name] = " ".join(pub.read_text().split()[:2])
        _write(spec.known_hosts, render.known_hosts(spec, host_keys))
        sockets.ensure(spec.control_dir)
        _write(spec.ssh_config, render.ssh_config(spec))
        _write(spec.inventory, render.inventory(spec))

    def _push_hosts(self, spec: LabSpec, nodes: list[Node]) -> None:
        hosts = render.etc_hosts(spec)
        for node in nodes:
            proc = ssh.run_on(spec, node, "cat > /etc/hosts", input=hosts, share=False)
            if proc.returncode != 0:
                raise LabError(f"updating /etc/hosts on {node.name} failed: {proc.stderr.strip()}")

    # --- single nodes --------------------------------------------------------------------------
    def stop_node(self, name: str, *, kill: bool = False, timeout: int = 10) -> None:
        """Power a node off (or pull its plug with kill=True); its disk (delta) is kept."""
        require_root()
        spec, node = self._node(name)
        with self._registry.lab_lock(self.name):
            ssh.close_masters(spec, node)
            lxc.stop(spec.lxc_path, node.name, kill=kill, timeout=timeout)

    def start_node(self, name: str, *, timeout: float = 120.0) -> None:
        """Boot a stopped node again and wait for its SSH."""
        require_root()
        spec, node = self._node(name)
        if not network.link_exists(spec.bridge):
            raise LabError(f"lab {self.name} has no network ({spec.bridge}): run `sovereign lab nodes up`")
        with self._registry.lab_lock(self.name):
            if lxc.state(spec.lxc_path, node.name) != "RUNNING":
                _prepare_node(spec, node, spec.ssh_key.with_suffix(".pub").read_text())
                lxc.start(spec.lxc_path, node.name)
            ssh.wait_ready(spec, [node], timeout)

    def ssh(self, name: str, command: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command on a node over SSH (through the lab's ssh_config); for tests and tools."""
        spec, node = self._node(name)
        return ssh.run_on(spec, node, command, timeout=timeout)

    def _node(self, name: str) -> tuple[LabSpec, Node]:
        spec = self.spec()
        if spec is None:
            raise LabError(f"lab {self.name} does not exist: run `sovereign lab nodes up --name {self.name}`")
        node = spec.find(name)
        if node is None:
            raise LabInputError(
                f"lab {self.name} has no node {name!r} (nodes: {', '.join(n.name for n in spec.nodes)})"
            )
        return spec, node

    # --- status --------------------------------------------------------------------------------
    def status(self) -> LabStatus:
        spec = self.spec()
        if spec is None:
            return LabStatus(self.name, exists=self.dir.exists())
        root = os.geteuid() == 0
        states = {n.name: lxc.state(spec.lxc_path, n.name) if root else "UNKNOWN" for n in spec.nodes}
        with ThreadPoolExecutor(max_workers=min(16, spec.count)) as pool:
            answers = dict(
                zip(
                    [n.name for n in spec.nodes],
                    pool.map(lambda n: states[n.name] != "STOPPED" and ssh.port_open(n.ip), spec.nodes),
                )
            )
        nodes = [NodeStatus(n.name, n.ip, states[n.name], answers[n.name]) for n in spec.nodes]
        return LabStatus(self.name, exists=True, spec=spec, nodes=nodes)

    # --- down ----------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Remove the lab entirely; safe to repeat and after a failed `up`. Returns what went."""
        require_root()
        removed: list[str] = []
        with self._registry.lab_lock(self.name):
            spec = self.spec()
            claim = self._registry.get(self.name)
            if claim and Path(claim.lab_dir) != self.dir:
                claim = None  # same name, another state root: not ours to remove
            octet = spec.octet if spec else claim.octet if claim else None
            lxc_path = self.dir / "lxc"
            names = sorted(set(lxc.containers(lxc_path)) | {n.name for n in (spec.nodes if spec else [])})
            if spec:
                ssh.close_masters(spec)
            with ThreadPoolExecutor(max_workers=max(1, min(16, len(names)))) as pool:
                list(pool.map(lambda n: lxc.stop(lxc_path, n, kill=True), names))
            removed += [f"container {n}" for n in names]
            if lxc.wait_monitors_gone(lxc_path):  # killed hung monitors: give the kernel a moment
                time.sleep(0.2)
            for mnt in sorted(
                (m for m in mountpoints() if self.dir in m.parents), key=lambda m: len(m.parts), reverse=True
            ):
                run(["umount", "-l", mnt], check=False)
                removed.append(f"mount {mnt}")
            if octet is not None:
                ntp.stop(octet)
                removed.append("ntp server")
                aptcache.stop(octet)
                removed.append("apt cache")
            # A cluster run (configure --cluster, an expand join) started the lab's registry; left
            # running, it keeps the bridge address, and a later lab on that subnet pulls from it.
            registry = ImageRegistry(self.name, self.dir, "")
            if registry.daemon.pid() is not None:
                registry.down()
                removed.append("image registry")
            with self._registry.lock():
                if octet is not None:
                    network.rules_down(octet)
                    network.links_down(octet)
                    removed += [
                        f"bridge {network.bridge_name(octet)}",
                        f"iptables chain {network.chain_name(octet)}",
                    ]
                self._registry.release(self.name)
                alone = not self._registry.claims()
                stuck = lxc.remove_cgroups(lxc.cgroup_leftovers(names))
                if alone:  # LXC's shared helper cgroup; busy if foreign containers run: then leave it
                    lxc.remove_cgroups(lxc.cgroup_leftovers([], pivot=True))
                    network.restore_forwarding(self._registry)
            if stuck:
                raise LabError(f"cgroups still busy after down: {', '.join(map(str, stuck[:3]))}")
            if spec:
                remove_tree(spec.control_dir)
            if self.dir.exists():
                remove_tree(self.dir)
                removed.append(f"directory {self.dir}")
        return removed


def _prepare_node(spec: LabSpec, node: Node, authorized_key: str) -> None:
    """The node's identity in its overlay delta; machine-id and host key survive restarts."""
    ndir = spec.node_dir(node)
    delta = ndir / "delta0"
    for sub, mode in (("etc", 0o755), ("etc/ssh", 0o755), ("root", 0o700), ("root/.ssh", 0o700)):
        (delta / sub).mkdir(parents=True, exist_ok=True)
        (delta / sub).chmod(mode)  # upper dirs' modes win in the merged view
    _write(delta / "etc/hostname", node.name + "\n", 0o644)
    _write(delta / "etc/hosts", render.etc_hosts(spec), 0o644)
    if not (delta / "etc/machine-id").exists():
        _write(delta / "etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    ssh.keygen(delta / "etc/ssh/ssh_host_ed25519_key", f"root@{node.name}")
    _write(delta / "root/.ssh/authorized_keys", authorized_key, 0o600)
    _write(ndir / "config", render.lxc_config(spec, node), 0o644)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    """Readers (Ansible, a parallel status) never see half a file."""
    atomic.write_file(path, text, mode=mode)

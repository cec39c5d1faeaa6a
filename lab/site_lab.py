"""The whole lab as one thing: Kubernetes (control plane + simulated design nodes) and SSH nodes.

    lab = SiteLab("default")
    lab.up(stack="ke-staging", gpu_nodes=64, ssh_nodes=3)   # idempotent
    lab.status()                                            # per component health, node counts
    lab.down()                                              # nothing left behind

The Kubernetes part runs as the calling user on loopback; the SSH nodes (LXC) need root. With
`ssh_nodes=0` the lab is Kubernetes only, which is what the engine tests need.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lab import paths
from lab.bmc import BmcLab, site_bmcs_down, site_bmcs_up
from lab.chart_mirror import ChartMirror
from lab.chart_repo import default_source
from lab.control_plane import ControlPlane
from lab.errors import LabInputError
from lab.host import Progress, remove_tree
from lab.image_registry import ImageRegistry
from lab.nodes import NodeLab
from lab.registry import Registry
from lab.sim_nodes import ensure_nodes, simulated_nodes
from stacks.design import atomic
from stacks.design.loader import InputError, load_and_design


class SiteLab:
    def __init__(self, name: str | None = None, *, state_root: Path | None = None, progress: Progress | None = None):
        self.name = paths.lab_name(name)
        self.dir = paths.lab_dir(self.name, state_root)
        self._state_root = state_root
        self.say: Progress = progress or (lambda _m: None)
        self.control_plane = ControlPlane(self.name, self.dir, self.say)
        self.chart_mirror = ChartMirror(self.dir, self.name)

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    def _nodes(self) -> NodeLab:
        return NodeLab(self.name, state_root=self._state_root, progress=self.say)

    def up(
        self, *, stack: str, site: str | None = None, gpu_nodes: int = 64, ssh_nodes: int = 0, bmcs: int = 0,
        charts: Path | None = None,
    ) -> dict[str, Any]:
        try:
            _, planned = load_and_design(stack)
        except InputError as exc:
            raise LabInputError(f"--stack {stack}: {exc}") from None
        chosen = [s for s in planned.sites if site in (None, s.site)]
        if not chosen:
            raise LabInputError(f"--site {site}: not a site of {stack} ({', '.join(s.site for s in planned.sites)})")
        site_design = chosen[0]
        if gpu_nodes > site_design.nodes.gpu:
            raise LabInputError(
                f"--gpu-nodes {gpu_nodes}: the design of {site_design.site} has {site_design.nodes.gpu} GPU nodes"
            )
        if bmcs > site_design.nodes.gpu:
            raise LabInputError(f"--bmcs {bmcs}: the design of {site_design.site} has {site_design.nodes.gpu} GPU servers")
        if ssh_nodes:
            self._nodes().up(ssh_nodes)
        if bmcs:
            self.say(f"BMCs: sushy-tools Redfish emulator with {bmcs} servers, artifact server")
            site_bmcs_up(self.dir, site_design, bmcs)
        self.say("control plane: starting etcd, kube-apiserver, controller-manager, scheduler, kwok")
        self.control_plane.up()
        created, present = ensure_nodes(self.control_plane.api(), site_design, gpu_nodes)
        self.say(f"simulated nodes: {created} created, {present} already there")
        source = charts or default_source()
        if source is None:
            raise LabInputError(
                "no charts to mirror: pass --charts DIR (a folder of unpacked Helm charts, e.g. shared/charts) "
                "or set SOVEREIGN_CHARTS; the lab, like an air-gapped site, installs charts only from its mirror"
            )
        self.say(f"chart mirror: packaging the charts of {source}")
        self.chart_mirror.up(source)
        record = {"stack": stack, "site": site_design.site, "gpu_nodes": gpu_nodes, "platform": site_design.platform}
        atomic.write_file(self.control_plane.dir / "site.json", json.dumps(record, indent=2))
        return self.status()

    def status(self) -> dict[str, Any]:
        cp = self.control_plane
        data: dict[str, Any] = {"name": self.name, "dir": str(self.dir), "kubernetes": None, "nodes": None}
        if cp.exists():
            health = cp.health()
            site_file = cp.dir / "site.json"
            kube: dict[str, Any] = {
                "kubeconfig": str(cp.kubeconfig),
                "server": cp.server,
                "components": health,
                "healthy": all(c["healthy"] for c in health.values()),
                "site": json.loads(site_file.read_text()) if site_file.is_file() else None,
            }
            if health["kube-apiserver"]["healthy"]:
                sims = simulated_nodes(cp.api())
                kube["simulated_nodes"] = {
                    "total": len(sims),
                    "gpu": sum("nvidia.com/gpu" in n["status"].get("capacity", {}) for n in sims),
                    "ready": sum(_ready(n) for n in sims),
                }
            data["kubernetes"] = kube
            data["chart_mirror"] = self.chart_mirror.status()
        data["bmcs"] = BmcLab(self.dir).status()
        if os.geteuid() == 0:
            nodes = self._nodes().status()
            data["nodes"] = nodes.to_json() if nodes.exists else None
        return data

    def down(self) -> list[str]:
        removed: list[str] = []
        if self.chart_mirror.dir.exists():
            self.chart_mirror.down()
            remove_tree(self.chart_mirror.dir)
            removed.append("chart mirror")
        registry = ImageRegistry(self.name, self.dir, "")
        if registry.daemon.pid() is not None:
            registry.down()
            removed.append("image registry")
        if self.control_plane.exists() or self.control_plane.dir.exists():
            self.control_plane.down()
            remove_tree(self.control_plane.dir)
            removed.append("kubernetes control plane")
        if BmcLab(self.dir).exists():
            site_bmcs_down(self.dir)
            removed.append("BMC emulator and artifact server")
        node_lab = self._nodes()
        if os.geteuid() == 0 and (node_lab.spec() is not None or Registry().get(self.name) is not None):
            removed += node_lab.down()
        elif self.dir.exists() and not any(self.dir.iterdir()):
            self.dir.rmdir()
        return removed


def _ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in node["status"].get("conditions", []))

"""The design's nodes as simulated Kubernetes nodes (kwok): GPU nodes and the management nodes.

A node is created with its design name, its topology labels and, for GPU nodes, the
`nvidia.com/gpu` capacity and the labels GPU Feature Discovery would set, so GPU pods schedule
onto them and reach Running (kwok plays the kubelet). Management nodes carry no GPUs and no
taint: the platform's operators and controllers run there, as on a real site.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lab.control_plane import KWOK_ANNOTATION
from lab.kubeapi import ApiError, KubeApi
from nodeconfig.nodes import NodePlan, iter_nodes
from stacks.design.node_labels import GPU_FEATURES, gpu_labels, rail_group, topology_labels
from stacks.design.sizing import SiteDesign

SIMULATED = "sovereign.io/simulated"
_CPU_NODE = {"cpu": "112", "memory": "2063384Mi", "pods": "110", "ephemeral-storage": "3500Gi"}


def node_objects(site: SiteDesign, gpu_nodes: int) -> Iterator[dict[str, Any]]:
    """The first `gpu_nodes` GPU nodes of the design, then every management node."""
    arch = GPU_FEATURES[site.platform].arch
    count = 0
    for index, plan in enumerate(iter_nodes(site)):
        if plan.group == "gpu":
            if count >= gpu_nodes:
                continue
            count += 1
            labels = {
                **topology_labels(site.site, "gpu", plan.rack, plan.su, rail_group(index, site.platform)),
                **gpu_labels(site.platform),
            }
            gpus = labels["nvidia.com/gpu.count"]
            yield _node(plan, labels, {**_CPU_NODE, "nvidia.com/gpu": gpus}, arch)
        elif plan.group == "management":
            yield _node(plan, topology_labels(site.site, "management", plan.rack), _CPU_NODE, "amd64")


def _node(plan: NodePlan, labels: dict[str, str], capacity: dict[str, str], arch: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": plan.name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": plan.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "type": "kwok",
                SIMULATED: "true",
                **labels,
            },
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": plan.data_ip}],
            "nodeInfo": {"architecture": arch, "operatingSystem": "linux", "kubeletVersion": "kwok",
                         "containerRuntimeVersion": "kwok", "osImage": "simulated by kwok"},
        },
    }


def ensure_nodes(api: KubeApi, site: SiteDesign, gpu_nodes: int) -> tuple[int, int]:
    """Create the missing simulated nodes; returns (created, already there)."""
    wanted = list(node_objects(site, gpu_nodes))

    def create(obj: dict[str, Any]) -> bool:
        try:
            api.create("/api/v1/nodes", obj)
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = sum(pool.map(create, wanted))
    return created, len(wanted) - created


def simulated_nodes(api: KubeApi) -> list[dict[str, Any]]:
    return list(api.get("/api/v1/nodes", labelSelector=f"{SIMULATED}=true")["items"])


def label_drift(api: KubeApi, site: SiteDesign) -> tuple[int, list[str]]:
    """Compare every design node in the cluster with the labels the design gives it.

    Returns (nodes checked, one line per node whose topology or GPU labels differ or are
    missing). Nodes the design does not name are not checked: a site runs other machines too.
    """
    wanted = {obj["metadata"]["name"]: obj["metadata"]["labels"] for obj in node_objects(site, site.nodes.gpu)}
    checked, drift = 0, []
    for node in api.get("/api/v1/nodes")["items"]:
        name = node["metadata"]["name"]
        if name not in wanted:
            continue
        checked += 1
        have = node["metadata"].get("labels", {})
        wrong = sorted(k for k, v in wanted[name].items() if k.startswith(_CHECKED) and have.get(k) != v)
        if wrong:
            drift.append(f"{name}: " + ", ".join(f"{k}={have.get(k, '(missing)')} (design: {wanted[name][k]})"
                                                 for k in wrong))
    return checked, drift


_CHECKED = ("sovereign.io/", "topology.kubernetes.io/", "nvidia.com/gpu.product", "nvidia.com/gpu.count")

"""What real kubelets on the lab's nodes need from the lab, for both of `sovereign configure
--lab NAME`'s clusters (a greenfield stack's own with `--cluster`, an expand stack's existing one):
the site CA, the in-country registry, and the kubelet nodes' container deviations.

- The site CA is the lab's CA (lab/pki.py, `<lab>/kube/pki`): it certifies the lab's registry too,
  so nodes that trust the cluster CA pull from the registry, as a site's nodes from its mirror.
- The registry (lab/image_registry.py) is started and seeded with the pause image the project builds.
- Each kubelet node gets the lab unit of lab/kube_join.py and its kubelet the lab's eviction floors;
  containerd uses the `native` snapshotter and no negative OOM scores (roles/kubernetes_node/README.md,
  "In the lab's LXC containers").
"""

from __future__ import annotations

from typing import Any

from lab.image_registry import ImageRegistry, pause_image
from lab.kube_join import KUBELET_CONFIG, prepare_lxc_node
from lab.nodes import NodeLab
from lab.pki import LabCA
from nodeconfig.cluster_pki import Pem


def prepare(lab_name: str, kubelet_nodes: list[str]) -> tuple[Pem, dict[str, Any]]:
    """The site CA and the group variables the lab's nodes need beside the design's."""
    node_lab = NodeLab(lab_name)
    spec = node_lab.spec()
    assert spec is not None, "the caller checked the lab exists"
    registry = ImageRegistry(node_lab.name, node_lab.dir, spec.gateway)
    registry.up()
    registry.seed()
    for name in kubelet_nodes:
        prepare_lxc_node(node_lab, name)
    ca = LabCA(registry.pki_dir, node_lab.name)
    lab_vars = {
        "container_runtime_snapshotter": "native",
        "container_runtime_restrict_oom_score_adj": True,
        "container_runtime_sandbox_image": pause_image(),
        "kubernetes_node_kubelet_config": KUBELET_CONFIG,
    }
    return Pem(ca.ca.cert.read_text(), ca.ca.key.read_text()), lab_vars

"""The labels a node of the design carries in Kubernetes: its place in the site and its GPUs.

Topology labels (site, scalable unit, rack, rail group) come from the design; real nodes get them
at join (kubelet `--node-labels`), the lab's simulated nodes are created with them. GPU labels are
the ones NVIDIA's GPU Feature Discovery sets on a node with these GPUs, so workloads select the
lab's simulated nodes exactly as they would select real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.design.catalog import PLATFORMS

PREFIX = "sovereign.io"
SITE, SU, RACK, RAIL_GROUP, ROLE = (f"{PREFIX}/{k}" for k in ("site", "su", "rack", "rail-group", "role"))


@dataclass(frozen=True, slots=True)
class GpuFeatures:
    product: str  # nvidia.com/gpu.product: the name nvidia-smi reports, spaces as dashes
    memory_mib: int  # nvidia.com/gpu.memory: framebuffer as nvidia-smi reports it, MiB
    family: str  # nvidia.com/gpu.family: the architecture
    mig_capable: bool
    arch: str  # kubernetes.io/arch of the node
    source: str


# Products and memory as GFD reports them on each platform's GPU; memory is the datasheet's
# capacity as nvidia-smi shows it (a little below the marketed GB: some is reserved).
GPU_FEATURES: dict[str, GpuFeatures] = {
    "hgx-h100": GpuFeatures("NVIDIA-H100-80GB-HBM3", 81559, "hopper", True, "amd64",
                            "NVIDIA H100 datasheet: 80 GB HBM3; GFD label format, gpu-feature-discovery README"),
    "hgx-h100-roce": GpuFeatures("NVIDIA-H100-80GB-HBM3", 81559, "hopper", True, "amd64",
                                 "as hgx-h100"),
    "hgx-h200": GpuFeatures("NVIDIA-H200", 143771, "hopper", True, "amd64",
                            "NVIDIA H200 datasheet: 141 GB HBM3e"),
    "hgx-b200": GpuFeatures("NVIDIA-B200", 183359, "blackwell", True, "amd64",
                            "NVIDIA DGX B200 datasheet: 1,440 GB for 8 GPUs (180 GB each)"),
    "gb200-nvl72": GpuFeatures("NVIDIA-GB200", 189471, "blackwell", True, "arm64",
                               "NVIDIA GB200 NVL72 datasheet: up to 186 GB HBM3e per GPU; Grace CPUs are arm64"),
    "gb300-nvl72": GpuFeatures("NVIDIA-GB300", 284208, "blackwell", True, "arm64",
                               "NVIDIA GB300 NVL72 datasheet: up to 288 GB HBM3e per GPU; Grace CPUs are arm64"),
}


def topology_labels(site: str, role: str, rack: int, su: int | None = None, rail_group: int | None = None) -> dict[str, str]:
    labels = {SITE: site, ROLE: role, RACK: f"{rack:04d}", "topology.kubernetes.io/zone": site}
    if su is not None:
        labels[SU] = f"su{su:02d}"
    if rail_group is not None:
        labels[RAIL_GROUP] = f"rg{rail_group:03d}"
    return labels


def gpu_labels(platform_key: str) -> dict[str, str]:
    platform, gpu = PLATFORMS[platform_key], GPU_FEATURES[platform_key]
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": gpu.product,
        "nvidia.com/gpu.count": str(platform.gpus_per_node),
        "nvidia.com/gpu.memory": str(gpu.memory_mib),
        "nvidia.com/gpu.family": gpu.family,
        "nvidia.com/mig.capable": str(gpu.mig_capable).lower(),
        "nvidia.com/gpu.deploy.operands": "true",
        "kubernetes.io/arch": gpu.arch,
    }


def rail_group(node_index: int, platform_key: str) -> int:
    """1-based: the nodes that share one leaf switch on every rail (rail-optimised fabric)."""
    return node_index // (PLATFORMS[platform_key].fabric.switch.ports // 2) + 1

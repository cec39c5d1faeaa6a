"""Ansible inventory for a site: from the site design, or from the lab's nodes standing in for it.

Group layout (the playbook assigns roles by these groups):
    gpu -> su01, su02, ...   GPU nodes by scalable unit (one shard each for parallel runs)
    storage                  parallel-filesystem servers
    management               control plane / head nodes
Role inputs that follow from the partnership (NTP, registry mirrors, banner authority, expected
GPUs, InfiniBand interfaces) are group vars; nothing secret is ever put in the inventory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nodeconfig.nodes import NodePlan, iter_nodes
from nodeconfig.runner import Shard
from stacks.design.burnin_figures import NVLINK_GBYTES, burnin_figures
from stacks.design.catalog import PLATFORMS, FabricKind, Platform
from stacks.design.hcas import HCA_LAYOUTS, HcaLayout, rail_address
from stacks.design.partnership import Partnership, Site
from stacks.design.sizing import SiteDesign

# /etc/hosts lists every node only while that stays small; larger sites rely on DNS.
HOSTS_FILE_LIMIT = 512
STORAGE_PREFIX_FALLBACK = 16
STORAGE_HCA_PORTS = 1  # one storage-fabric port per storage server in the design


@dataclass(frozen=True, slots=True)
class NodeProfile:
    """What a platform's GPU nodes run beside the driver, per NVIDIA's platform guides. The roles
    (nvidia_host) and the acceptance suite read the same variables, set here from the catalog."""

    nvswitch: bool  # NVSwitches on the node's baseboard: Fabric Manager (HGX)
    nvlsm: bool  # NVLink subnet manager beside Fabric Manager (HGX B200: NVSwitches off the PCI bus)
    imex: bool  # IMEX: GPU memory shared across the nodes of an NVL72 rack (GB200/GB300)
    # Burn-in link figures the acceptance suite judges against (None: no constraint).
    nvlinks_per_gpu: int | None = 18  # H100/H200 (NVLink 4) and Blackwell (NVLink 5) SXM: 18 links
    gpu_pcie: tuple[int, int] | None = (5, 16)  # HGX GPUs: PCIe Gen5 x16 (datasheets: 128 GB/s)
    hca_pcie: tuple[int, int] | None = (5, 16)  # ConnectX-7 / BlueField-3: PCIe Gen5 x16

    def role_vars(self) -> dict[str, Any]:
        figures = {
            "nvidia_host_expected_nvlinks_per_gpu": self.nvlinks_per_gpu,
            **({"nvidia_host_expected_pcie_gen": self.gpu_pcie[0], "nvidia_host_expected_pcie_width": self.gpu_pcie[1]}
               if self.gpu_pcie else {}),
            **({"infiniband_expected_pcie_gen": self.hca_pcie[0], "infiniband_expected_pcie_width": self.hca_pcie[1]}
               if self.hca_pcie else {}),
        }
        return {
            "nvidia_host_nvswitch": "true" if self.nvswitch else "false",
            "nvidia_host_nvlsm_enabled": self.nvlsm,
            "nvidia_host_imex_enabled": self.imex,
            **{k: v for k, v in figures.items() if v is not None},
        }


# Catalog platform -> profile. HGX H100/H200: Fabric Manager (NVIDIA Fabric Manager user guide);
# HGX B200: Fabric Manager plus NVLSM (same guide, Blackwell HGX section); GB200/GB300 NVL72: the
# NVSwitches sit in the rack's switch trays, the compute trays run IMEX (IMEX user guide).
# A platform missing here keeps nvidia_host's "auto" (Fabric Manager when NVSwitches show).
NODE_PROFILES: dict[str, NodeProfile] = {
    "hgx-h100": NodeProfile(nvswitch=True, nvlsm=False, imex=False),
    "hgx-h100-roce": NodeProfile(nvswitch=True, nvlsm=False, imex=False),
    "hgx-h200": NodeProfile(nvswitch=True, nvlsm=False, imex=False),
    "hgx-b200": NodeProfile(nvswitch=True, nvlsm=True, imex=False),
    # Grace Blackwell GPUs reach the CPU over NVLink-C2C, not PCIe: no GPU PCIe figure to judge.
    "gb200-nvl72": NodeProfile(nvswitch=False, nvlsm=False, imex=True, gpu_pcie=None),
    # ConnectX-8 SuperNIC: PCIe Gen6 x16.
    "gb300-nvl72": NodeProfile(nvswitch=False, nvlsm=False, imex=True, gpu_pcie=None, hca_pcie=(6, 16)),
}


@dataclass(frozen=True, slots=True)
class Admin:
    name: str
    ssh_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    group: str
    su: int | None
    address: str  # where Ansible connects
    vars: dict[str, Any]


def site_vars(partnership: Partnership, site: Site, design: SiteDesign, admins: Iterable[Admin]) -> dict[str, Any]:
    """Role inputs shared by every node of the site, derived from the validated partnership."""
    platform = PLATFORMS[design.platform]
    profile = NODE_PROFILES.get(design.platform)
    return {
        **(profile.role_vars() if profile else {}),
        **_burnin_vars(platform),
        "sovereign_platform": design.platform,
        "sovereign_country": partnership.country,
        "sovereign_site": site.name,
        "baseline_admin_users": [{"name": a.name, "ssh_keys": list(a.ssh_keys)} for a in admins],
        "hardening_banner_authority": partnership.operating_authority,
        "time_sync_servers": list(site.ntp_servers),
        **_log_collector_vars(site),
        "container_runtime_registry_mirrors": {
            r.upstream: [r.mirror] for r in partnership.sovereignty.registries
        },
        **_package_mirror_vars({p.upstream.rstrip("/"): p.mirror.rstrip("/") for p in partnership.sovereignty.package_mirrors}),
        "nvidia_host_expected_gpu_model": platform.gpu_model,
        "infiniband_expected_rate_gbps": platform.fabric.link_gbps,
        "infiniband_link_layer": "Ethernet" if platform.fabric.kind is FabricKind.ROCE else "InfiniBand",
    }


def _burnin_vars(platform: Platform) -> dict[str, Any]:
    """The functional burn-in's floors (stacks/design/burnin_figures.py), where the catalog has them."""
    if platform.key not in NVLINK_GBYTES:
        return {}
    figures = burnin_figures(platform)
    return {
        "nvidia_host_expected_all_reduce_gbytes_per_s": figures.all_reduce_busbw_gbytes.value,
        "infiniband_expected_write_bw_gbps": figures.write_bw_gbps.value,
    }


def _log_collector_vars(site: Site) -> dict[str, Any]:
    collector = site.log_collector
    if collector is None:
        return {}
    return {
        "hardening_remote_log_host": collector.host,
        "hardening_remote_log_port": collector.port,
        "hardening_remote_log_tls": collector.tls,
    }


# Upstream repositories (as the partnership's package_mirrors name them) that roles take whole.
NVIDIA_MIRRORS = {
    "developer.download.nvidia.com/compute/cuda/repos": "nvidia_host_cuda_mirror",
    "nvidia.github.io/libnvidia-container": "nvidia_host_container_toolkit_mirror",
}


def _package_mirror_vars(mirrors: dict[str, str]) -> dict[str, Any]:
    """The OS archives' mirrors go to baseline (it picks its OS's); NVIDIA's repositories to nvidia_host."""
    found = {var: mirrors[upstream] for upstream, var in NVIDIA_MIRRORS.items() if upstream in mirrors}
    return {"baseline_apt_mirrors": {k: v for k, v in mirrors.items() if k not in NVIDIA_MIRRORS}, **found}


def design_hosts(design: SiteDesign, compute_pool: str | None = None) -> list[Host]:
    """`compute_pool`: the site's `networks.compute`, split into per-rail subnets (no compute
    addresses without it: NCCL and GPUDirect use the verbs, not IP)."""
    platform = PLATFORMS[design.platform]
    prefix = _prefix(design.pools["storage"].cidr)
    ports = FabricPorts(platform, HCA_LAYOUTS.get(design.platform), compute_pool, design.pools["data"].existing)
    hosts = []
    for index, node in enumerate(iter_nodes(design)):
        hosts.append(Host(node.name, node.group, node.su, node.data_ip, _node_vars(node, index, ports, prefix)))
    return hosts


def lab_hosts(design: SiteDesign, lab_nodes: list[dict[str, str]]) -> list[Host]:
    """Lab nodes stand in for the design's first nodes: management, storage, then GPU nodes.

    They keep their lab addresses (Ansible must reach them) and carry the design node's other
    inputs; a lab node has no GPU or HCA, so it expects none — the checks that need hardware
    run against fixtures, and on real hardware as they are.
    """
    by_group: dict[str, list[NodePlan]] = {"gpu": [], "storage": [], "management": []}
    wanted = len(lab_nodes)
    for node in iter_nodes(design):
        if len(by_group[node.group]) < wanted:
            by_group[node.group].append(node)
        if all(len(v) >= wanted for v in by_group.values()):
            break
    order = ["management", "storage"] if wanted >= 3 else (["storage"] if wanted == 2 else [])
    picks = [by_group[g].pop(0) for g in order if by_group[g]]
    picks += by_group["gpu"][: wanted - len(picks)]
    hosts = []
    for lab_node, node in zip(lab_nodes, picks):
        node_vars = {
            "sovereign_stands_in_for": node.name,
            "sovereign_rack": node.rack,
            "nvidia_host_expected_gpu_count": 0,
            "infiniband_expected_port_count": 0,
            "infiniband_interfaces": [],
        }
        hosts.append(Host(lab_node["name"], node.group, node.su, lab_node["ip"], node_vars))
    return hosts


def build_inventory(hosts: list[Host], group_vars: dict[str, Any]) -> dict[str, Any]:
    gpu_children: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {"storage": {}, "management": {}}
    hosts_entries = [{"name": h.name, "ip": h.address} for h in hosts[:HOSTS_FILE_LIMIT]]
    for host in hosts:
        entry = {"ansible_host": host.address, **host.vars}
        if host.group == "gpu":
            gpu_children.setdefault(_su_group(host.su), {"hosts": {}})["hosts"][host.name] = entry
        else:
            groups[host.group][host.name] = entry
    return {
        "all": {
            "vars": {**group_vars, "baseline_hosts": hosts_entries},
            "children": {
                "gpu": {"children": gpu_children},
                "storage": {"hosts": groups["storage"]},
                "management": {"hosts": groups["management"]},
            },
        }
    }


def shards_for(inventory: dict[str, Any]) -> list[Shard]:
    """One shard per scalable unit, plus one for storage and management together."""
    children = inventory["all"]["children"]
    shards = [Shard(su, su) for su, group in children["gpu"]["children"].items() if group["hosts"]]
    if children["storage"]["hosts"] or children["management"]["hosts"]:
        shards.append(Shard("infra", "storage:management"))
    return shards


def _su_group(su: int | None) -> str:
    return f"su{su or 1:02d}"


def _prefix(cidr: str) -> int:
    return int(cidr.rsplit("/", 1)[1]) if "/" in cidr else STORAGE_PREFIX_FALLBACK


@dataclass(frozen=True, slots=True)
class FabricPorts:
    platform: Platform
    layout: HcaLayout | None  # None: the platform's guide publishes no port table (see hcas.py)
    compute_pool: str | None
    existing_nodes: int  # an expand site's GPU nodes hold the first host index of every rail


def _node_vars(node: NodePlan, index: int, ports: FabricPorts, prefix: int) -> dict[str, Any]:
    platform = ports.platform
    node_vars: dict[str, Any] = {"sovereign_rack": node.rack, "sovereign_bmc": node.bmc_ip}
    if node.group == "gpu":
        node_vars["nvidia_host_expected_gpu_count"] = platform.gpus_per_node
        node_vars["infiniband_expected_port_count"] = platform.fabric.rails
    elif node.group == "storage":
        node_vars["infiniband_expected_port_count"] = STORAGE_HCA_PORTS
    if node.group == "gpu" and ports.layout is not None:
        node_vars.update(_gpu_fabric_vars(node, index, ports, prefix))
    elif node.storage_ip:
        # Storage servers and platforms without a published port table: one storage port, named
        # by the kernel's old scheme; host_vars can name it where the hardware is known.
        mode = "roce" if platform.fabric.kind is FabricKind.ROCE else "ipoib"
        name = "ib0" if mode == "ipoib" else "eth1"
        node_vars["infiniband_interfaces"] = [{"name": name, "mode": mode, "address": f"{node.storage_ip}/{prefix}"}]
    return node_vars


def _gpu_fabric_vars(node: NodePlan, index: int, ports: FabricPorts, prefix: int) -> dict[str, Any]:
    """Every compute rail and storage port of the layout, matched by PCI path; the first storage
    port carries the node's storage address, the rails their per-rail address."""
    assert ports.layout is not None
    compute_mode = "roce" if ports.platform.fabric.kind is FabricKind.ROCE else "ipoib"
    interfaces: list[dict[str, Any]] = []
    for hca in ports.layout.compute():
        entry: dict[str, Any] = {"name": hca.interface, "mode": compute_mode, "pci": hca.pci, "rail": hca.rail}
        if ports.compute_pool is not None and hca.rail is not None:
            entry["address"] = rail_address(ports.compute_pool, ports.platform.fabric.rails, hca.rail,
                                            ports.existing_nodes + index)
        interfaces.append(entry)
    for number, hca in enumerate(ports.layout.storage()):
        entry = {"name": hca.interface, "mode": "ipoib" if hca.link_layer == "InfiniBand" else "roce", "pci": hca.pci}
        if number == 0 and node.storage_ip:
            entry["address"] = f"{node.storage_ip}/{prefix}"
        interfaces.append(entry)
    # The acceptance suite counts the ports of the fabric's link layer (ib_checks): BlueField
    # storage ports on Ethernet beside an InfiniBand fabric are configured, not counted.
    layer = "Ethernet" if ports.platform.fabric.kind is FabricKind.ROCE else "InfiniBand"
    counted = [h for h in ports.layout.ports if h.link_layer == layer]
    return {
        "infiniband_interfaces": interfaces,
        "infiniband_expected_port_count": len(counted),
        "infiniband_expected_hcas": sorted(h.rdma for h in counted),
    }

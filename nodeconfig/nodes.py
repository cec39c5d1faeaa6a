"""Every device of a site design as a named node with its addresses, computed on demand.

Order and names are stable, so a node keeps its name and addresses when the design grows:
GPU nodes first (in scalable units and racks), then storage, then management nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stacks.design.catalog import PLATFORMS
from stacks.design.ipam import PoolPlan, dotted_quad
from stacks.design.sizing import SiteDesign


@dataclass(frozen=True, slots=True)
class NodePlan:
    name: str
    group: str  # gpu | storage | management
    su: int | None  # scalable unit, 1-based, GPU nodes only
    rack: int  # 1-based, within the new build
    data_ip: str
    storage_ip: str | None
    bmc_ip: str


def iter_nodes(site: SiteDesign) -> Iterator[NodePlan]:
    platform = PLATFORMS[site.platform]
    data, storage, oob = (_Addresses(site.pools[p]) for p in ("data", "storage", "oob"))
    gpu_racks = -(-site.nodes.gpu // site.nodes_per_rack) if site.nodes.gpu else 0
    for i in range(site.nodes.gpu):
        yield NodePlan(
            name=f"{site.site}-gpu-{i + 1:05d}",
            group="gpu",
            su=i // platform.su_nodes + 1,
            rack=i // site.nodes_per_rack + 1,
            data_ip=data.address(i),
            storage_ip=storage.address(i),
            bmc_ip=oob.address(i),
        )
    base = site.nodes.gpu
    for j in range(site.nodes.storage):
        yield NodePlan(
            name=f"{site.site}-stor-{j + 1:04d}",
            group="storage",
            su=None,
            rack=gpu_racks + j // 8 + 1,
            data_ip=data.address(base + j),
            storage_ip=storage.address(base + j),
            bmc_ip=oob.address(base + j),
        )
    base += site.nodes.storage
    for k in range(site.nodes.management):
        yield NodePlan(
            name=f"{site.site}-mgmt-{k + 1}",
            group="management",
            su=None,
            rack=gpu_racks + (site.nodes.storage + k) // 8 + 1,
            data_ip=data.address(base + k),
            storage_ip=None,
            bmc_ip=oob.address(base + k),
        )


class _Addresses:
    """index -> address without per-call validation: the loop bounds come from the same plan."""

    __slots__ = ("first",)

    def __init__(self, pool: PoolPlan):
        self.first = pool.first_int

    def address(self, index: int) -> str:
        return dotted_quad(self.first + index)

"""Scale-out fabric sizing: rail-optimised, non-blocking leaf/spine(/core) fat trees.

Each node's NIC *i* lands on a leaf of rail *i*; a leaf gives half its ports to nodes and half to
the layer above, so the fabric is non-blocking. Two tiers while every spine can reach every leaf
(leaves <= switch ports); beyond that three tiers: pods of P/2 leaves, one spine per leaf (P/2
down, P/2 up), and cores taking every spine's uplinks, while every core can reach every pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from stacks.design.catalog import OOB_SWITCH, Platform


class FabricTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FabricPlan:
    kind: str
    switch_model: str
    link_gbps: int
    rails: int
    tiers: int
    leaves: int
    spines: int
    cores: int
    oob_switches: int
    cables_node_leaf: int
    cables_leaf_spine: int
    cables_spine_core: int
    cables_oob: int

    @property
    def switches(self) -> int:
        return self.leaves + self.spines + self.cores

    @property
    def cables(self) -> int:
        return self.cables_node_leaf + self.cables_leaf_spine + self.cables_spine_core


def plan_fabric(platform: Platform, nodes: int, oob_devices: int) -> FabricPlan:
    shape = platform.fabric
    ports = shape.switch.ports
    half = ports // 2
    leaves = shape.rails * ceil(nodes / half) if nodes else 0
    if leaves <= ports:
        tiers, spines, cores = 2, ceil(leaves * half / ports), 0
    else:
        pods = ceil(leaves / half)
        if pods > ports:
            raise FabricTooLarge(
                f"{nodes:,} nodes need {leaves:,} leaves, beyond a 3-tier fat tree of "
                f"{ports}-port switches ({ports * half:,} leaves); split the capacity across sites"
            )
        tiers, spines, cores = 3, leaves, ceil(leaves * half / ports)
    oob_ports = OOB_SWITCH.ports - 2  # two uplinks per management switch
    oob_switches = ceil(oob_devices / oob_ports) if oob_devices else 0
    return FabricPlan(
        kind=shape.kind.value,
        switch_model=shape.switch.model,
        link_gbps=shape.link_gbps,
        rails=shape.rails,
        tiers=tiers if leaves else 0,
        leaves=leaves,
        spines=spines,
        cores=cores,
        oob_switches=oob_switches,
        cables_node_leaf=nodes * shape.rails,
        cables_leaf_spine=leaves * half if spines else 0,
        cables_spine_core=spines * half if cores else 0,
        cables_oob=oob_devices + 2 * oob_switches,
    )

"""Each platform's fabric ports: which HCA serves which rail or the storage fabric, at which PCI
address, and the interface name the kernel gives it there.

Real nodes name their ports by PCI path (systemd's predictable names: `ibp24s0`, not `ib0`), so
the names follow from the addresses the platform's user guide lists. The role matches its
.network files on the PCI path itself (`Path=pci-…`), which holds whatever naming scheme a
distribution uses; the name is what people, NCCL_SOCKET_IFNAME and the acceptance suite read.
A platform without a published port table has no layout here: its nodes get the storage port
only, named generically, until someone adds the table (never a guessed address).

Per-rail addressing: with a `networks.compute` pool, the pool is split into one equal subnet per
rail (a host's ports then never share a subnet, so replies leave by the port they came in on),
and GPU node i takes the same host index in every rail subnet.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from enum import StrEnum

from stacks.design.ipam import RESERVED_PER_POOL, PoolExhausted, dotted_quad


class PortUse(StrEnum):
    COMPUTE = "compute"  # one rail of the rail-optimised scale-out fabric
    STORAGE = "storage"


@dataclass(frozen=True, slots=True)
class Hca:
    use: PortUse
    pci: str  # domain:bus:device.function, as in /sys/bus/pci/devices
    rdma: str  # the RDMA device name the guide lists (mlx5_N)
    rail: int | None = None  # compute ports: 0-based rail (the GPU it sits beside)
    multifunction: bool = False  # a dual-port card: systemd adds f<function> to the name
    link_layer: str = "InfiniBand"  # or Ethernet (RoCE, BlueField storage ports)

    @property
    def interface(self) -> str:
        return interface_name(self.pci, self.link_layer, self.multifunction)

    @property
    def path(self) -> str:
        """udev's ID_PATH of the port, what networkd's [Match] Path= compares."""
        return f"pci-{self.pci}"


@dataclass(frozen=True, slots=True)
class HcaLayout:
    ports: tuple[Hca, ...]
    source: str

    def compute(self) -> list[Hca]:
        return sorted((p for p in self.ports if p.use is PortUse.COMPUTE), key=lambda p: p.rail or 0)

    def storage(self) -> list[Hca]:
        return [p for p in self.ports if p.use is PortUse.STORAGE]


def interface_name(pci: str, link_layer: str = "InfiniBand", multifunction: bool = False) -> str:
    """systemd's path-based name (udev net_id, "ID_NET_NAME_PATH") for a port on a PCI function.

    `ib`/`en` by link type, `P<domain>` when the PCI domain is not 0 (Grace systems), then
    `p<bus>s<slot>`, then `f<function>` when the function is not 0 or the device has several;
    an Ethernet port of an mlx5 card also carries its physical port name (`np<n>`), n being the
    function here, as these cards expose one port per function.
    """
    domain, bus, rest = pci.split(":")
    slot, function = rest.split(".")
    name = "ib" if link_layer == "InfiniBand" else "en"
    if int(domain, 16):
        name += f"P{int(domain, 16)}"
    name += f"p{int(bus, 16)}s{int(slot, 16)}"
    if int(function, 16) or multifunction:
        name += f"f{int(function, 16)}"
    if name.startswith("en"):
        name += f"np{int(function, 16)}"
    return name


_DGX_H100_GUIDE = (
    "NVIDIA DGX H100/H200 User Guide, Network Ports: compute OSFP ports (CX0-CX3 of both network "
    "modules, GPU 0-7 = mlx5_0,3,4,5,6,9,10,11), storage = port 1 of the slot 1 and slot 2 "
    "ConnectX-7 cards in InfiniBand mode (DGX BasePOD deployment guide: right ports for IB storage)"
)
_DGX_H100 = HcaLayout(
    ports=(
        *(
            Hca(PortUse.COMPUTE, f"0000:{bus}:00.0", rdma, rail=rail)
            for rail, (bus, rdma) in enumerate(
                (("18", "mlx5_0"), ("40", "mlx5_3"), ("4f", "mlx5_4"), ("5e", "mlx5_5"),
                 ("9a", "mlx5_6"), ("c0", "mlx5_9"), ("ce", "mlx5_10"), ("dc", "mlx5_11"))
            )
        ),
        Hca(PortUse.STORAGE, "0000:29:00.0", "mlx5_1", multifunction=True),
        Hca(PortUse.STORAGE, "0000:aa:00.0", "mlx5_7", multifunction=True),
    ),
    source=_DGX_H100_GUIDE,
)
_DGX_GB200 = HcaLayout(
    ports=(
        *(
            Hca(PortUse.COMPUTE, pci, rdma, rail=rail)
            for rail, (pci, rdma) in enumerate(
                (("0000:03:00.0", "mlx5_0"), ("0002:03:00.0", "mlx5_1"),
                 ("0010:03:00.0", "mlx5_4"), ("0012:03:00.0", "mlx5_5"))
            )
        ),
        Hca(PortUse.STORAGE, "0006:03:00.0", "mlx5_2", multifunction=True, link_layer="Ethernet"),
        Hca(PortUse.STORAGE, "0016:03:00.0", "mlx5_6", multifunction=True, link_layer="Ethernet"),
    ),
    source=(
        "NVIDIA Mission Control north-south network guide (DGX GB200/GB300 NVL72), compute tray "
        "network ports: OSFP P3/P4 of both bays = InfiniBand compute (mlx5_0,1,4,5), BlueField-3 "
        "P1 of both bays = Ethernet storage (mlx5_2, mlx5_6)"
    ),
)

# Catalog platform -> layout; only platforms whose guide publishes the port table.
HCA_LAYOUTS: dict[str, HcaLayout] = {
    "hgx-h100": _DGX_H100,
    "hgx-h200": _DGX_H100,  # the DGX H100/H200 guide: one chassis, one port table
    "gb200-nvl72": _DGX_GB200,
}


def rail_prefix(cidr: str, rails: int) -> int:
    """Prefix length of each rail's subnet when `cidr` is split into `rails` equal parts."""
    return ipaddress.ip_network(cidr).prefixlen + (math.ceil(math.log2(rails)) if rails > 1 else 0)


def rail_capacity(cidr: str, rails: int) -> int:
    return max(2 ** (32 - rail_prefix(cidr, rails)) - 2 - RESERVED_PER_POOL, 0)


def check_rail_capacity(cidr: str, rails: int, nodes: int, site: str) -> None:
    """PoolExhausted unless every rail subnet holds an address for each GPU node."""
    capacity = rail_capacity(cidr, rails)
    if nodes > capacity:
        split = rail_prefix(cidr, rails) - ipaddress.ip_network(cidr).prefixlen
        per_rail = 32 - (nodes + 1 + RESERVED_PER_POOL).bit_length()  # network, broadcast, reserved
        raise PoolExhausted(
            f"site {site!r}: pool compute {cidr} split into {rails} rails gives /{rail_prefix(cidr, rails)} "
            f"per rail, {capacity:,} addresses each; the design has {nodes:,} GPU nodes; use a "
            f"/{max(per_rail - split, 0)} or larger"
        )


def rail_address(cidr: str, rails: int, rail: int, index: int) -> str:
    """GPU node `index`'s address on `rail`, with the rail subnet's prefix length."""
    net = ipaddress.ip_network(cidr)
    prefix = rail_prefix(cidr, rails)
    first = int(net.network_address) + rail * 2 ** (32 - prefix)
    return f"{dotted_quad(first + 1 + RESERVED_PER_POOL + index)}/{prefix}"

"""GPU platform catalog: the public figures every sizing decision rests on.

Each figure carries the public document it comes from, so a ministry reviewer can check it.
Prices are public press and analyst estimates, not quotes; they exist so a plan shows an order of
magnitude and a funding split, and each is labelled as an estimate wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FabricKind(StrEnum):
    INFINIBAND = "infiniband"
    ROCE = "roce"


@dataclass(frozen=True, slots=True)
class Figure:
    value: float
    source: str


@dataclass(frozen=True, slots=True)
class Switch:
    model: str
    ports: int  # at the link speed the fabric runs
    kw: float
    price_usd: Figure


@dataclass(frozen=True, slots=True)
class FabricShape:
    kind: FabricKind
    rails: int  # scale-out NICs per node; rail-optimised: NIC i of every node goes to leaf group i
    link_gbps: int
    switch: Switch
    source: str


@dataclass(frozen=True, slots=True)
class Platform:
    key: str
    name: str
    gpu_model: str
    gpus_per_node: int
    nodes_per_rack: int
    kw_per_node: Figure
    su_nodes: int  # nodes per scalable unit
    liquid_cooled: bool  # True: the platform cannot run on an air-cooled site
    fabric: FabricShape
    node_price_usd: Figure
    rack_source: str
    # One NVLink domain per rack (NVL72): bought, powered and cabled as a whole rack, never a tray.
    rack_scale: bool = False

    @property
    def rack_kw(self) -> float:
        return self.nodes_per_rack * self.kw_per_node.value

    @property
    def su_gpus(self) -> int:
        return self.su_nodes * self.gpus_per_node


_QM9700 = Switch(
    model="NVIDIA Quantum-2 QM9700 (NDR)",
    ports=64,
    kw=1.7,
    price_usd=Figure(33_000, "estimate: public reseller list prices for QM9700, 2024"),
)
_Q3400 = Switch(
    model="NVIDIA Quantum-X800 Q3400 (XDR)",
    ports=144,
    kw=5.7,
    price_usd=Figure(95_000, "estimate: analyst coverage of Quantum-X800 pricing, 2025"),
)
_SN5600 = Switch(
    model="NVIDIA Spectrum-X SN5600 (64x800GbE, split 2x400G)",
    ports=128,
    kw=2.2,
    price_usd=Figure(60_000, "estimate: public reseller list prices for SN5600, 2024"),
)

_SUPERPOD_H100 = (
    "NVIDIA DGX SuperPOD reference architecture (DGX H100): 32-node scalable unit, "
    "rail-optimised NDR InfiniBand, 8 ConnectX-7 400 Gb/s per node, 4 systems per rack"
)

PLATFORMS: dict[str, Platform] = {
    p.key: p
    for p in (
        Platform(
            key="hgx-h100",
            name="HGX H100 8-GPU",
            gpu_model="H100 SXM5 80GB",
            gpus_per_node=8,
            nodes_per_rack=4,
            kw_per_node=Figure(10.2, "NVIDIA DGX H100 datasheet: 10.2 kW max system power"),
            su_nodes=32,
            liquid_cooled=False,
            fabric=FabricShape(FabricKind.INFINIBAND, 8, 400, _QM9700, _SUPERPOD_H100),
            node_price_usd=Figure(300_000, "estimate: press reports of HGX H100 server prices, 2024"),
            rack_source=_SUPERPOD_H100,
        ),
        Platform(
            key="hgx-h200",
            name="HGX H200 8-GPU",
            gpu_model="H200 SXM5 141GB",
            gpus_per_node=8,
            nodes_per_rack=4,
            kw_per_node=Figure(10.2, "NVIDIA DGX H200 datasheet: 10.2 kW max system power"),
            su_nodes=32,
            liquid_cooled=False,
            fabric=FabricShape(FabricKind.INFINIBAND, 8, 400, _QM9700, _SUPERPOD_H100),
            node_price_usd=Figure(350_000, "estimate: press reports of HGX H200 server prices, 2024"),
            rack_source=_SUPERPOD_H100,
        ),
        Platform(
            key="hgx-b200",
            name="HGX B200 8-GPU",
            gpu_model="B200 180GB",
            gpus_per_node=8,
            nodes_per_rack=4,
            kw_per_node=Figure(14.3, "NVIDIA DGX B200 datasheet: ~14.3 kW max system power"),
            su_nodes=32,
            liquid_cooled=False,
            fabric=FabricShape(
                FabricKind.INFINIBAND,
                8,
                400,
                _QM9700,
                "NVIDIA DGX SuperPOD reference architecture (DGX B200): 32-node scalable unit, "
                "8 ConnectX-7 400 Gb/s per node, NDR InfiniBand",
            ),
            node_price_usd=Figure(500_000, "estimate: press reports of HGX B200 server prices, 2025"),
            rack_source="NVIDIA DGX SuperPOD reference architecture (DGX B200): 4 systems per rack",
        ),
        Platform(
            key="gb200-nvl72",
            name="GB200 NVL72",
            gpu_model="B200 (Grace Blackwell superchip)",
            gpus_per_node=4,  # one compute tray: 2 Grace CPUs + 4 Blackwell GPUs
            nodes_per_rack=18,
            kw_per_node=Figure(
                132 / 18, "NVIDIA GB200 NVL72 rack: ~132 kW per rack, 18 compute trays"
            ),
            su_nodes=8 * 18,
            liquid_cooled=True,
            fabric=FabricShape(
                FabricKind.INFINIBAND,
                4,
                400,
                _QM9700,
                "NVIDIA DGX SuperPOD reference architecture (DGX GB200): 8 NVL72 racks per "
                "scalable unit, one ConnectX-7 400 Gb/s per GPU",
            ),
            node_price_usd=Figure(
                3_000_000 / 18, "estimate: press reports of ~US$3M per GB200 NVL72 rack, 2025"
            ),
            rack_source="NVIDIA GB200 NVL72 product page: 72 GPUs, 36 Grace CPUs, liquid-cooled rack",
            rack_scale=True,
        ),
        Platform(
            key="gb300-nvl72",
            name="GB300 NVL72",
            gpu_model="B300 (Grace Blackwell Ultra superchip)",
            gpus_per_node=4,
            nodes_per_rack=18,
            kw_per_node=Figure(
                140 / 18, "NVIDIA GB300 NVL72: ~135-140 kW per rack (press coverage), 18 trays"
            ),
            su_nodes=8 * 18,
            liquid_cooled=True,
            fabric=FabricShape(
                FabricKind.INFINIBAND,
                4,
                800,
                _Q3400,
                "NVIDIA GB300 NVL72: ConnectX-8 SuperNIC 800 Gb/s per GPU, Quantum-X800 InfiniBand",
            ),
            node_price_usd=Figure(
                3_700_000 / 18, "estimate: press reports of ~US$3.7M per GB300 NVL72 rack, 2025"
            ),
            rack_source="NVIDIA GB300 NVL72 product page: 72 Blackwell Ultra GPUs, liquid-cooled",
            rack_scale=True,
        ),
        Platform(
            key="hgx-h100-roce",
            name="HGX H100 8-GPU (Spectrum-X Ethernet)",
            gpu_model="H100 SXM5 80GB",
            gpus_per_node=8,
            nodes_per_rack=4,
            kw_per_node=Figure(10.2, "NVIDIA DGX H100 datasheet: 10.2 kW max system power"),
            su_nodes=32,
            liquid_cooled=False,
            fabric=FabricShape(
                FabricKind.ROCE,
                8,
                400,
                _SN5600,
                "NVIDIA Spectrum-X reference architecture: rail-optimised RoCE, BlueField-3 "
                "SuperNIC 400 Gb/s per GPU, SN5600 leaf/spine",
            ),
            node_price_usd=Figure(300_000, "estimate: press reports of HGX H100 server prices, 2024"),
            rack_source=_SUPERPOD_H100,
        ),
    )
}

# Costs outside the GPU nodes, per unit; public order-of-magnitude figures.
CABLE_USD = Figure(1_600, "estimate: two 400G optical transceivers + fibre per link, 2024 list")
STORAGE_USD_PER_GPU = Figure(6_000, "estimate: ~25 TB of parallel flash per 8 GPUs, 2024")
FACILITY_USD_PER_MW = {
    "greenfield": Figure(11_000_000, "estimate: industry build cost ~US$10-12M per MW (2024)"),
    "expand": Figure(4_000_000, "estimate: fit-out of existing halls ~US$3-5M per MW (2024)"),
}
INTEGRATION_FRACTION = Figure(0.06, "estimate: integration, software and services share")
OOB_SWITCH = Switch(
    model="1 GbE management switch (48 ports)",
    ports=48,
    kw=0.15,
    price_usd=Figure(6_000, "estimate: public list prices for 48-port 1GbE switches"),
)
KW_PER_TON_REFRIGERATION = 3.517  # 1 TR = 12,000 BTU/h = 3.517 kW (definition)

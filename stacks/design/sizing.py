"""design(partnership) -> PartnershipDesign: pure, deterministic sizing of every site.

Works in whole nodes and scalable units, checks every budget (cooling type, rack power, floor
space, facility power, address pools) and, when one is exceeded, says which, by how much and what
would fit. No per-node objects are built, so a 100k-GPU site sizes in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, floor

from stacks.design.catalog import (
    KW_PER_TON_REFRIGERATION,
    OOB_SWITCH,
    PLATFORMS,
    Platform,
)
from stacks.design.costs import Capex, estimate_capex
from stacks.design.fabric_plan import FabricPlan, FabricTooLarge, plan_fabric
from stacks.design.hcas import check_rail_capacity
from stacks.design.ipam import PoolExhausted, PoolPlan, plan_pool
from stacks.design.partnership import Cooling, Partnership, Site

GPUS_PER_STORAGE_NODE = 64  # one parallel-filesystem server per 64 GPUs (estimate, see catalog)
STORAGE_NODE_KW = 1.2
MANAGEMENT_NODES = 3  # control plane / head nodes per site
MANAGEMENT_NODE_KW = 0.8
LIQUID_FRACTION = {Cooling.LIQUID: 0.85, Cooling.AIR: 0.0}  # share of heat taken by liquid loops


class SizingError(ValueError):
    """A budget is exceeded; the message names the site, the budget, the overshoot and what fits."""


class SizingErrors(ValueError):
    """Every site that does not fit, as (site index, error), so all are reported at once."""

    def __init__(self, errors: list[tuple[int, SizingError]]):
        self.errors = errors
        super().__init__("\n".join(str(e) for _, e in errors))


@dataclass(frozen=True, slots=True)
class NodeCounts:
    gpu: int
    storage: int
    management: int


@dataclass(frozen=True, slots=True)
class SiteDesign:
    site: str
    city: str
    region: str
    platform: str
    platform_name: str
    gpu_model: str
    cooling: str
    existing_gpus: int  # already at the site, of any platform
    counted_gpus: int  # the existing GPUs of this platform, which count towards the target
    target_gpus: int
    scalable_units: int
    nodes: NodeCounts
    gpus: int  # new GPUs this design builds
    nodes_per_rack: int
    racks: int
    rack_kw: float
    it_mw: float
    facility_mw: float
    existing_mw: float
    power_budget_mw: float
    cooling_mw: float
    cooling_tons: float
    liquid_fraction: float
    fabric: FabricPlan
    pools: dict[str, PoolPlan]
    capex: Capex

    @property
    def headroom_mw(self) -> float:
        return self.power_budget_mw - self.existing_mw - self.facility_mw

    @property
    def total_gpus(self) -> int:
        return self.existing_gpus + self.gpus


@dataclass(frozen=True, slots=True)
class PartnershipDesign:
    country: str
    name: str
    mode: str
    currency: str
    usd_rate: float
    sites: tuple[SiteDesign, ...]

    @property
    def gpus(self) -> int:
        return sum(s.gpus for s in self.sites)

    @property
    def facility_mw(self) -> float:
        return sum(s.facility_mw for s in self.sites)

    @property
    def capex_usd(self) -> float:
        return sum(s.capex.total_usd for s in self.sites)


def design(partnership: Partnership) -> PartnershipDesign:
    sites, errors = [], []
    for index, site in enumerate(partnership.sites):
        try:
            sites.append(design_site(site, partnership.mode.value))
        except SizingError as exc:
            errors.append((index, exc))
    if errors:
        raise SizingErrors(errors)
    return PartnershipDesign(
        country=partnership.country,
        name=partnership.name,
        mode=partnership.mode.value,
        currency=partnership.currency,
        usd_rate=partnership.usd_rate,
        sites=tuple(sites),
    )


def design_site(site: Site, mode: str) -> SiteDesign:
    platform = PLATFORMS[site.capacity.platform]
    _check_cooling(site, platform)
    per_rack = _nodes_per_rack(site, platform)
    existing = site.existing
    counted = existing.gpus if existing and existing.platform == platform.key else 0
    target = site.capacity.gpus or site.capacity.scalable_units * platform.su_gpus  # type: ignore[operator]
    nodes = ceil(max(target - counted, 0) / platform.gpus_per_node)
    if platform.rack_scale:  # whole racks: `gpus: 1` of an NVL72 is one 72-GPU rack, not a tray
        nodes = ceil(nodes / per_rack) * per_rack

    try:
        sized = _size(site, mode, platform, per_rack, nodes)
    except SizingError as exc:  # fabric or address pool too small: say what would fit
        fits = _largest_fit(site, mode, platform, per_rack, nodes, lambda d: True)
        raise SizingError(f"{exc}; {_fits_text(fits, platform)}") from None
    budget = site.power_budget_mw - (existing.power_mw if existing else 0.0)
    if sized.facility_mw > budget + 1e-9:
        fits = _largest_fit(site, mode, platform, per_rack, nodes, lambda d: d.facility_mw <= budget)
        raise SizingError(
            f"site {site.name!r}: facility power {_figure(sized.facility_mw)} MW "
            f"(IT {_figure(sized.it_mw)} MW x PUE {site.pue}) exceeds the power budget of "
            f"{_figure(budget, 1)} MW{' left after existing load' if existing else ''} by "
            f"{_figure(sized.facility_mw - budget)} MW; {_fits_text(fits, platform)}"
        )
    if site.rack_positions is not None:
        free = site.rack_positions - (existing.racks if existing else 0)
        if sized.racks > free:
            fits = _largest_fit(site, mode, platform, per_rack, nodes, lambda d: d.racks <= free)
            raise SizingError(
                f"site {site.name!r}: the design needs {sized.racks:,} racks, the floor has "
                f"{free:,} free rack positions ({sized.racks - free:,} too many); "
                f"{_fits_text(fits, platform)}"
            )
    return sized


def _check_cooling(site: Site, platform: Platform) -> None:
    if platform.liquid_cooled and site.cooling is not Cooling.LIQUID:
        raise SizingError(
            f"site {site.name!r}: {platform.name} needs liquid cooling, the site is air-cooled; "
            f"choose an air-cooled platform (e.g. hgx-h200) or set cooling: liquid"
        )


def _nodes_per_rack(site: Site, platform: Platform) -> int:
    if platform.rack_scale:  # a rack-scale NVLink domain cannot be split across racks
        if platform.rack_kw > site.max_rack_kw:
            raise SizingError(
                f"site {site.name!r}: a {platform.name} rack draws {_figure(platform.rack_kw)} kW, the "
                f"site allows {_figure(site.max_rack_kw)} kW per rack "
                f"({_figure(platform.rack_kw - site.max_rack_kw)} kW over); no rack of it fits"
            )
        return platform.nodes_per_rack
    per_rack = min(platform.nodes_per_rack, floor(site.max_rack_kw / platform.kw_per_node.value))
    if per_rack < 1:
        raise SizingError(
            f"site {site.name!r}: one {platform.name} node draws {_figure(platform.kw_per_node.value)} kW, "
            f"more than the site's {_figure(site.max_rack_kw)} kW per rack; no node fits"
        )
    return per_rack


def _size(site: Site, mode: str, platform: Platform, per_rack: int, nodes: int) -> SiteDesign:
    gpus = nodes * platform.gpus_per_node
    storage = ceil(gpus / GPUS_PER_STORAGE_NODE)
    management = MANAGEMENT_NODES if nodes else 0
    existing = site.existing
    existing_nodes = existing.nodes if existing else 0
    try:
        # Every device's BMC and every switch's management port sit on the out-of-band network.
        data_devices = nodes + storage + management
        fabric = plan_fabric(platform, nodes, oob_devices=data_devices)
        fabric = plan_fabric(platform, nodes, oob_devices=data_devices + fabric.switches)
        pools = {
            "data": plan_pool("data", site.networks.data, existing_nodes, data_devices, site.name),
            "storage": plan_pool(
                "storage", site.networks.storage, existing_nodes, nodes + storage, site.name
            ),
            "oob": plan_pool(
                "oob",
                site.networks.oob,
                existing_nodes,
                data_devices + fabric.switches + fabric.oob_switches,
                site.name,
            ),
        }
        if site.networks.compute is not None:  # one subnet per rail; existing GPU nodes keep the first addresses
            check_rail_capacity(site.networks.compute, platform.fabric.rails, existing_nodes + nodes, site.name)
    except FabricTooLarge as exc:
        raise SizingError(f"site {site.name!r}: {exc}") from None
    except PoolExhausted as exc:
        raise SizingError(str(exc)) from None
    it_kw = (
        nodes * platform.kw_per_node.value
        + storage * STORAGE_NODE_KW
        + management * MANAGEMENT_NODE_KW
        + fabric.switches * platform.fabric.switch.kw
        + fabric.oob_switches * OOB_SWITCH.kw
    )
    it_mw = it_kw / 1000
    facility_mw = it_mw * site.pue
    counted = existing.gpus if existing and existing.platform == platform.key else 0
    racks = ceil(nodes / per_rack) + ceil((storage + management) / 8) if nodes else 0
    return SiteDesign(
        site=site.name,
        city=site.city,
        region=site.region,
        platform=platform.key,
        platform_name=platform.name,
        gpu_model=platform.gpu_model,
        cooling=site.cooling.value,
        existing_gpus=existing.gpus if existing else 0,
        counted_gpus=counted,
        target_gpus=site.capacity.gpus or (site.capacity.scalable_units or 0) * platform.su_gpus,
        scalable_units=ceil(nodes / platform.su_nodes),
        nodes=NodeCounts(gpu=nodes, storage=storage, management=management),
        gpus=gpus,
        nodes_per_rack=per_rack,
        racks=racks,
        rack_kw=round(per_rack * platform.kw_per_node.value, 3),
        it_mw=round(it_mw, 4),
        facility_mw=round(facility_mw, 4),
        existing_mw=existing.power_mw if existing else 0.0,
        power_budget_mw=site.power_budget_mw,
        cooling_mw=round(it_mw, 4),  # all IT power ends up as heat to remove
        cooling_tons=round(it_kw / KW_PER_TON_REFRIGERATION, 1),
        liquid_fraction=LIQUID_FRACTION[site.cooling],
        fabric=fabric,
        pools=pools,
        capex=estimate_capex(platform, mode, nodes, gpus, fabric, facility_mw),
    )


def _largest_fit(site, mode, platform, per_rack, upper, fits) -> int:
    """Largest node count (<= upper) whose design satisfies `fits`; power and racks grow with nodes.

    Rack-scale platforms are searched in whole racks, the only amounts a design may build.
    """
    step = per_rack if platform.rack_scale else 1
    lo, hi = 0, upper // step
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            ok = fits(_size(site, mode, platform, per_rack, mid * step))
        except SizingError:
            ok = False
        lo, hi = (mid, hi) if ok else (lo, mid - 1)
    return lo * step


def _fits_text(nodes: int, platform: Platform) -> str:
    if nodes == 0:
        unit = "rack" if platform.rack_scale else "node"
        return f"not even one {platform.name} {unit} fits"
    # Whole scalable units and the nodes beyond them: "3.0 scalable units" for 95 nodes misleads.
    units, rest = divmod(nodes, platform.su_nodes)
    parts = ([f"{units:,} scalable unit{'s' if units != 1 else ''}"] if units else []) + (
        [f"{rest:,} node{'s' if rest != 1 else ''} of a partial unit"] if rest else []
    )
    return (
        f"at most {nodes * platform.gpus_per_node:,} GPUs ({nodes:,} nodes: {' + '.join(parts)}) "
        f"of {platform.name} fit"
    )


def _figure(value: float, decimals: int = 1) -> str:
    """A figure with enough decimals that a small non-zero value never reads as 0 (0.001 kW)."""
    if value != 0:
        while decimals < 6 and abs(value) < 10**-decimals:
            decimals += 1
    return f"{value:,.{decimals}f}"

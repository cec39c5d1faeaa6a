"""Capital cost estimate by category, from the catalog's public figures (all US dollars)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from stacks.design.catalog import (
    CABLE_USD,
    FACILITY_USD_PER_MW,
    INTEGRATION_FRACTION,
    OOB_SWITCH,
    STORAGE_USD_PER_GPU,
    Platform,
)
from stacks.design.fabric_plan import FabricPlan


@dataclass(frozen=True, slots=True)
class Capex:
    compute_usd: float
    fabric_usd: float
    storage_usd: float
    facility_usd: float
    integration_usd: float

    @property
    def total_usd(self) -> float:
        return (
            self.compute_usd
            + self.fabric_usd
            + self.storage_usd
            + self.facility_usd
            + self.integration_usd
        )

    def categories(self) -> dict[str, float]:
        return {
            "compute": self.compute_usd,
            "fabric": self.fabric_usd,
            "storage": self.storage_usd,
            "facility": self.facility_usd,
            "integration": self.integration_usd,
        }


def estimate_capex(
    platform: Platform, mode: str, nodes: int, gpus: int, fabric: FabricPlan, facility_mw: float
) -> Capex:
    compute = nodes * platform.node_price_usd.value
    network = (
        fabric.switches * platform.fabric.switch.price_usd.value
        + fabric.cables * CABLE_USD.value
        + fabric.oob_switches * OOB_SWITCH.price_usd.value
    )
    storage = gpus * STORAGE_USD_PER_GPU.value
    facility = facility_mw * FACILITY_USD_PER_MW[mode].value
    integration = (compute + network + storage + facility) * INTEGRATION_FRACTION.value
    return Capex(
        compute_usd=round(compute),
        fabric_usd=round(network),
        storage_usd=round(storage),
        facility_usd=round(facility),
        integration_usd=round(integration),
    )


def funding_split(total_usd: float, shares) -> list[dict]:
    """Each party's part of the total, in the order the partnership lists them.

    In exact arithmetic (a float share is an exact binary fraction), rounded to whole dollars;
    the last party takes the remainder, so the parts always add up to the total.
    """
    total = round(total_usd)
    parts = [round(Fraction(s.share) * total) for s in shares[:-1]]
    parts.append(total - sum(parts))
    return [
        {"party": s.party, "kind": s.kind.value, "share": s.share, "usd": usd} for s, usd in zip(shares, parts)
    ]

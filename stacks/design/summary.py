"""The design as plain data: what `plan --json`, the stack outputs and the fleet table show.

Key names here are a documented interface (docs/outputs.md); change them deliberately.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from stacks.design.costs import funding_split
from stacks.design.partnership import Partnership
from stacks.design.sizing import PartnershipDesign, SiteDesign


def site_summary(site: SiteDesign) -> dict[str, Any]:
    fabric = asdict(site.fabric)
    fabric["switches"] = site.fabric.switches
    fabric["cables"] = site.fabric.cables
    return {
        "site": site.site,
        "location": {"city": site.city, "region": site.region},
        "platform": {"key": site.platform, "name": site.platform_name, "gpu": site.gpu_model},
        "capacity": {
            "target_gpus": site.target_gpus,
            "existing_gpus": site.existing_gpus,
            "counted_gpus": site.counted_gpus,
            "new_gpus": site.gpus,
            "total_gpus": site.total_gpus,
            "scalable_units": site.scalable_units,
            "nodes": asdict(site.nodes),
            "racks": site.racks,
            "nodes_per_rack": site.nodes_per_rack,
            "rack_kw": site.rack_kw,
        },
        "power": {
            "it_mw": site.it_mw,
            "facility_mw": site.facility_mw,
            "existing_mw": site.existing_mw,
            "budget_mw": site.power_budget_mw,
            "headroom_mw": round(site.headroom_mw, 4),
        },
        "cooling": {
            "type": site.cooling,
            "heat_mw": site.cooling_mw,
            "tons_refrigeration": site.cooling_tons,
            "liquid_fraction": site.liquid_fraction,
        },
        "fabric": fabric,
        "ip_plan": {
            name: {
                "cidr": p.cidr,
                "first": p.first,
                "last": p.last,
                "allocated": p.allocated,
                "existing": p.existing,
                "free": p.free,
            }
            for name, p in site.pools.items()
        },
        "capex_usd": {**site.capex.categories(), "total": site.capex.total_usd},
    }


def plan_summary(partnership: Partnership, design: PartnershipDesign) -> dict[str, Any]:
    total = design.capex_usd
    return {
        "schema_version": partnership.schema_version,
        "country": design.country,
        "name": design.name,
        "mode": design.mode,
        "languages": list(partnership.languages),
        "currency": design.currency,
        "usd_rate": design.usd_rate,
        "totals": {
            "sites": len(design.sites),
            "new_gpus": design.gpus,
            "total_gpus": sum(s.total_gpus for s in design.sites),
            "gpu_nodes": sum(s.nodes.gpu for s in design.sites),
            "racks": sum(s.racks for s in design.sites),
            "it_mw": round(sum(s.it_mw for s in design.sites), 4),
            "facility_mw": round(design.facility_mw, 4),
            "capex_usd": total,
            "capex_local": round(total * design.usd_rate),
        },
        "funding": funding_split(total, partnership.funding),
        "sites": [site_summary(s) for s in design.sites],
    }

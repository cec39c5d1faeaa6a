"""The stack's layers, built in dependency order from a validated partnership.

Kept apart from __main__.py so tests can run it under Pulumi's mocks with any partnership, and so a
country's own project runs the same program: its `__main__.py` is `from stacks.program import main; main()`.
"""

from __future__ import annotations

import pulumi

from stacks.components.fabric import Fabric, FabricArgs
from stacks.components.site import Site, SiteArgs
from stacks.design.loader import CONFIG_KEY, InputError, validate_mapping
from stacks.design.partnership import Partnership
from stacks.design.sizing import SizingErrors, design
from stacks.design.summary import plan_summary

OUTPUTS = ("country", "mode", "totals", "funding", "sites", "fabrics")


def build(partnership: Partnership) -> dict[str, object]:
    planned = design(partnership)
    summary = plan_summary(partnership, planned)
    sites, fabrics = {}, {}
    for site_design in planned.sites:
        site = Site(site_design.site, SiteArgs(design=site_design))
        fabric = Fabric(
            f"{site_design.site}-fabric",
            FabricArgs(plan=site_design.fabric),
            pulumi.ResourceOptions(parent=site),
        )
        sites[site_design.site] = site.summary
        fabrics[site_design.site] = fabric.summary

    # Output names are an interface (docs/outputs.md): the report and other stacks read them.
    outputs = {
        "country": partnership.country,
        "mode": partnership.mode.value,
        "totals": summary["totals"],
        "funding": summary["funding"],
        "sites": sites,
        "fabrics": fabrics,
    }
    for key in OUTPUTS:
        pulumi.export(key, outputs[key])
    return outputs


def main() -> None:
    """The program the engine runs: read the stack's partnership, build every layer."""
    stack = pulumi.get_stack()
    try:
        partnership = validate_mapping(
            pulumi.Config("sovereign").require_object("partnership"),
            f"Pulumi.{stack}.yaml ({CONFIG_KEY})",
        )
        build(partnership)
    except (InputError, SizingErrors) as exc:
        # The engine prints this message as is; a traceback would bury it.
        raise pulumi.RunError(str(exc)) from None

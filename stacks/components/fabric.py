"""Fabric: the rail-optimised scale-out network of one site (switch counts, tiers, cabling)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pulumi

from stacks.design.fabric_plan import FabricPlan


@dataclass
class FabricArgs:
    plan: FabricPlan


class Fabric(pulumi.ComponentResource):
    summary: pulumi.Output[dict]

    def __init__(self, name: str, args: FabricArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:fabric:Fabric", name, None, opts)
        summary = asdict(args.plan) | {"switches": args.plan.switches, "cables": args.plan.cables}
        self.summary = pulumi.Output.from_input(summary)
        self.register_outputs({"summary": self.summary})

"""Site: the derived physical design of one site — racks, power, cooling, IP plan — as outputs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.design.sizing import SiteDesign
from stacks.design.summary import site_summary


@dataclass
class SiteArgs:
    design: SiteDesign


class Site(pulumi.ComponentResource):
    summary: pulumi.Output[dict]

    def __init__(self, name: str, args: SiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:site:Site", name, None, opts)
        summary = site_summary(args.design)
        summary.pop("fabric")  # the Fabric component owns that part
        self.summary = pulumi.Output.from_input(summary)
        self.register_outputs({"summary": self.summary})

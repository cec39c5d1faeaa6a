"""The machines layer of one site: the design's servers, their BMCs and install media, as a `Machines`."""

from __future__ import annotations

import pulumi

from stacks.bmc_config import BmcSettings
from stacks.components.machines import Machines, MachinesArgs
from stacks.design.bmc_plan import bmc_servers
from stacks.design.catalog import PLATFORMS
from stacks.design.partnership import Partnership
from stacks.design.seed import seed_context, seed_node
from stacks.design.sizing import SiteDesign


def build_machines(partnership: Partnership, site: SiteDesign, bmc: BmcSettings) -> pulumi.Output[dict]:
    servers = bmc_servers(site, bmc.url, bmc.system, bmc.servers)
    seeds = {}
    if bmc.artifacts_url:
        callback = f"{bmc.artifacts_url}/callback"
        for server in servers:
            node = seed_node(site, server.name, server.data_ip)
            seeds[server.name] = seed_context(partnership, node, list(bmc.admin_keys), callback)
    machines = Machines(
        f"{site.site}-machines",
        MachinesArgs(
            servers=servers, username=bmc.username, password=bmc.password, ca_pem=bmc.ca_pem,
            image_url=bmc.image_url, image_sha256=bmc.image_sha256, gpu_model=site.gpu_model,
            gpus=PLATFORMS[site.platform].gpus_per_node, deadline_s=bmc.deadline_s, wave=bmc.wave, pools=bmc.pools,
            generation=bmc.generation, seeds=seeds, artifacts_dir=bmc.artifacts_dir, artifacts_url=bmc.artifacts_url,
        ),
    )
    return machines.summary

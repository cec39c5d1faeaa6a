"""The machines layer of one site: the design's servers, their BMCs and install media, as a `Machines`.

A site's servers are provisioned by one stack per scalable unit (stacks.machine_stacks); each runs
this program with `sovereign:su` set, and builds that unit's servers only.
"""

from __future__ import annotations

import pulumi

from stacks.bmc_config import BmcSettings
from stacks.components.machines import Machines, MachinesArgs
from stacks.design.bmc_plan import BmcServer, bmc_servers
from stacks.design.catalog import PLATFORMS
from stacks.design.partnership import Partnership
from stacks.design.seed import seed_context, seed_node
from stacks.design.sizing import PartnershipDesign, SiteDesign


def machines_site(planned: PartnershipDesign, site: str | None) -> SiteDesign:
    """The site whose servers the stack provisions: the stack's cluster site, else the first."""
    return next((s for s in planned.sites if s.site == site), planned.sites[0])


def site_servers(site: SiteDesign, bmc: BmcSettings) -> list[BmcServer]:
    return bmc_servers(site, bmc.url, bmc.system, bmc.servers)


def scalable_units(site: SiteDesign, bmc: BmcSettings) -> list[int]:
    return sorted({server.su for server in site_servers(site, bmc)})


def build_machines(partnership: Partnership, site: SiteDesign, bmc: BmcSettings, su: int) -> pulumi.Output[dict]:
    servers = [server for server in site_servers(site, bmc) if server.su == su]
    seeds = {}
    if bmc.artifacts_url:
        callback = f"{bmc.artifacts_url}/callback"
        for server in servers:
            node = seed_node(site, server.name, server.data_ip)
            seeds[server.name] = seed_context(partnership, node, list(bmc.admin_keys), callback)
    machines = Machines(
        f"{site.site}-su{su:02d}-machines",
        MachinesArgs(
            servers=servers, username=bmc.username, password=bmc.password, ca_pem=bmc.ca_pem,
            image_url=bmc.image_url, image_sha256=bmc.image_sha256, gpu_model=site.gpu_model,
            gpus=PLATFORMS[site.platform].gpus_per_node, deadline_s=bmc.deadline_s, wave=bmc.wave, pools=bmc.pools,
            generation=bmc.generation, seeds=seeds, artifacts_dir=bmc.artifacts_dir, artifacts_url=bmc.artifacts_url,
        ),
    )
    return machines.summary

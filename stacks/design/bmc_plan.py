"""Which BMC each server of a design answers on, and which Redfish system on it is the server.

A site's BMCs sit on its out-of-band pool: server i's BMC is the pool's i-th address (the same
arithmetic as the inventory), reached as `url` with `{bmc_ip}` filled in. The system path differs by
vendor (`/redfish/v1/Systems/System.Embedded.1` on iDRAC, `/1` on iLO and XClarity, `/system` on
OpenBMC), hence a template too. The lab's emulator serves every server on one endpoint and tells
them apart by a UUID derived from the server's name (`{system_uuid}`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nodeconfig.nodes import iter_nodes
from stacks.design.sizing import SiteDesign

_NAMESPACE = uuid.UUID("6f1d2c4e-8a63-4c1e-9a8b-4d2b7e9a3c10")


def system_uuid(server: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, server))


@dataclass(frozen=True, slots=True)
class BmcServer:
    name: str
    rack: int
    bmc_ip: str
    data_ip: str
    url: str
    system: str
    su: int = 1  # the scalable unit: each is provisioned by a stack of its own (stacks.machine_stacks)


def bmc_servers(site: SiteDesign, url: str, system: str, limit: int | None = None) -> list[BmcServer]:
    """The design's GPU servers (the first `limit` of them: a lab emulates a slice of a site)."""
    servers: list[BmcServer] = []
    for node in iter_nodes(site):
        if node.group != "gpu" or (limit is not None and len(servers) >= limit):
            break
        fields = {"bmc_ip": node.bmc_ip, "system_uuid": system_uuid(node.name), "name": node.name}
        servers.append(BmcServer(node.name, node.rack, node.bmc_ip, node.data_ip, url.format(**fields), system.format(**fields),
                                 node.su or 1))
    return servers

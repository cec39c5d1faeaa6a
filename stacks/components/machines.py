"""Machines: every server of a site provisioned through its BMC, one RedfishMachine each, booted
from the site's install media with its own seed ISO (a SeedIso each, when the site has an artifact server).

Bounded waves per rack, racks side by side: one provider process (the SDK's dynamic-provider host)
runs at most 4 operations at once, and a BMC operation holds one for seconds (power changes land
late), so the component spreads the racks over `pools` explicit provider instances — each its own
process — and the provider lets at most `wave` BMC sessions per rack run at once. A site of
thousands provisions `pools` x 4 servers at a time and never opens thousands of sessions. No
machine depends on another: a server whose BMC fails fails alone, the engine carries on with the
rest (`up` runs with continue-on-error) and its error, which names the server and gives the BMC's
reason, is in the run's summary of failures.

How to reach the BMCs (username, password, CA, deadline, wave) is each pool's configuration, so
the state holds it once per pool, the password encrypted, and each server's resource holds only
what is its own.

Registration order matters at scale. The engine takes registrations one at a time and asks the
resource's provider to check each before its step runs; a pool whose 4 workers are all in BMC
operations makes that call wait, and every registration behind it, while the other pools idle
(seen at 1,000 servers: 256 registrations in flight, one or two of 8 pools busy, 26 servers a
minute). So servers are registered round-robin over the pools, a rack's servers still in one
pool, and the seed ISOs have a provider of their own rather than taking the pools' workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

from stacks.design.bmc_plan import BmcServer
from stacks.design.seed import templates_digest
from stacks.providers.redfish_machine import CONFIG_NAMESPACE, RedfishMachine
from stacks.providers.seed_iso import SeedIso


@dataclass
class MachinesArgs:
    servers: list[BmcServer]
    username: str
    password: pulumi.Input[str]  # a secret
    ca_pem: str
    image_url: str
    image_sha256: str
    gpu_model: str
    gpus: int
    deadline_s: float = 300.0
    wave: int = 8
    pools: int = 8  # provider processes: at most pools x 4 BMC operations at once
    generation: int = 0
    seeds: dict[str, dict[str, Any]] = field(default_factory=dict)  # server -> its seed's context (design.seed)
    artifacts_dir: str | None = None  # where seed ISOs are written, and the URL serving it
    artifacts_url: str | None = None


def round_robin(servers: list[BmcServer], pool: Callable[[BmcServer], int]) -> list[BmcServer]:
    """The servers in turn from each pool, each pool's in their own order."""
    by_pool: dict[int, list[BmcServer]] = {}
    for server in servers:
        by_pool.setdefault(pool(server), []).append(server)
    queues = [by_pool[k] for k in sorted(by_pool)]
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


class Machines(pulumi.ComponentResource):
    summary: pulumi.Output[dict]

    def __init__(self, name: str, args: MachinesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:machines:Machines", name, None, opts)
        machines = []
        racks = sorted({s.rack for s in args.servers})
        connection = {"username": args.username, "password": args.password, "ca_pem": args.ca_pem,
                      "deadline_s": args.deadline_s, "wave": args.wave}
        config = {f"{CONFIG_NAMESPACE}:{key}": value for key, value in connection.items()}
        pools = [pulumi.ProviderResource("pulumi-python", f"{name}-pool{i}", config, pulumi.ResourceOptions(parent=self))
                 for i in range(max(1, min(args.pools, len(racks))))]
        pool_of = {rack: i % len(pools) for i, rack in enumerate(racks)}
        seeds = None
        templates = templates_digest()
        if args.seeds and args.artifacts_dir and args.artifacts_url:
            seeds = pulumi.ProviderResource("pulumi-python", f"{name}-seeds", {}, pulumi.ResourceOptions(parent=self))
        for server in round_robin(args.servers, lambda s: pool_of[s.rack]):
            child = pulumi.ResourceOptions(parent=self, provider=pools[pool_of[server.rack]])
            seed = None
            if seeds and server.name in args.seeds:
                seed = SeedIso(server.name, {"seed": args.seeds[server.name], "templates_sha256": templates,
                                             "artifacts_dir": args.artifacts_dir, "artifacts_url": args.artifacts_url},
                               pulumi.ResourceOptions(parent=self, provider=seeds))
            props = {
                "name": server.name, "url": server.url, "system": server.system, "rack": server.rack,
                "image_url": args.image_url, "image_sha256": args.image_sha256,
                "seed_url": seed.url if seed else None,
                "seed_sha256": seed.sha256 if seed else None,
                "gpu_model": args.gpu_model, "gpus": args.gpus, "generation": args.generation,
            }
            machines.append(RedfishMachine(server.name, props, child))
        self.summary = pulumi.Output.all(*[m.power_state for m in machines]).apply(
            lambda states: {
                "servers": len(states),
                "racks": len(racks),
                "wave": args.wave,
                "pools": len(pools),
                "powered_on": sum(1 for s in states if s == "On"),
            }
        )
        self.register_outputs({"summary": self.summary})

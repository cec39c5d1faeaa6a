"""Per-node names and addresses derived from the design: unique, inside their pools, stable."""

from __future__ import annotations

import ipaddress

from nodeconfig.nodes import iter_nodes
from stacks.design.loader import load_and_design


def test_every_node_has_unique_names_and_addresses_inside_its_pools():
    _, planned = load_and_design("in-staging")
    for site in planned.sites:
        nodes = list(iter_nodes(site))
        assert len(nodes) == site.nodes.gpu + site.nodes.storage + site.nodes.management
        assert len({n.name for n in nodes}) == len(nodes)
        for attr, pool in (("data_ip", "data"), ("bmc_ip", "oob"), ("storage_ip", "storage")):
            addresses = [getattr(n, attr) for n in nodes if getattr(n, attr)]
            assert len(set(addresses)) == len(addresses)
            net = ipaddress.ip_network(site.pools[pool].cidr)
            assert all(ipaddress.ip_address(a) in net for a in addresses)
            assert addresses[0] == site.pools[pool].first


def test_gpu_nodes_are_grouped_by_scalable_unit_and_rack():
    _, planned = load_and_design("ke-staging")
    site = planned.sites[0]
    gpu = [n for n in iter_nodes(site) if n.group == "gpu"]
    assert {n.su for n in gpu} == set(range(1, site.scalable_units + 1))
    assert max(n.rack for n in gpu) == -(-site.nodes.gpu // site.nodes_per_rack)

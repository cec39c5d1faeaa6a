"""Fabric port layouts: interface names from PCI addresses as systemd derives them, checked against
the port tables NVIDIA publishes; per-rail subnets from the compute pool."""

from __future__ import annotations

import ipaddress

import pytest

from stacks.design.catalog import PLATFORMS
from stacks.design.hcas import HCA_LAYOUTS, PortUse, check_rail_capacity, interface_name, rail_address
from stacks.design.ipam import PoolExhausted
from stacks.design.loader import InputError, load_and_design

# (PCI address, link layer, multifunction) -> the name the platform's guide prints for that port.
PUBLISHED = [
    # DGX H100/H200 User Guide, network module ports and slot 1/2 cards
    (("0000:18:00.0", "InfiniBand", False), "ibp24s0"),
    (("0000:dc:00.0", "InfiniBand", False), "ibp220s0"),
    (("0000:29:00.0", "InfiniBand", True), "ibp41s0f0"),
    (("0000:29:00.1", "Ethernet", True), "enp41s0f1np1"),
    (("0000:aa:00.0", "Ethernet", True), "enp170s0f0np0"),
    (("0000:aa:00.1", "InfiniBand", True), "ibp170s0f1"),
    # A Grace system's PCI domains: systemd writes the domain in decimal after P
    (("0002:03:00.0", "InfiniBand", False), "ibP2p3s0"),
    (("0012:03:00.0", "InfiniBand", False), "ibP18p3s0"),
]


@pytest.mark.parametrize(("port", "name"), PUBLISHED)
def test_interface_names_follow_systemd_path_naming(port, name):
    assert interface_name(*port) == name


def test_dgx_h100_layout_is_the_guides_table():
    layout = HCA_LAYOUTS["hgx-h100"]
    assert [h.interface for h in layout.compute()] == [
        "ibp24s0", "ibp64s0", "ibp79s0", "ibp94s0", "ibp154s0", "ibp192s0", "ibp206s0", "ibp220s0"]
    assert [h.rdma for h in layout.compute()] == [f"mlx5_{n}" for n in (0, 3, 4, 5, 6, 9, 10, 11)]
    assert [h.interface for h in layout.storage()] == ["ibp41s0f0", "ibp170s0f0"]


@pytest.mark.parametrize("key", sorted(HCA_LAYOUTS))
def test_every_layout_has_one_compute_port_per_rail(key):
    layout, platform = HCA_LAYOUTS[key], PLATFORMS[key]
    assert [h.rail for h in layout.compute()] == list(range(platform.fabric.rails))
    assert len({h.pci for h in layout.ports}) == len(layout.ports)
    assert len({h.interface for h in layout.ports}) == len(layout.ports)
    assert all(h.use in (PortUse.COMPUTE, PortUse.STORAGE) for h in layout.ports) and layout.source


def test_rail_subnets_are_disjoint_and_inside_the_pool():
    pool, rails = "10.40.0.0/16", 8
    nets = [ipaddress.ip_interface(rail_address(pool, rails, r, 0)).network for r in range(rails)]
    assert all(n.prefixlen == 19 and n.subnet_of(ipaddress.ip_network(pool)) for n in nets)
    assert len(set(nets)) == rails
    assert rail_address(pool, rails, 0, 0) == "10.40.0.17/19"  # after the 16 reserved addresses
    assert rail_address(pool, rails, 7, 5) == "10.40.224.22/19"


def test_a_compute_pool_too_small_for_the_rails_says_what_fits():
    with pytest.raises(PoolExhausted, match=r"pool compute 10.40.0.0/24 split into 8 rails .* use a /21 or larger"):
        check_rail_capacity("10.40.0.0/24", 8, 128, "site-a")
    check_rail_capacity("10.40.0.0/21", 8, 128, "site-a")  # what the message advised fits
    with pytest.raises(PoolExhausted):
        check_rail_capacity("10.40.0.0/22", 8, 128, "site-a")


def test_the_compute_pool_is_validated_like_the_others(write_stack, partnership_dict):
    partnership_dict["sites"][0]["networks"]["compute"] = "10.10.128.0/17"  # inside data
    with pytest.raises(InputError) as caught:
        load_and_design(write_stack(partnership_dict))
    assert any("compute" in p.message and "overlap" in p.message for p in caught.value.problems)
    partnership_dict["sites"][0]["networks"]["compute"] = "10.40.0.0/26"  # 128 nodes, 8 rails
    with pytest.raises(InputError) as caught:
        load_and_design(write_stack(partnership_dict))
    assert any("pool compute" in p.message for p in caught.value.problems)
    partnership_dict["sites"][0]["networks"]["compute"] = "10.40.0.0/16"
    load_and_design(write_stack(partnership_dict))


def test_a_site_without_a_compute_pool_dumps_as_before(write_stack, partnership_dict):
    # Plan digests are over the dumped partnership: approvals of designs without the pool stay valid.
    partnership, _ = load_and_design(write_stack(partnership_dict))
    assert "compute" not in partnership.model_dump(mode="json")["sites"][0]["networks"]
    partnership_dict["sites"][0]["networks"]["compute"] = "10.40.0.0/16"
    partnership, _ = load_and_design(write_stack(partnership_dict))
    assert partnership.model_dump(mode="json")["sites"][0]["networks"]["compute"] == "10.40.0.0/16"

"""Sizing against public reference designs and the budget rules."""

from __future__ import annotations

import re

import pytest

from stacks.design.catalog import PLATFORMS
from stacks.design.fabric_plan import plan_fabric
from stacks.design.loader import validate_mapping
from stacks.design.sizing import SizingError, SizingErrors, design, design_site


def test_superpod_h100_four_scalable_units_matches_reference():
    # DGX SuperPOD (H100) reference: 4 SUs = 128 nodes, 32 leaf and 16 spine switches.
    plan = plan_fabric(PLATFORMS["hgx-h100"], nodes=128, oob_devices=0)
    assert (plan.tiers, plan.leaves, plan.spines, plan.cores) == (2, 32, 16, 0)
    assert plan.cables_node_leaf == 128 * 8


def test_three_tiers_beyond_switch_radix():
    plan = plan_fabric(PLATFORMS["hgx-h100"], nodes=1024, oob_devices=0)
    assert plan.tiers == 3 and plan.leaves == 256 and plan.spines == 256 and plan.cores == 128


def test_one_scalable_unit(partnership_dict):
    partnership_dict["sites"][0]["capacity"] = {"platform": "hgx-h100", "scalable_units": 1}
    site = design(validate_mapping(partnership_dict, "t")).sites[0]
    assert (site.gpus, site.nodes.gpu, site.scalable_units) == (256, 32, 1)
    assert site.nodes_per_rack == 4  # 40.8 kW fits the 45 kW racks
    assert site.facility_mw == pytest.approx(site.it_mw * 1.3, rel=1e-3)


def test_rack_power_limits_nodes_per_rack(partnership_dict):
    partnership_dict["sites"][0]["max_rack_kw"] = 25
    site = design(validate_mapping(partnership_dict, "t")).sites[0]
    assert site.nodes_per_rack == 2 and site.rack_kw <= 25


def test_gpu_count_rounds_up_to_whole_nodes(partnership_dict):
    partnership_dict["sites"][0]["capacity"]["gpus"] = 1001
    site = design(validate_mapping(partnership_dict, "t")).sites[0]
    assert site.gpus == 1008 and site.nodes.gpu == 126


def test_power_overshoot_names_budget_overshoot_and_largest_fit(partnership_dict):
    partnership_dict["sites"][0]["capacity"]["gpus"] = 20_000
    partnership = validate_mapping(partnership_dict, "t")
    with pytest.raises(SizingErrors) as info:
        design(partnership)
    message = str(info.value)
    assert "site 'site-a'" in message and "power budget of 20.0 MW" in message
    fit = int(re.search(r"at most ([\d,]+) GPUs", message).group(1).replace(",", ""))
    site = partnership.sites[0]
    fitting = site.model_copy(update={"capacity": site.capacity.model_copy(update={"gpus": fit})})
    assert design_site(fitting, "greenfield").facility_mw <= 20.0
    one_more = site.model_copy(update={"capacity": site.capacity.model_copy(update={"gpus": fit + 8})})
    with pytest.raises(SizingError):
        design_site(one_more, "greenfield")


def test_expand_subtracts_existing_capacity_and_power(partnership_dict):
    partnership_dict["mode"] = "expand"
    partnership_dict["sites"][0]["existing"] = {
        "racks": 10, "nodes": 40, "gpus": 320, "platform": "hgx-h100", "power_mw": 5.0,
    }
    site = design(validate_mapping(partnership_dict, "t")).sites[0]
    assert site.existing_gpus == 320 and site.gpus == 1024 - 320 and site.total_gpus == 1024
    assert site.pools["data"].existing == 40
    assert site.headroom_mw == pytest.approx(20 - 5 - site.facility_mw)


def test_expand_existing_load_counts_against_budget(partnership_dict):
    partnership_dict["mode"] = "expand"
    partnership_dict["sites"][0]["existing"] = {"racks": 0, "nodes": 0, "gpus": 0, "power_mw": 19.5}
    with pytest.raises(SizingErrors, match="left after existing load"):
        design(validate_mapping(partnership_dict, "t"))


def test_floor_space(partnership_dict):
    partnership_dict["sites"][0]["rack_positions"] = 10
    with pytest.raises(SizingErrors, match="rack positions"):
        design(validate_mapping(partnership_dict, "t"))


def test_nvl72_rack_over_site_rack_limit(partnership_dict):
    site = partnership_dict["sites"][0]
    site.update(cooling="liquid", max_rack_kw=100)
    site["capacity"] = {"platform": "gb200-nvl72", "scalable_units": 1}
    with pytest.raises(SizingErrors, match="per rack"):
        design(validate_mapping(partnership_dict, "t"))


def test_every_catalog_figure_has_a_source():
    for platform in PLATFORMS.values():
        assert platform.kw_per_node.source and platform.node_price_usd.source
        assert platform.fabric.source and platform.rack_source
        assert platform.fabric.switch.price_usd.source

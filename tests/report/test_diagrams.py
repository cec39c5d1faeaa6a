"""The pictures are valid SVG and show the design's numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from math import ceil

import pytest

from report import diagrams
from report.i18n import Formats, translations
from stacks.design.catalog import PLATFORMS
from stacks.design.compute import PFLOPS_FP8_DENSE

SVG = "{http://www.w3.org/2000/svg}"


def _(lang):
    catalog = translations(lang)
    return lambda message, **values: catalog.gettext(message) % values if values else catalog.gettext(message)


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("viewBox")
    width = float(root.get("viewBox").split()[2])
    for rect in root.iter(f"{SVG}rect"):
        assert float(rect.get("width")) >= 0 and float(rect.get("height")) >= 0
        assert float(rect.get("x")) + float(rect.get("width")) <= width + 0.5
    return root


@pytest.mark.parametrize("lang", ["en", "de", "ar"])
def test_site_pictures_match_the_design(documents, lang):
    fmt = Formats(lang)
    for document in documents.values():
        for site in document["design"]["sites"]:
            cap, power, fabric = site["capacity"], site["power"], site["fabric"]
            platform = PLATFORMS[site["platform"]["key"]]

            rack = _parse(diagrams.rack_elevation(site, _(lang), fmt))
            assert int(rack.get("data-racks")) == ceil(platform.su_nodes / cap["nodes_per_rack"])
            nodes_drawn = len([r for r in rack.iter(f"{SVG}rect") if r.get("class") == "node"])
            assert nodes_drawn == platform.su_nodes

            floor = _parse(diagrams.floor_plan(site, _(lang), fmt))
            cells = [r.get("class") for r in floor.iter(f"{SVG}rect")]
            assert cells.count("gpu-rack") + cells.count("other-rack") == cap["racks"]
            assert cells.count("gpu-rack") == ceil(cap["nodes"]["gpu"] / cap["nodes_per_rack"])
            assert int(floor.get("data-scalable-units")) == cap["scalable_units"]

            chart = _parse(diagrams.power_chart(site, _(lang), fmt))
            assert float(chart.get("data-facility-mw")) == power["facility_mw"]
            assert float(chart.get("data-budget-mw")) == power["budget_mw"]
            texts = "".join(t.text or "" for t in chart.iter(f"{SVG}text"))
            assert fmt.number(power["facility_mw"], 2) + " MW" in texts

            net = _parse(diagrams.fabric_diagram(site, _(lang), fmt))
            for key in ("leaves", "spines", "cores", "rails", "tiers"):
                assert int(net.get(f"data-{key}")) == fabric[key]
            labels = "".join(t.text or "" for t in net.iter(f"{SVG}text"))
            assert fmt.number(fabric["leaves"]) in labels


def test_funding_picture_matches_the_shares(documents):
    for document in documents.values():
        plan = document["design"]
        svg = _parse(diagrams.funding_chart(plan["funding"], plan["currency"], plan["usd_rate"], _("fr"), Formats("fr")))
        bars = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "share"]
        widths = [float(b.get("width")) for b in bars]
        shares = [f["share"] for f in plan["funding"]]
        assert [round(w / sum(widths), 3) for w in widths] == [round(s, 3) for s in shares]


def test_every_platform_has_a_published_compute_figure():
    assert set(PFLOPS_FP8_DENSE) == set(PLATFORMS)
    assert all(f.source for f in PFLOPS_FP8_DENSE.values())

"""The report's pictures, drawn from the design as inline SVG (no assets, no plotting library).

Every figure a picture shows is also in its root element's `data-*` attributes, so a test can
check the picture against the design without reading pixels. Labels come through gettext and the
reader's number format. Charts keep left-to-right geometry in every language (the svg says
direction: ltr), so an Arabic label is shaped by bidi inside a chart that reads like any chart.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from math import ceil
from typing import Any

from report.i18n import Formats
from stacks.design.catalog import PLATFORMS

Gettext = Callable[..., str]
INK, MUTED, ACCENT, WARN, FILL = "#1b2a3a", "#6b7785", "#1f6feb", "#d97706", "#e8eef6"
PALETTE = ("#1f6feb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2")


def _svg(width: int, height: int, body: list[str], label: str, data: dict[str, Any]) -> str:
    attrs = " ".join(f'data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in data.items())
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" direction="ltr" {attrs}>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, size: int = 12, anchor: str = "start", color: str = INK,
          weight: str = "normal", halo: bool = False) -> str:
    # A halo keeps a label readable where it crosses lines (the fabric's links).
    extra = ' stroke="#ffffff" stroke-width="4" paint-order="stroke"' if halo else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}" '
            f'font-weight="{weight}"{extra}>{escape(text)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, stroke: str = "none", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<rect{c} x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" stroke="{stroke}"/>'


def su_racks(site: dict[str, Any]) -> tuple[int, int, int]:
    """(racks per scalable unit, nodes per rack, nodes per scalable unit) of a site's platform."""
    su_nodes = PLATFORMS[site["platform"]["key"]].su_nodes
    per_rack = site["capacity"]["nodes_per_rack"]
    return ceil(su_nodes / per_rack), per_rack, su_nodes


def rack_elevation(site: dict[str, Any], _: Gettext, fmt: Formats) -> str:
    """One scalable unit, rack by rack: GPU nodes as slots, each rack's kW below it."""
    racks, per_rack, su_nodes = su_racks(site)
    slot, rack_w, gap, top = 16, 56, 14, 30
    height = top + per_rack * (slot + 3) + 50
    width = max(racks * (rack_w + gap) + gap, 260)
    body = [_text(gap, 18, _("One scalable unit: %(nodes)s nodes in %(racks)s racks",
                            nodes=fmt.number(su_nodes), racks=fmt.number(racks)), 13, weight="bold")]
    left = su_nodes
    for r in range(racks):
        x = gap + r * (rack_w + gap)
        body.append(_rect(x, top, rack_w, per_rack * (slot + 3) + 6, "#f8fafc", INK, "rack"))
        for n in range(min(per_rack, left)):
            body.append(_rect(x + 5, top + 4 + n * (slot + 3), rack_w - 10, slot, ACCENT, cls="node"))
        left -= min(per_rack, left)
        body.append(_text(x + rack_w / 2, height - 26, fmt.number(site["capacity"]["rack_kw"], 1) + " kW", 10, "middle", MUTED))
    return _svg(width, height, body, _("Rack elevation"),
                {"racks": racks, "nodes_per_rack": per_rack, "su_nodes": su_nodes, "rack_kw": site["capacity"]["rack_kw"]})


def floor_plan(site: dict[str, Any], _: Gettext, fmt: Formats) -> str:
    """Every rack of the site on the floor, grouped by scalable unit; storage and management last."""
    cap = site["capacity"]
    gpu_racks = ceil(cap["nodes"]["gpu"] / cap["nodes_per_rack"]) if cap["nodes"]["gpu"] else 0
    other = cap["racks"] - gpu_racks
    per_su, _per_rack, _su_nodes = su_racks(site)
    cell = 14 if cap["racks"] <= 400 else 6 if cap["racks"] <= 3000 else 3
    columns = max(1, min(per_su, 64 // max(1, cell // 3)))
    width, top = 680, 40
    per_row_units = max(1, (width - 20) // (columns * cell + 12))
    cells: list[str] = []
    units = ceil(gpu_racks / per_su) if gpu_racks else 0
    unit_h = ceil(per_su / columns) * cell + 12
    for u in range(units):
        ux = 10 + (u % per_row_units) * (columns * cell + 12)
        uy = top + (u // per_row_units) * unit_h
        for r in range(min(per_su, gpu_racks - u * per_su)):
            cells.append(_rect(ux + (r % columns) * cell, uy + (r // columns) * cell, cell - 1, cell - 1, ACCENT, cls="gpu-rack"))
    y = top + ceil(units / per_row_units) * unit_h + 8 if units else top
    for r in range(other):
        cells.append(_rect(10 + (r % 40) * cell, y + (r // 40) * cell, cell - 1, cell - 1, WARN, cls="other-rack"))
    height = y + ceil(other / 40) * cell + 40
    legend = [
        _text(10, 20, _("Floor plan: %(racks)s racks", racks=fmt.number(cap["racks"])), 13, weight="bold"),
        _rect(10, height - 22, 10, 10, ACCENT),
        _text(26, height - 13, _("GPU racks (%(n)s, in %(units)s scalable units)", n=fmt.number(gpu_racks),
                                 units=fmt.number(units)), 11),
        _rect(340, height - 22, 10, 10, WARN),
        _text(356, height - 13, _("storage and management racks (%(n)s)", n=fmt.number(other)), 11),
    ]
    return _svg(width, height, legend + cells, _("Floor plan"),
                {"racks": cap["racks"], "gpu_racks": gpu_racks, "other_racks": other, "scalable_units": units})


def power_chart(site: dict[str, Any], _: Gettext, fmt: Formats) -> str:
    """Existing load, the new IT load and its facility draw (x PUE), against the site's budget."""
    p = site["power"]
    rows = [(_("existing load"), p["existing_mw"], MUTED), (_("new IT load"), p["it_mw"], ACCENT),
            (_("new facility load"), p["facility_mw"], WARN),
            (_("total after the build"), p["existing_mw"] + p["facility_mw"], INK)]
    scale_max = max(p["budget_mw"], max(v for _l, v, _c in rows)) or 1.0
    label_w, bar_w, width = 190, 380, 680
    body = [_text(10, 18, _("Power against the budget of %(mw)s MW", mw=fmt.number(p["budget_mw"], 1)), 13, weight="bold")]
    for i, (label, value, color) in enumerate(rows):
        y = 34 + i * 30
        body.append(_text(10, y + 14, label, 11))
        body.append(_rect(label_w, y, bar_w * value / scale_max, 20, color, cls="bar"))
        body.append(_text(label_w + bar_w * value / scale_max + 6, y + 14, fmt.number(value, 2) + " MW", 11))
    budget_x = label_w + bar_w * p["budget_mw"] / scale_max
    body.append(f'<line x1="{budget_x:.1f}" y1="28" x2="{budget_x:.1f}" y2="160" stroke="#dc2626" stroke-dasharray="4 3"/>')
    body.append(_text(10, 176, _("headroom: %(mw)s MW", mw=fmt.number(p["headroom_mw"], 2)), 11, color=MUTED))
    return _svg(width, 186, body, _("Power budget"),
                {"budget_mw": p["budget_mw"], "facility_mw": p["facility_mw"], "it_mw": p["it_mw"],
                 "existing_mw": p["existing_mw"], "headroom_mw": p["headroom_mw"]})


def fabric_diagram(site: dict[str, Any], _: Gettext, fmt: Formats) -> str:
    """The scale-out fabric as layers: cores, spines, leaves (per rail), GPU nodes."""
    f, nodes = site["fabric"], site["capacity"]["nodes"]["gpu"]
    layers = [(_("core switches"), f["cores"]), (_("spine switches"), f["spines"]),
              (_("leaf switches"), f["leaves"]), (_("GPU nodes"), nodes)]
    layers = [(label, count) for label, count in layers if count]
    width, row = 680, 58
    body = [_text(10, 18, _("Fabric: %(kind)s, %(tiers)s tiers, %(rails)s rails of %(gbps)s Gb/s",
                            kind=f["kind"], tiers=fmt.number(f["tiers"]), rails=fmt.number(f["rails"]),
                            gbps=fmt.number(f["link_gbps"])), 13, weight="bold")]
    for i, (_label, count) in enumerate(layers):
        y = 34 + i * row
        shown = min(count, 24)
        box_w = (width - 40) / shown
        for b in range(shown):
            body.append(_rect(20 + b * box_w + 1, y, box_w - 2, 18, ACCENT if i < len(layers) - 1 else "#94a3b8", cls="switch"))
        if i:  # a mesh of links between this layer and the one above, as in a fat tree
            step = (width - 40) / 6
            for a in range(6):
                for b in range(6):
                    body.append(f'<line x1="{20 + (a + 0.5) * step:.1f}" y1="{y:.1f}" x2="{20 + (b + 0.5) * step:.1f}" '
                                f'y2="{y - row + 18:.1f}" stroke="{MUTED}" stroke-width="0.4"/>')
    for i, (label, count) in enumerate(layers):  # labels last, over the links
        body.append(_text(width / 2, 34 + i * row + 34, f"{label}: {fmt.number(count)}", 11, "middle", halo=True))
    height = 34 + len(layers) * row
    return _svg(width, height, body, _("Fabric"),
                {"tiers": f["tiers"], "leaves": f["leaves"], "spines": f["spines"], "cores": f["cores"],
                 "rails": f["rails"], "switches": f["switches"], "nodes": nodes})


def funding_chart(funding: list[dict[str, Any]], currency: str, usd_rate: float, _: Gettext, fmt: Formats) -> str:
    """Who pays what: one bar split by share, then a line per party."""
    width, bar_w = 680, 640
    body = [_text(10, 18, _("Funding split"), 13, weight="bold")]
    x = 20.0
    for i, part in enumerate(funding):
        w = bar_w * part["share"]
        body.append(_rect(x, 30, w, 26, PALETTE[i % len(PALETTE)], cls="share"))
        body.append(_text(x + w / 2, 47, fmt.percent(part["share"]), 11, "middle", "#ffffff", "bold"))
        x += w
    for i, part in enumerate(funding):
        y = 80 + i * 22
        body.append(_rect(20, y - 10, 12, 12, PALETTE[i % len(PALETTE)]))
        body.append(_text(40, y, f"{part['party']}: {fmt.money(part['usd'] * usd_rate, currency)} "
                                 f"({fmt.money(part['usd'], 'USD')})", 11))
    shares = ",".join(f"{p['share']:.6g}" for p in funding)
    return _svg(width, 80 + len(funding) * 22, body, _("Funding split"), {"shares": shares, "parties": len(funding)})

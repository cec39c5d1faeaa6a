"""Rich renderings of a plan summary (stacks.design.summary), for people reading in a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

# Every string from the partnership or a file name is escaped: "Kenya [/] AI" is a name, not markup.


def _money(usd: float) -> str:
    return f"US${usd / 1e6:,.1f}M"


def plan_view(plan: dict[str, Any]) -> Group:
    totals = plan["totals"]
    head = Table.grid(padding=(0, 2))
    head.add_row("[bold]" + escape(plan["name"]) + "[/]", f"{plan['country']} · {plan['mode']}")
    head.add_row(
        "Total",
        f"{totals['new_gpus']:,} new GPUs ({totals['total_gpus']:,} at the sites after the build), "
        f"{totals['gpu_nodes']:,} GPU nodes, {totals['racks']:,} racks, "
        f"{totals['facility_mw']:,.1f} MW facility ({totals['it_mw']:,.1f} MW IT)",
    )
    head.add_row(
        "Capex (estimate)",
        f"{_money(totals['capex_usd'])} = {plan['currency']} {totals['capex_local']:,.0f}",
    )
    parts = [head, _sites(plan["sites"]), _fabric(plan["sites"]), _funding(plan)]
    return Group(*parts)


def _sites(sites: list[dict[str, Any]]) -> Table:
    table = Table(title="Sites", title_justify="left")
    for col in ("site", "platform", "GPUs new/total", "nodes", "racks", "rack kW", "IT MW",
                "facility MW", "budget MW", "headroom MW", "capex"):
        table.add_column(col, justify="left" if col in ("site", "platform") else "right")
    for s in sites:
        cap, power = s["capacity"], s["power"]
        table.add_row(
            escape(s["site"]),
            escape(s["platform"]["name"]),
            f"{cap['new_gpus']:,}/{cap['total_gpus']:,}",
            f"{cap['nodes']['gpu']:,}",
            f"{cap['racks']:,}",
            f"{cap['rack_kw']:,.1f}",
            f"{power['it_mw']:,.2f}",
            f"{power['facility_mw']:,.2f}",
            f"{power['budget_mw']:,.1f}",
            f"{power['headroom_mw']:,.2f}",
            _money(s["capex_usd"]["total"]),
        )
    return table


def _fabric(sites: list[dict[str, Any]]) -> Table:
    table = Table(title="Fabric", title_justify="left")
    for col in ("site", "kind", "switch", "tiers", "leaves", "spines", "cores", "cables", "OOB switches"):
        table.add_column(col, justify="left" if col in ("site", "kind", "switch") else "right")
    for s in sites:
        f = s["fabric"]
        table.add_row(
            escape(s["site"]), f"{f['kind']} {f['link_gbps']}G x{f['rails']} rails", escape(f["switch_model"]),
            str(f["tiers"]), f"{f['leaves']:,}", f"{f['spines']:,}", f"{f['cores']:,}",
            f"{f['cables']:,}", f"{f['oob_switches']:,}",
        )
    return table


def _funding(plan: dict[str, Any]) -> Table:
    table = Table(title="Funding split (estimate)", title_justify="left")
    for col in ("party", "kind", "share", "US$", plan["currency"]):
        table.add_column(col, justify="left" if col in ("party", "kind") else "right")
    for f in plan["funding"]:
        table.add_row(
            escape(f["party"]), f["kind"], f"{f['share']:.0%}", _money(f["usd"]),
            f"{f['usd'] * plan['usd_rate']:,.0f}",
        )
    return table


def fleet_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Fleet", title_justify="left")
    for col in ("stack", "country", "mode", "sites", "new GPUs", "facility MW", "capex", "government"):
        table.add_column(col, justify="left" if col in ("stack", "country", "mode") else "right")
    for r in rows:
        table.add_row(
            escape(r["stack"]), r["country"], r["mode"], str(r["sites"]), f"{r['new_gpus']:,}",
            f"{r['facility_mw']:,.1f}", _money(r["capex_usd"]), f"{r['government_share']:.0%}",
        )
    if rows:
        table.add_section()
        table.add_row(
            "total", f"{len({r['country'] for r in rows})} countries", "",
            str(sum(r["sites"] for r in rows)), f"{sum(r['new_gpus'] for r in rows):,}",
            f"{sum(r['facility_mw'] for r in rows):,.1f}",
            _money(sum(r["capex_usd"] for r in rows)), "",
        )
    return table

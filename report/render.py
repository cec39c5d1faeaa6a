"""Render the report: a plan document (stacks.design.approval.plan_document) → one HTML file.

The HTML carries its styles and pictures inline, so it opens offline, travels as one attachment
and prints the same everywhere. Text goes through the reader's gettext catalog; figures through
Babel's formats for the reader's locale.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale

from report import diagrams
from report.i18n import Formats, translations
from stacks.design.approval import digest
from stacks.design.catalog import CABLE_USD, FACILITY_USD_PER_MW, INTEGRATION_FRACTION, PLATFORMS, STORAGE_USD_PER_GPU
from stacks.design.compute import PFLOPS_FP8_DENSE, pflops
from stacks.design.plan_diff import Change, plan_changes
from stacks.design.preview import NOT_REQUESTED, OPERATIONS, EnginePreview, by_component

TEMPLATES = Path(__file__).parent / "templates"


def _env(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def render_html(document: dict[str, Any], lang: str, since: dict[str, Any] | None = None,
                today: date | None = None, engine: EnginePreview = NOT_REQUESTED) -> str:
    env = _env(lang)
    catalog = translations(lang)

    def _(message: str, **values: Any) -> str:  # the Python side of the template's `_()`
        text = catalog.gettext(message)
        return text % values if values else text

    fmt = Formats(lang)
    plan, partnership = document["design"], document["partnership"]
    sites = []
    for site, spec in zip(plan["sites"], partnership["sites"]):
        sites.append({
            "plan": site,
            "spec": spec,
            "pflops": pflops(site["platform"]["key"], site["capacity"]["total_gpus"]),
            "pictures": [
                diagrams.rack_elevation(site, _, fmt), diagrams.floor_plan(site, _, fmt),
                diagrams.power_chart(site, _, fmt), diagrams.fabric_diagram(site, _, fmt),
            ],
        })
    changes = None if since is None else plan_changes(since, document)
    return env.get_template("report.html.j2").render(
        lang=lang,
        dir=fmt.direction,
        fmt=fmt,
        plan=plan,
        partnership=partnership,
        stack=document["stack"],
        digest=digest(document),
        today=fmt.date(today or date.today()),
        sites=sites,
        total_pflops=sum(s["pflops"] for s in sites),
        funding_chart=diagrams.funding_chart(plan["funding"], plan["currency"], plan["usd_rate"], _, fmt),
        territory=lambda code: Locale.parse(lang).territories.get(code, code),
        changes=changes,
        change_rows=[_change_row(c, _, fmt, plan["currency"]) for c in changes or []],
        since_digest=digest(since) if since else "",
        engine=_engine_section(engine, _),
        sources=_sources(plan),
    )


def _change_row(change: Change, _: Any, fmt: Formats, currency: str) -> tuple[str, str, str, str]:
    """(what, subject, before, after) in the reader's words and numbers."""
    labels = {
        "new_gpus": _("new GPUs"), "total_gpus": _("GPUs after the build"), "racks": _("racks"),
        "facility_mw": _("facility power (MW)"), "capex_usd": _("capital cost (USD)"),
        "capex_local": _("capital cost (local currency)"), "capacity.new_gpus": _("new GPUs"),
        "capacity.total_gpus": _("GPUs after the build"), "capacity.racks": _("racks"),
        "power.facility_mw": _("facility power (MW)"), "power.budget_mw": _("power budget (MW)"),
        "capex_usd.total": _("capital cost (USD)"), "platform": _("GPU platform"), "share": _("funding share"),
    }
    kinds = {"total": _("country total"), "site": _("site"), "site_added": _("site added"),
             "site_removed": _("site removed"), "funding": _("funding"), "setting": _("partnership setting")}

    def value(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, list):
            return ", ".join(value(item) for item in v) or "—"
        if isinstance(v, dict):
            return ", ".join(f"{k}: {value(item)}" for k, item in v.items())
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return str(v)
        if change.field == "share":
            return fmt.percent(v)
        return fmt.number(v, 2 if isinstance(v, float) and abs(v) < 1000 else 0)

    what = kinds[change.kind]
    if change.kind in ("total", "site", "funding"):
        what = f"{what}: {labels.get(change.field, change.field)}"
    return what, change.subject, value(change.old), value(change.new)


def _engine_section(engine: EnginePreview, _: Any) -> dict[str, Any]:
    """The engine's preview in the reader's words: a row per component with how many objects
    are new, changed, replaced or removed, then each object with the properties that change."""
    ops = {"create": _("new"), "update": _("changed"), "replace": _("replaced"), "delete": _("removed")}
    layers = {"site": _("Site"), "fabric": _("Fabric"), "machines": _("Machines"), "cluster": _("Cluster"),
              "platform": _("Platform"), "stack": _("Stack")}
    components = {
        "Site": _("Site"), "Fabric": _("Fabric"), "Machines": _("Machines (BMCs)"), "Cluster": _("Cluster"),
        "GpuPlatform": _("GPU platform"), "NetworkPlatform": _("Network platform"), "Monitoring": _("Monitoring"),
        "Tenants": _("Tenants"), "SovereigntyPolicy": _("Sovereignty policy"), "Stack": _("The stack itself"),
    }
    groups = by_component(engine.changes)
    rows = [{"layer": layers.get(g.layer, g.layer), "component": components.get(g.component, g.component),
             "counts": [g.counts.get(op, 0) for op in OPERATIONS],
             "summary": ", ".join(f"{ops[op]}: {n}" for op, n in g.counts.items()),
             "objects": [(ops[c.op], c.kind, c.name, ", ".join(c.properties)) for c in g.changes]}
            for g in groups]
    totals = [sum(r["counts"][i] for r in rows) for i in range(len(OPERATIONS))]
    return {"status": engine.status, "digest": engine.digest, "target": engine.target, "reason": engine.reason,
            "op_labels": [ops[op] for op in OPERATIONS], "rows": rows, "totals": totals}


def _sources(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """The public figures this plan rests on, one line each, for the platforms it uses."""
    seen: list[tuple[str, str]] = []
    for key in dict.fromkeys(s["platform"]["key"] for s in plan["sites"]):
        p = PLATFORMS[key]
        seen += [(p.name, p.kw_per_node.source), (p.name, p.rack_source), (p.name, p.fabric.source),
                 (p.name, p.node_price_usd.source), (p.name, PFLOPS_FP8_DENSE[key].source)]
    seen += [("", CABLE_USD.source), ("", STORAGE_USD_PER_GPU.source),
             ("", FACILITY_USD_PER_MW[plan["mode"]].source), ("", INTEGRATION_FRACTION.source)]
    return list(dict.fromkeys(seen))

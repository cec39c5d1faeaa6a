"""What changed between two plan documents (approval.plan_document): in words a reviewer reads.

Both the report's "changed since the approved revision" page and `up`'s refusal use this, so a
ministry sees the same list of changes in its report as an engineer sees in the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Totals a reviewer weighs, in the order the report lists them.
TOTALS = ("new_gpus", "total_gpus", "racks", "facility_mw", "capex_usd", "capex_local")
SITE_FIELDS = (
    ("capacity", "new_gpus"), ("capacity", "total_gpus"), ("capacity", "racks"),
    ("power", "facility_mw"), ("power", "budget_mw"), ("capex_usd", "total"),
)


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # total | site_added | site_removed | site | funding | setting
    subject: str  # site, party or setting path; "" for totals
    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        """Plain English (the report renders the same data in the reader's language)."""
        if self.kind == "site_added":
            return f"site {self.subject} added ({self.new:,} new GPUs)"
        if self.kind == "site_removed":
            return f"site {self.subject} removed (had {self.old:,} new GPUs)"
        where = {"total": "total", "site": f"site {self.subject}", "funding": f"funding {self.subject}",
                 "setting": "setting"}[self.kind]
        name = self.field if self.kind != "setting" else self.subject
        return f"{where} {name}: {_text(self.old)} → {_text(self.new)}"


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def plan_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Changes from the `old` plan document to `new`: design first, then every partnership setting."""
    changes: list[Change] = []
    old_design, new_design = old["design"], new["design"]
    for key in TOTALS:
        a, b = old_design["totals"].get(key), new_design["totals"].get(key)
        if a != b:
            changes.append(Change("total", "", key, a, b))
    old_sites = {s["site"]: s for s in old_design["sites"]}
    new_sites = {s["site"]: s for s in new_design["sites"]}
    for name, site in new_sites.items():
        if name not in old_sites:
            changes.append(Change("site_added", name, "new_gpus", None, site["capacity"]["new_gpus"]))
            continue
        for group, key in SITE_FIELDS:
            a, b = old_sites[name][group][key], site[group][key]
            if a != b:
                changes.append(Change("site", name, f"{group}.{key}", a, b))
        if old_sites[name]["platform"]["key"] != site["platform"]["key"]:
            changes.append(Change("site", name, "platform", old_sites[name]["platform"]["key"], site["platform"]["key"]))
    for name, site in old_sites.items():
        if name not in new_sites:
            changes.append(Change("site_removed", name, "new_gpus", site["capacity"]["new_gpus"], None))
    old_funding = {f["party"]: f for f in old_design["funding"]}
    new_funding = {f["party"]: f for f in new_design["funding"]}
    for party in [*new_funding, *(p for p in old_funding if p not in new_funding)]:
        a, b = old_funding.get(party, {}).get("share"), new_funding.get(party, {}).get("share")
        if a != b:
            changes.append(Change("funding", party, "share", a, b))
    for path, a, b in _leaf_diff(old["partnership"], new["partnership"]):
        changes.append(Change("setting", path, "", a, b))
    return changes


def _leaf_diff(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in [*a, *(k for k in b if k not in a)]:
            out += _leaf_diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _leaf_diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [(path, a, b)]

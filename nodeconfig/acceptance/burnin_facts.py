"""Burn-in evidence from a GPU node: ECC and row-remapping state, XID errors since boot, PCIe links.

Parsers and judgements only (pure; fixtures in tests/fixtures/gpu/burnin/ are written from the
formats NVIDIA documents, not recorded from hardware). Wired into `verify` by burnin_checks (the
probes below run on GPU nodes through the nvidia_host checks).

Sources:
- `nvidia-smi --help-query-gpu` (field names; "[N/A]" for fields a GPU does not support,
  "Yes"/"No" for the row-remapper flags);
- NVIDIA's "GPU Memory Error Management" (row remapping: a pending remap needs a GPU reset; a
  failed remap means the GPU should be replaced) and "XID Errors" (driver log lines
  `NVRM: Xid (PCI:0000:18:00): 79, pid=..., GPU has fallen off the bus.`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from nodeconfig.acceptance.findings import Finding, failed, passed

ECC_FIELDS = (
    "pci.bus_id",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.uncorrected.aggregate.total",
    "ecc.errors.corrected.volatile.total",
    "ecc.errors.corrected.aggregate.total",
    "remapped_rows.pending",
    "remapped_rows.failure",
)
PCIE_FIELDS = (
    "pci.bus_id",
    "pcie.link.gen.max",
    "pcie.link.gen.current",
    "pcie.link.width.max",
    "pcie.link.width.current",
)
PROBES = {
    "ecc": f"nvidia-smi --query-gpu={','.join(ECC_FIELDS)} --format=csv,noheader,nounits",
    "pcie": f"nvidia-smi --query-gpu={','.join(PCIE_FIELDS)} --format=csv,noheader,nounits",
    "xid": "journalctl -k -b --no-pager -o cat --grep 'NVRM: Xid'",
}
# XIDs that fail a burn-in (NVIDIA's XID catalogue): 48 double-bit ECC, 64 row-remap recording
# failure, 74 NVLink error, 79 fallen off the bus, 94/95 contained/uncontained ECC error, 119/120
# GSP errors. Others (e.g. 13, 31, 43: application faults) are reported, not failed.
FATAL_XIDS = frozenset({48, 64, 74, 79, 94, 95, 119, 120})
_XID = re.compile(r"NVRM: Xid \(PCI:([0-9A-Fa-f:.]+)\): (\d+),\s*(.*)$")


class BurnInParseError(ValueError):
    """A probe printed something the documented format does not allow."""


@dataclass(frozen=True)
class EccState:
    bus: str
    uncorrected_volatile: int | None  # None: the GPU reports [N/A] (ECC off or unsupported)
    uncorrected_aggregate: int | None
    corrected_volatile: int | None
    corrected_aggregate: int | None
    remap_pending: bool | None
    remap_failed: bool | None


@dataclass(frozen=True)
class PcieLink:
    bus: str
    gen_max: int
    gen_current: int
    width_max: int
    width_current: int


@dataclass(frozen=True)
class Xid:
    bus: str
    code: int
    text: str


def _count(value: str, field: str) -> int | None:
    value = value.strip()
    if value in ("[N/A]", "N/A", "[Not Supported]"):
        return None
    if not value.isdigit():
        raise BurnInParseError(f"{field} = {value!r}: expected a count or [N/A]")
    return int(value)


def _flag(value: str, field: str) -> bool | None:
    value = value.strip()
    if value in ("[N/A]", "N/A", "[Not Supported]"):
        return None
    if value in ("Yes", "No"):
        return value == "Yes"
    raise BurnInParseError(f"{field} = {value!r}: expected Yes, No or [N/A]")


def _rows(text: str, fields: tuple[str, ...]) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(fields):
            raise BurnInParseError(f"{line!r}: {len(cells)} fields, expected {len(fields)} ({', '.join(fields)})")
        rows.append(cells)
    return rows


def parse_ecc(text: str) -> list[EccState]:
    states = []
    for bus, *cells in _rows(text, ECC_FIELDS):
        unc_vol, unc_agg, cor_vol, cor_agg = (_count(v, f) for v, f in zip(cells[:4], ECC_FIELDS[1:5]))
        pending, failure = _flag(cells[4], ECC_FIELDS[5]), _flag(cells[5], ECC_FIELDS[6])
        states.append(EccState(bus, unc_vol, unc_agg, cor_vol, cor_agg, pending, failure))
    return states


def parse_pcie(text: str) -> list[PcieLink]:
    links = []
    for bus, *cells in _rows(text, PCIE_FIELDS):
        values = [_count(v, f) for v, f in zip(cells, PCIE_FIELDS[1:])]
        if any(v is None for v in values):
            raise BurnInParseError(f"{bus}: PCIe link fields must be numbers, got {cells}")
        links.append(PcieLink(bus, *(int(v or 0) for v in values)))
    return links


def parse_xids(text: str) -> list[Xid]:
    """XID lines of the kernel log; other lines are ignored (journalctl's grep is a filter, not a promise)."""
    found = []
    for line in text.splitlines():
        match = _XID.search(line)
        if match:
            found.append(Xid(match.group(1), int(match.group(2)), match.group(3).strip()))
    return found


def ecc_findings(states: list[EccState]) -> list[Finding]:
    """Uncorrected errors since boot, a pending or failed row remap: the GPU is not fit for a burn-in
    pass (pending needs a GPU reset; failed needs the GPU replaced). Corrected errors are reported."""
    problems = []
    corrected = 0
    for s in states:
        if s.uncorrected_volatile:
            problems.append(f"{s.bus}: {s.uncorrected_volatile} uncorrected ECC error(s) since boot")
        if s.remap_pending:
            problems.append(f"{s.bus}: row remap pending (reset the GPU)")
        if s.remap_failed:
            problems.append(f"{s.bus}: row remap failed (replace the GPU)")
        corrected += s.corrected_volatile or 0
    if not states:
        return [failed("ecc_errors", "nvidia-smi listed no GPU")]
    if problems:
        return [failed("ecc_errors", "; ".join(problems))]
    return [passed("ecc_errors", f"{len(states)} GPUs: no uncorrected ECC errors, no pending or failed row remap"
                   f" ({corrected} corrected since boot)")]


def xid_findings(xids: list[Xid]) -> list[Finding]:
    fatal = [x for x in xids if x.code in FATAL_XIDS]
    if fatal:
        return [failed("xid", "; ".join(f"{x.bus}: Xid {x.code} ({x.text})" for x in fatal))]
    if xids:
        codes = sorted({x.code for x in xids})
        return [passed("xid", f"{len(xids)} non-fatal Xid event(s) since boot (codes {', '.join(map(str, codes))})")]
    return [passed("xid", "no Xid errors since boot")]


def pcie_findings(links: list[PcieLink], expected_gen: int | None, expected_width: int | None) -> list[Finding]:
    """Width must be the link's full width; the generation may idle lower (power saving), so the
    maximum the link trained to is judged, against the platform's expected figures when given."""
    problems = []
    for link in links:
        if link.width_current < link.width_max:
            problems.append(f"{link.bus}: x{link.width_current} of x{link.width_max}")
        if expected_width and link.width_max < expected_width:
            problems.append(f"{link.bus}: x{link.width_max}, platform expects x{expected_width}")
        if expected_gen and link.gen_max < expected_gen:
            problems.append(f"{link.bus}: Gen{link.gen_max}, platform expects Gen{expected_gen}")
    if not links:
        return [failed("pcie", "nvidia-smi listed no GPU")]
    if problems:
        return [failed("pcie", "; ".join(problems))]
    return [passed("pcie", f"{len(links)} GPU links at full width (Gen{max(x.gen_max for x in links)})")]


# --- The functional tier (`verify --burn-in`): DCGM's diagnostic at level 3 ---
# `dcgmi diag -r 3 -j`: DCGM's documented JSON report, {"DCGM GPU Diagnostic" (DCGM 3; "DCGM
# Diagnostic" in DCGM 4): {"test_categories": [{"category", "tests": [{"name", "results":
# [{"gpu_id"/"gpu_ids", "status": "Pass"|"Fail"|"Warn"|"Skip", "warnings"/"info": ...}]}]}]}}.
# Level 3 (about 30 minutes on 8 GPUs) adds the memory, PCIe bandwidth and targeted stress tests.
DIAG_PROBE = "dcgmi diag -r 3 -j"


@dataclass(frozen=True)
class DiagResult:
    category: str
    test: str
    gpu: str  # "" for node-wide tests (Deployment)
    status: str  # lower case: pass, fail, warn, skip, ...
    detail: str


def parse_dcgm_diag(text: str) -> list[DiagResult]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BurnInParseError(f"dcgmi diag -j printed no JSON document: {exc}") from None
    keys = ("DCGM GPU Diagnostic", "DCGM Diagnostic")
    body = next((document[k] for k in keys if isinstance(document, dict) and k in document), None)
    if not isinstance(body, dict) or not isinstance(body.get("test_categories"), list):
        raise BurnInParseError("dcgmi diag -j: no 'DCGM GPU Diagnostic'/'DCGM Diagnostic' with test_categories")
    results = []
    for category in body["test_categories"]:
        for test in category.get("tests", []):
            for result in test.get("results", []):
                if "status" not in result:
                    raise BurnInParseError(f"{category.get('category')}/{test.get('name')}: a result without a status")
                gpu = str(result.get("gpu_id", result.get("gpu_ids", "")))
                results.append(DiagResult(str(category.get("category", "")), str(test.get("name", "")), gpu,
                                          str(result["status"]).strip().lower(), _detail(result)))
    return results


def _detail(result: dict[str, Any]) -> str:
    warnings = result.get("warnings") or []
    texts = [w.get("warning", "") if isinstance(w, dict) else str(w) for w in warnings]
    info = result.get("info")
    texts += [str(i) for i in (info if isinstance(info, list) else [info] if info else [])]
    return "; ".join(t.strip() for t in texts if t and t.strip())


def diag_findings(results: list[DiagResult]) -> list[Finding]:
    """Any test that failed fails the gate, with DCGM's own words; warnings and skips are listed."""
    if not results:
        return [failed("dcgm_diag", "dcgmi diag reported no test result")]
    bad = [r for r in results if r.status in ("fail", "failed")]
    if bad:
        shown = "; ".join(f"{r.category}/{r.test}{' GPU ' + r.gpu if r.gpu else ''}: {r.detail or r.status}" for r in bad)
        return [failed("dcgm_diag", shown)]
    passed_count = sum(r.status == "pass" for r in results)
    other = sorted({f"{r.test} {r.status}" for r in results if r.status != "pass"})
    return [passed("dcgm_diag", f"dcgmi diag -r 3: {passed_count} results passed" + (f" ({', '.join(other)})" if other else ""))]

"""What the infiniband role promises about a node's HCA ports, as findings from raw probe output.

`ib_findings(outputs, expected)` is pure, like gpu_checks.gpu_findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nodeconfig.acceptance import ib_facts as ib
from nodeconfig.acceptance.findings import Finding, failed, passed
from nodeconfig.acceptance.probes import ParseError, ProbeResult

IB_PROBES: dict[str, str] = {
    "sysfs": "grep -H . " + " ".join(f"{ib.IB_SYSFS_DIR}*/ports/*/{attr}" for attr in ib.IB_PORT_ATTRS),
    "ibstat": "ibstat",
}

CHECKS = ("ib_port_count", "ib_port_state", "ib_port_rate")


@dataclass(frozen=True)
class IbExpectations:
    port_count: int = 0  # 0: the design gives this node no fabric port
    rate_gbps: float | None = None  # 400 for NDR, 200 for HDR
    link_layer: str = "InfiniBand"  # ports of another link layer (RoCE NICs) are not counted
    hcas: tuple[str, ...] = ()  # when the design names the HCAs, exactly those must be present
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # field -> var name


def _ports(outputs: Mapping[str, ProbeResult]) -> tuple[list[ib.IbPort], str]:
    """Ports and where they were read. sysfs first: it needs nothing installed."""
    sysfs = outputs["sysfs"]
    if sysfs.rc == 0 and sysfs.stdout.strip():
        return ib.parse_sysfs_ports(sysfs.stdout), "sysfs"
    stat = outputs.get("ibstat")
    if stat is not None and stat.rc == 0 and stat.stdout.strip():
        return [p for ca in ib.parse_ibstat(stat.stdout) for p in ca.ports], "ibstat"
    return [], "sysfs"


def ib_findings(outputs: Mapping[str, ProbeResult], expected: IbExpectations) -> list[Finding]:
    try:
        ports, source = _ports(outputs)
    except ParseError as exc:
        return [failed(check, f"cannot read InfiniBand state: {exc}") for check in CHECKS]
    layer = expected.link_layer.lower()
    fabric = [p for p in ports if p.link_layer.lower() == layer]
    if expected.hcas:
        fabric = [p for p in fabric if p.hca in expected.hcas]
    if expected.port_count == 0:
        return _none_expected(fabric, expected)
    return [
        _count(fabric, expected, source),
        _state(fabric),
        _rate(fabric, expected),
    ]


def _var(expected: IbExpectations, name: str) -> str:
    return expected.sources.get(name, name)


def _none_expected(fabric: list[ib.IbPort], expected: IbExpectations) -> list[Finding]:
    if fabric:
        count = failed(
            "ib_port_count",
            f"found {len(fabric)} {expected.link_layer} port(s) but the design expects none "
            f"({_var(expected, 'port_count')} is 0 or unset)",
        )
    else:
        count = passed("ib_port_count", f"no {expected.link_layer} ports expected; none found")
    return [count, *(passed(c, "no InfiniBand ports expected") for c in CHECKS[1:])]


def _count(fabric: list[ib.IbPort], expected: IbExpectations, source: str) -> Finding:
    problems = []
    if len(fabric) != expected.port_count:
        problems.append(
            f"{len(fabric)} of {expected.port_count} expected {expected.link_layer} ports " f"(read from {source})"
        )
    absent = sorted(set(expected.hcas) - {p.hca for p in fabric})
    if absent:
        problems.append(f"HCAs missing: {', '.join(absent)}")
    if problems:
        return failed("ib_port_count", "; ".join(problems))
    return passed("ib_port_count", f"{len(fabric)} {expected.link_layer} ports")


def _state(fabric: list[ib.IbPort]) -> Finding:
    if not fabric:
        return failed("ib_port_state", "no port to check")
    down = [p for p in fabric if not p.up]
    if down:
        return failed(
            "ib_port_state",
            "not ACTIVE/LinkUp: " + ", ".join(f"{p.name} {p.state} ({p.phys_state})" for p in down),
        )
    return passed("ib_port_state", f"all {len(fabric)} ports ACTIVE/LinkUp")


def _rate(fabric: list[ib.IbPort], expected: IbExpectations) -> Finding:
    if not fabric:
        return failed("ib_port_rate", "no port to check")
    if expected.rate_gbps is None:
        rates = ", ".join(sorted({p.rate_text for p in fabric}))
        return passed("ib_port_rate", f"{rates} (the design names no rate: {_var(expected, 'rate_gbps')} unset)")
    # Only ports that are up have a meaningful rate; ports that are down fail ib_port_state.
    slow = [p for p in fabric if p.up and p.rate_gbps != float(expected.rate_gbps)]
    if slow:
        return failed(
            "ib_port_rate",
            f"expected {expected.rate_gbps:g} Gb/s: " + ", ".join(f"{p.name} at {p.rate_text}" for p in slow),
        )
    up = sum(p.up for p in fabric)
    return passed("ib_port_rate", f"{up} active ports at {expected.rate_gbps:g} Gb/s")

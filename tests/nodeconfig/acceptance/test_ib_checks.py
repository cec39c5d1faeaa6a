from __future__ import annotations

from dataclasses import replace

from nodeconfig.acceptance.findings import Finding
from nodeconfig.acceptance.ib_checks import CHECKS, IB_PROBES, IbExpectations, ib_findings
from nodeconfig.acceptance.probes import ProbeResult
from tests.nodeconfig.acceptance.fakes import recorded

NDR8 = IbExpectations(port_count=8, rate_gbps=400)


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    assert sorted(f.check for f in findings) == sorted(CHECKS)
    return {f.check: f for f in findings}


def test_healthy_ndr_node_passes() -> None:
    found = by_check(ib_findings(recorded("ib", "hgx-ndr-healthy", IB_PROBES), NDR8))
    assert all(f.ok for f in found.values()), found
    # the Ethernet (RoCE) storage port is not a fabric port
    assert found["ib_port_count"].message == "8 InfiniBand ports"
    assert found["ib_port_rate"].message == "8 active ports at 400 Gb/s"


def test_degraded_ndr_node_names_the_bad_ports() -> None:
    found = by_check(ib_findings(recorded("ib", "hgx-ndr-degraded", IB_PROBES), NDR8))
    assert found["ib_port_count"].ok  # all 8 ports exist
    assert not found["ib_port_state"].ok
    assert found["ib_port_state"].message == "not ACTIVE/LinkUp: mlx5_3/1 DOWN (Polling)"
    assert not found["ib_port_rate"].ok
    assert found["ib_port_rate"].message == "expected 400 Gb/s: mlx5_6/1 at 200 Gb/sec (4X HDR)"


def test_ibstat_is_the_fallback_when_sysfs_is_unreadable() -> None:
    outputs = recorded("ib", "hgx-ndr-degraded", IB_PROBES)
    outputs["sysfs"] = ProbeResult(2, "")
    found = by_check(ib_findings(outputs, NDR8))
    assert found["ib_port_count"].ok
    assert found["ib_port_state"].message == "not ACTIVE/LinkUp: mlx5_3/1 DOWN (Polling)"


def test_missing_ports_fail_the_count() -> None:
    outputs = recorded("ib", "hgx-ndr-healthy", IB_PROBES)
    found = by_check(ib_findings(outputs, replace(NDR8, hcas=("mlx5_0", "mlx5_11"))))
    assert not found["ib_port_count"].ok
    assert "1 of 8 expected InfiniBand ports (read from sysfs)" in found["ib_port_count"].message
    assert "HCAs missing: mlx5_11" in found["ib_port_count"].message


def test_no_hca_passes_when_none_expected() -> None:
    found = by_check(ib_findings(recorded("ib", "no-hca", IB_PROBES), IbExpectations()))
    assert all(f.ok for f in found.values())
    assert found["ib_port_count"].message == "no InfiniBand ports expected; none found"


def test_no_hca_fails_when_ports_expected() -> None:
    found = by_check(ib_findings(recorded("ib", "no-hca", IB_PROBES), NDR8))
    assert not any(f.ok for f in found.values())
    assert found["ib_port_count"].message == "0 of 8 expected InfiniBand ports (read from sysfs)"


def test_ports_where_none_expected_fail() -> None:
    found = by_check(ib_findings(recorded("ib", "hgx-ndr-healthy", IB_PROBES), IbExpectations()))
    assert not found["ib_port_count"].ok and "found 8 InfiniBand port(s)" in found["ib_port_count"].message


def test_roce_design_counts_ethernet_ports() -> None:
    found = by_check(ib_findings(recorded("ib", "hgx-ndr-healthy", IB_PROBES), IbExpectations(1, 200, "Ethernet")))
    assert all(f.ok for f in found.values()), found


def test_rate_unset_reports_what_was_found() -> None:
    found = by_check(ib_findings(recorded("ib", "hgx-ndr-healthy", IB_PROBES), replace(NDR8, rate_gbps=None)))
    assert found["ib_port_rate"].ok and "400 Gb/sec (4X NDR)" in found["ib_port_rate"].message

"""infiniband: the node has the fabric ports its design gives it, each ACTIVE/LinkUp at the
design's rate; RDMA userspace is installed and each fabric interface has its ifupdown snippet.
A node whose design has no fabric port passes with "no InfiniBand ports expected"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodeconfig.acceptance import ib_facts
from nodeconfig.acceptance import os_checks as oc
from nodeconfig.acceptance import perf_facts as pf
from nodeconfig.acceptance.burnin_checks import IB_BURNIN_PROBES, hca_burnin_findings
from nodeconfig.acceptance.expectations import Vars, burnin_expectations, gpu_expectations, ib_expectations
from nodeconfig.acceptance.findings import Finding, failed, passed, select
from nodeconfig.acceptance.ib_checks import IB_PROBES, IbExpectations, ib_findings
from nodeconfig.acceptance.perf_checks import write_bw_findings_from, write_bw_plan
from nodeconfig.acceptance.probes import ParseError, ProbeResult, collect

Conclude = Callable[[list[Finding]], None]


@pytest.fixture(scope="module")
def ib(host: Any, node_vars: Vars) -> list[Finding]:
    return ib_findings(collect(host, IB_PROBES), ib_expectations(node_vars))


def test_ib_port_count(ib: list[Finding], conclude: Conclude) -> None:
    conclude(select(ib, "ib_port_count"))


def test_ib_port_state(ib: list[Finding], conclude: Conclude) -> None:
    conclude(select(ib, "ib_port_state"))


def test_ib_port_rate(ib: list[Finding], conclude: Conclude) -> None:
    conclude(select(ib, "ib_port_rate"))


def test_rdma_packages(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    names = [*node_vars.get_list("infiniband_packages"), *node_vars.get_list("infiniband_extra_packages", [])]
    missing = [n for n in names if not host.package(n).is_installed]
    conclude(oc.missing_findings("rdma_packages", "RDMA packages", missing, len(names)))


def test_fabric_interfaces(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    """Each fabric interface of the design carries its address. Read from the kernel (`ip`), not
    from the role's files, so the check holds whichever network stack the role writes for."""
    interfaces = node_vars.get_list("infiniband_interfaces")
    expects_ports = ib_expectations(node_vars).port_count > 0
    findings: list[Finding] = []
    absent = []
    for iface in interfaces:
        out = host.run(f"ip -o addr show dev {iface['name']}")
        if out.rc != 0:
            absent.append(iface["name"])
        elif f" {iface['address']} " not in f" {out.stdout} ".replace("\n", " "):
            findings.append(failed("fabric_interfaces", f"{iface['name']} lacks {iface['address']}"))
    if absent and expects_ports:
        findings.append(failed("fabric_interfaces", f"fabric interfaces missing: {', '.join(absent)}"))
    if findings:
        conclude(findings)
    elif absent:
        conclude([passed("fabric_interfaces", f"{', '.join(absent)} not present (no fabric port expected)")])
    else:
        conclude([passed("fabric_interfaces", f"{len(interfaces)} fabric interface(s) with their addresses")])


# --- Burn-in evidence (burnin_checks): HCA links and firmware, error counters of the fabric ports,
# and whether a subnet manager has swept each of them ---


@pytest.fixture(scope="module")
def hca(host: Any, node_vars: Vars) -> list[Finding]:
    expected = ib_expectations(node_vars)
    if expected.port_count == 0:
        return hca_burnin_findings({}, expected, burnin_expectations(node_vars), [])
    base = collect(host, IB_PROBES)
    outputs = {**collect(host, IB_BURNIN_PROBES), "ibstat": base["ibstat"]}  # ibstat: the SM check's fallback
    return hca_burnin_findings(outputs, expected, burnin_expectations(node_vars), _fabric_ports(base["sysfs"], expected))


def _fabric_ports(sysfs: ProbeResult, expected: IbExpectations) -> list[str]:
    """`<hca>/<port>` of the design's fabric ports on the node (ib_checks counts the same ones)."""
    try:
        ports = ib_facts.parse_sysfs_ports(sysfs.stdout) if sysfs.rc == 0 else []
    except ParseError:
        ports = []  # ib_port_count reports the unreadable sysfs; counters of every port are judged
    layer = expected.link_layer.lower()
    return [p.name for p in ports if p.link_layer.lower() == layer and (not expected.hcas or p.hca in expected.hcas)]


def test_hca_pcie(hca: list[Finding], conclude: Conclude) -> None:
    conclude(select(hca, "hca_pcie"))


def test_hca_firmware(hca: list[Finding], conclude: Conclude) -> None:
    conclude(select(hca, "hca_firmware"))


def test_ib_counters(hca: list[Finding], conclude: Conclude) -> None:
    conclude(select(hca, "ib_counters"))


def test_subnet_manager(hca: list[Finding], conclude: Conclude) -> None:
    conclude(select(hca, "subnet_manager"))


# --- The functional tier (`sovereign verify --burn-in`) ---


@pytest.mark.burn_in
def test_ib_write_bw(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    """perftest ib_write_bw from GPU memory through each compute rail, a loopback ring over the node's
    own rails (perf_facts explains the pairing), against the platform's per-port floor
    (infiniband_expected_write_bw_gbps, from the catalog)."""
    ib, gpu, expected = ib_expectations(node_vars), gpu_expectations(node_vars), burnin_expectations(node_vars)
    probing = ib.port_count > 0 and gpu.count > 0 and gpu.driver_mode == "host"
    fabric = _fabric_ports(collect(host, {"sysfs": IB_PROBES["sysfs"]})["sysfs"], ib) if probing else []
    hca_pci = collect(host, {"hca_pci": pf.HCA_PCI_PROBE})["hca_pci"] if probing else ProbeResult(0, "")
    plan = write_bw_plan(ib, gpu, expected, fabric, hca_pci)
    result = collect(host, {"write_bw": plan.script})["write_bw"] if plan.script else ProbeResult(0, "")
    conclude(write_bw_findings_from(result, plan, expected))

"""Subnet-manager reachability (sm_facts, wired by burnin_checks) on sysfs and ibstat fixtures
written from the kernel's sysfs ABI and ibstat(8) (tests/fixtures/ib/burnin/README.md: not
recorded from hardware)."""

from __future__ import annotations

from pathlib import Path

from nodeconfig.acceptance import ib_facts
from nodeconfig.acceptance.burnin_checks import BurnInExpectations, hca_burnin_findings
from nodeconfig.acceptance.findings import select
from nodeconfig.acceptance.ib_checks import IbExpectations
from nodeconfig.acceptance.probes import ProbeResult
from nodeconfig.acceptance.sm_facts import subnet_manager_findings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ib"
IB = FIXTURES / "burnin"
FABRIC = [f"mlx5_{i}/1" for i in range(8)]


def ports(name: str) -> list[ib_facts.IbPort]:
    return ib_facts.parse_sysfs_ports((IB / name).read_text())


def test_sysfs_lids_are_hex_and_the_sm_sl_decimal():
    port = ports("sm-healthy.out")[3]
    assert (port.name, port.state, port.lid, port.sm_lid, port.sm_sl) == ("mlx5_3/1", "ACTIVE", 0x24, 1, 0)


def test_the_base_probe_without_sm_attributes_still_parses():
    (port, *_) = ib_facts.parse_sysfs_ports((FIXTURES / "hgx-ndr-healthy" / "sysfs.out").read_text())
    assert port.sm_lid is None and port.state == "ACTIVE"


def test_every_fabric_port_with_an_sm_lid_passes():
    (finding,) = subnet_manager_findings(ports("sm-healthy.out"), FABRIC, "InfiniBand")
    assert finding.ok and finding.message == "8 fabric ports ACTIVE with a subnet manager's LID (SM LID 0x1 for 8 port(s))"


def test_each_way_of_missing_the_subnet_manager_is_named_by_device_and_port():
    (finding,) = subnet_manager_findings(ports("sm-no-sm.out"), FABRIC, "InfiniBand")
    assert not finding.ok
    problems = dict(p.split(": ", 1) for p in finding.message.split("; "))
    assert problems["mlx5_0/1"].startswith("link up but stuck in INIT: no subnet manager has swept the port")
    assert problems["mlx5_5/1"].startswith("physical link Polling")
    assert problems["mlx5_6/1"] == "ACTIVE with SM LID 0x0: no subnet manager answers on this subnet"
    assert problems["mlx5_7/1"] == "ARMED: a subnet manager configured the port but never activated it"
    assert len(problems) == 8


def test_only_the_design_fabric_ports_are_judged():
    (finding,) = subnet_manager_findings(ports("sm-no-sm.out"), ["mlx5_7/1"], "InfiniBand")
    assert not finding.ok and finding.message.startswith("mlx5_7/1: ARMED")
    (finding,) = subnet_manager_findings(ports("sm-healthy.out"), ["mlx5_9/1"], "InfiniBand")
    assert not finding.ok and finding.message == "mlx5_9/1: no state in /sys/class/infiniband"


def test_active_with_lid_zero_fails():
    healthy = ports("sm-healthy.out")[0]
    unassigned = ib_facts.IbPort(**{**healthy.__dict__, "lid": 0})
    (finding,) = subnet_manager_findings([unassigned], ["mlx5_0/1"], "InfiniBand")
    assert not finding.ok and "LID 0x0: the subnet manager assigned the port no address" in finding.message


def test_roce_has_no_subnet_manager():
    (finding,) = subnet_manager_findings([], FABRIC, "Ethernet")
    assert finding.ok and "RoCE" in finding.message


def test_ibstat_is_the_fallback_and_initializing_means_no_sweep():
    cas = ib_facts.parse_ibstat((IB / "ibstat-initializing.out").read_text())
    assert [(p.state, p.lid, p.sm_lid) for ca in cas for p in ca.ports] == [("INITIALIZING", 0, 0)] * 2
    outputs = {
        "hca": ProbeResult(0, (IB / "hca-healthy.out").read_text()),
        "counters": ProbeResult(0, (IB / "counters-healthy.out").read_text()),
        "sm": ProbeResult(2, "", "grep: /sys/class/infiniband/*/ports/*/sm_lid: No such file or directory"),
        "ibstat": ProbeResult(0, (IB / "ibstat-initializing.out").read_text()),
    }
    (finding,) = select(hca_burnin_findings(outputs, IbExpectations(port_count=2), BurnInExpectations(),
                                            ["mlx5_0/1", "mlx5_1/1"]), "subnet_manager")
    assert not finding.ok and finding.message.count("stuck in INIT") == 2
    healthy_ibstat = (FIXTURES / "hgx-ndr-healthy" / "ibstat.out").read_text()
    (finding,) = select(hca_burnin_findings({**outputs, "ibstat": ProbeResult(0, healthy_ibstat)},
                                            IbExpectations(port_count=2), BurnInExpectations(),
                                            ["mlx5_0/1", "mlx5_1/1"]), "subnet_manager")
    assert finding.ok and "SM LID 0x1" in finding.message


def test_nothing_readable_is_a_failure_not_a_pass():
    outputs = {"hca": ProbeResult(0, (IB / "hca-healthy.out").read_text()),
               "counters": ProbeResult(0, (IB / "counters-healthy.out").read_text()),
               "sm": ProbeResult(2, "", "No such file or directory"), "ibstat": ProbeResult(127, "", "")}
    (finding,) = select(hca_burnin_findings(outputs, IbExpectations(port_count=8), BurnInExpectations(), FABRIC),
                        "subnet_manager")
    assert not finding.ok and "cannot read the ports' subnet-manager state" in finding.message
    garbled = {**outputs, "sm": ProbeResult(0, "/sys/class/infiniband/mlx5_0/ports/1/sm_lid:banana\n")}
    (finding,) = select(hca_burnin_findings(garbled, IbExpectations(port_count=8), BurnInExpectations(), FABRIC),
                        "subnet_manager")
    assert not finding.ok and "unreadable output" in finding.message

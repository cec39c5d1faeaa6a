"""Burn-in link evidence (link_facts) and the wired checks (burnin_checks) on fixtures written from
the documented formats of `nvidia-smi nvlink --status`, `lspci -vvv`, sysfs and the IB PortCounters
(tests/fixtures/{gpu,ib}/burnin/README.md: not recorded from hardware)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeconfig.acceptance import link_facts as lf
from nodeconfig.acceptance.burnin_checks import (
    GPU_CHECKS,
    IB_CHECKS,
    BurnInExpectations,
    gpu_burnin_findings,
    hca_burnin_findings,
)
from nodeconfig.acceptance.expectations import Vars, burnin_expectations
from nodeconfig.acceptance.findings import select
from nodeconfig.acceptance.gpu_checks import GpuExpectations
from nodeconfig.acceptance.ib_checks import IbExpectations
from nodeconfig.acceptance.probes import ProbeResult

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GPU = FIXTURES / "gpu" / "burnin"
IB = FIXTURES / "ib" / "burnin"
H100 = BurnInExpectations(nvlinks_per_gpu=18, gpu_pcie_gen=5, gpu_pcie_width=16, hca_pcie_gen=5, hca_pcie_width=16)
FABRIC = [f"mlx5_{i}/1" for i in range(8)]


def ok(result: str) -> ProbeResult:
    return ProbeResult(0, result)


def gpu_outputs(**override: ProbeResult) -> dict[str, ProbeResult]:
    healthy_pcie = "".join(f"00000000:{b}:00.0, 5, 5, 16, 16\n" for b in ("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"))
    outputs = {
        "ecc": ok((GPU / "ecc-healthy.csv").read_text()),
        "pcie": ok(healthy_pcie),
        "xid": ProbeResult(1, ""),  # journalctl --grep: nothing matched
        "nvlink": ok((GPU / "nvlink-healthy.txt").read_text()),
        "pci_paths": ok((GPU / "pci-paths.txt").read_text()),
        "lspci": ok((GPU / "lspci-acs-off.txt").read_text()),
    }
    return {**outputs, **override}


def hca_outputs(**override: ProbeResult) -> dict[str, ProbeResult]:
    return {"hca": ok((IB / "hca-healthy.out").read_text()), "counters": ok((IB / "counters-healthy.out").read_text()),
            "sm": ok((IB / "sm-healthy.out").read_text()), **override}


def test_nvlink_status_parses_per_gpu_links():
    gpus = lf.parse_nvlink_status((GPU / "nvlink-healthy.txt").read_text())
    assert len(gpus) == 8 and all(len(g.links) == 18 and set(g.links.values()) == {26.562} for g in gpus)
    degraded = lf.parse_nvlink_status((GPU / "nvlink-degraded.txt").read_text())
    assert degraded[2].links[7] is None and len(degraded[5].links) == 17


def test_inactive_or_missing_nvlinks_fail_naming_the_gpu():
    (finding,) = lf.nvlink_findings(lf.parse_nvlink_status((GPU / "nvlink-degraded.txt").read_text()), 18)
    assert not finding.ok
    assert finding.message == "GPU 2: link(s) 7, 8 inactive; GPU 5: 17 NVLinks, the platform has 18"


def test_acs_is_judged_on_switch_ports_only():
    paths = lf.parse_pci_paths((GPU / "pci-paths.txt").read_text())
    assert paths["0000:18:00.0"] == ["0000:15:01.0", "0000:16:00.0", "0000:17:00.0"]
    off = lf.parse_acs_control((GPU / "lspci-acs-off.txt").read_text())
    assert off["0000:15:01.0"]["ReqRedir"] is True  # the root port's ACS is on, and allowed
    (finding,) = lf.acs_findings(paths, off, lspci_denied=False)
    assert finding.ok and "6 switch port(s) above 4 GPUs/HCAs" in finding.message
    on = lf.parse_acs_control((GPU / "lspci-acs-on.txt").read_text())
    (finding,) = lf.acs_findings(paths, on, lspci_denied=False)
    assert not finding.ok and finding.message.endswith("0000:99:00.0: SrcValid+ ReqRedir+ CmpltRedir+")


def test_hca_links_and_firmware():
    healthy = lf.parse_hca_sysfs((IB / "hca-healthy.out").read_text())
    assert healthy[0] == lf.HcaLink("mlx5_0", "28.39.1002", 5, 5, 16, 16)
    assert all(f.ok for f in lf.hca_pcie_findings(healthy, 5, 16) + lf.hca_firmware_findings(healthy, "28.39.1002"))
    assert not lf.hca_pcie_findings(healthy, 6, 16)[0].ok  # a Gen6 slot (ConnectX-8) expected
    degraded = lf.parse_hca_sysfs((IB / "hca-degraded.out").read_text())
    (pcie,) = lf.hca_pcie_findings(degraded, 5, 16)
    assert not pcie.ok and pcie.message == "mlx5_5: Gen5 x8 of Gen5 x16"
    (pinned,) = lf.hca_firmware_findings(degraded, "28.39.1002")
    assert not pinned.ok and pinned.message == "expected firmware 28.39.1002: mlx5_3 28.37.1014"
    (mixed,) = lf.hca_firmware_findings(degraded, None)
    assert not mixed.ok and "mixed firmware" in mixed.message


def test_ib_counters_over_ibqueryerrors_thresholds_fail():
    healthy = lf.parse_ib_counters((IB / "counters-healthy.out").read_text())
    assert healthy["mlx5_0/1"]["symbol_error"] == 3
    assert lf.ib_counter_findings(healthy, FABRIC)[0].ok
    (finding,) = lf.ib_counter_findings(lf.parse_ib_counters((IB / "counters-degraded.out").read_text()), FABRIC)
    assert not finding.ok and "mlx5_6/1: symbol_error=5120, link_downed=14" in finding.message


@pytest.mark.parametrize("bad", ["GPU 0: x (UUID: y)\n\t Link 0: fast\n", "\t Link 0: 26.562 GB/s\n"])
def test_unreadable_nvlink_output_is_a_failure_not_a_pass(bad):
    (finding,) = select(gpu_burnin_findings(gpu_outputs(nvlink=ok(bad)), GpuExpectations(count=8), H100), "nvlink")
    assert not finding.ok and "unreadable output" in finding.message


def test_a_healthy_gpu_node_passes_every_burnin_check():
    findings = gpu_burnin_findings(gpu_outputs(), GpuExpectations(count=8), H100)
    assert [f.check for f in findings] == ["pcie_acs", "ecc_errors", "xid", "gpu_pcie", "nvlink"]
    assert all(f.ok and not f.pending for f in findings), findings


def test_a_degraded_gpu_node_fails_where_it_is_degraded():
    findings = gpu_burnin_findings(gpu_outputs(
        ecc=ok((GPU / "ecc-degraded.csv").read_text()),
        pcie=ok((GPU / "pcie-degraded.csv").read_text()),
        xid=ok((GPU / "xid-journal.txt").read_text()),
        nvlink=ok((GPU / "nvlink-degraded.txt").read_text()),
        lspci=ok((GPU / "lspci-acs-on.txt").read_text()),
    ), GpuExpectations(count=8), H100)
    assert {f.check for f in findings if not f.ok} == set(GPU_CHECKS)


def test_operator_mode_before_the_driver_is_pending_but_acs_is_judged():
    missing = ProbeResult(127, "", "nvidia-smi: command not found")
    findings = gpu_burnin_findings(gpu_outputs(ecc=missing, pcie=missing, nvlink=missing),
                                   GpuExpectations(count=8, driver_mode="operator"), H100)
    assert {f.check for f in findings if f.pending} == {"ecc_errors", "xid", "gpu_pcie", "nvlink"}
    assert select(findings, "pcie_acs")[0].ok and not select(findings, "pcie_acs")[0].pending
    host_mode = gpu_burnin_findings(gpu_outputs(ecc=missing), GpuExpectations(count=8), H100)
    assert not select(host_mode, "ecc_errors")[0].ok  # in host mode the role installed the driver


def test_nodes_without_gpus_or_ports_pass_without_probing():
    assert all(f.ok for f in gpu_burnin_findings({}, GpuExpectations(count=0), H100))
    assert all(f.ok for f in hca_burnin_findings({}, IbExpectations(port_count=0), H100, []))


def test_lspci_without_root_is_named():
    denied = (GPU / "lspci-acs-off.txt").read_text().replace(
        "\tCapabilities: [170 v1] Access Control Services", "\tCapabilities: <access denied>")
    (finding,) = select(gpu_burnin_findings(gpu_outputs(lspci=ok(denied)), GpuExpectations(count=8), H100), "pcie_acs")
    assert not finding.ok and "run verify as root" in finding.message


def test_hca_checks_on_the_fabric_ports():
    expected = IbExpectations(port_count=8)
    assert all(f.ok for f in hca_burnin_findings(hca_outputs(), expected, H100, FABRIC))
    findings = hca_burnin_findings(hca_outputs(hca=ok((IB / "hca-degraded.out").read_text()),
                                               counters=ok((IB / "counters-degraded.out").read_text()),
                                               sm=ok((IB / "sm-no-sm.out").read_text())),
                                   expected, BurnInExpectations(hca_pcie_gen=5, hca_firmware="28.39.1002"), FABRIC)
    assert {f.check for f in findings if not f.ok} == set(IB_CHECKS)
    only_two = hca_burnin_findings(hca_outputs(hca=ok((IB / "hca-degraded.out").read_text())), expected,
                                   BurnInExpectations(), ["mlx5_0/1", "mlx5_1/1"])
    assert all(f.ok for f in only_two)  # mlx5_3/5 are not fabric ports here


def test_expectations_come_from_the_roles_variables():
    assert burnin_expectations(Vars({})) == BurnInExpectations()
    v = Vars({"nvidia_host_expected_nvlinks_per_gpu": 18, "infiniband_expected_firmware": "28.39.1002"})
    assert burnin_expectations(v) == BurnInExpectations(nvlinks_per_gpu=18, hca_firmware="28.39.1002")


def test_dcgm_diag_parses_both_top_level_keys_and_names_the_failing_gpu():
    from nodeconfig.acceptance import burnin_facts as bf

    results = bf.parse_dcgm_diag((GPU / "dcgm-diag-r3-pass.json").read_text())
    assert len(results) == 9 + 8 + 16 + 24 and {r.status for r in results} == {"pass", "skip"}
    (finding,) = bf.diag_findings(results)
    assert finding.ok and "(Diagnostic skip)" in finding.message
    (finding,) = bf.diag_findings(bf.parse_dcgm_diag((GPU / "dcgm-diag-r3-fail.json").read_text()))
    assert not finding.ok
    assert finding.message == "Hardware/GPU Memory GPU 3: Error using CUDA API cudaMalloc (2) [GPU 3]"
    with pytest.raises(bf.BurnInParseError):
        bf.parse_dcgm_diag("Error: unable to connect to host engine")

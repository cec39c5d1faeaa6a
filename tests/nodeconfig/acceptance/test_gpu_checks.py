"""The nvidia_host checks against recorded node output: healthy passes, degraded fails for the
right reasons, and a node without GPUs passes only when its design expects none."""

from __future__ import annotations

import re
from dataclasses import replace

from nodeconfig.acceptance.findings import Finding
from nodeconfig.acceptance.gpu_checks import CHECKS, GPU_PROBES, GpuExpectations, gpu_findings
from nodeconfig.acceptance.probes import ProbeResult
from tests.nodeconfig.acceptance.fakes import recorded

HGX_H100 = GpuExpectations(count=8, model="H100 SXM5 80GB", driver_branch="550")


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    assert sorted(f.check for f in findings) == sorted(CHECKS)  # each check exactly once
    return {f.check: f for f in findings}


def test_healthy_hgx_passes_everything() -> None:
    found = by_check(gpu_findings(recorded("gpu", "hgx-h100-healthy", GPU_PROBES), HGX_H100))
    assert all(f.ok for f in found.values()), found
    assert found["gpu_count"].message == "8 GPUs visible to the driver"
    assert "550.90.07" in found["driver"].message and "branch 550" in found["driver"].message
    assert "4 NVSwitches" in found["fabric_manager"].message


def test_degraded_hgx_fails_each_problem_with_its_cause() -> None:
    expected = replace(HGX_H100, driver_branch="570")
    found = by_check(gpu_findings(recorded("gpu", "hgx-h100-degraded", GPU_PROBES), expected))
    assert not found["gpu_count"].ok
    assert "7 of 8 expected GPUs" in found["gpu_count"].message
    assert "0000:9a:00.0 (H100 SXM5 80GB)" in found["gpu_count"].message  # on PCI, lost to the driver
    assert not found["ecc"].ok and "GPU 3 (0000:5d:00.0) (disabled)" in found["ecc"].message
    assert not found["fabric_manager"].ok and "is failed" in found["fabric_manager"].message
    # What is fine on the degraded node stays fine: failures point at the real problems only.
    assert found["persistence"].ok and found["gpu_model"].ok and found["driver"].ok


def test_wrong_driver_branch_fails() -> None:
    found = by_check(
        gpu_findings(recorded("gpu", "hgx-h100-healthy", GPU_PROBES), replace(HGX_H100, driver_branch="570"))
    )
    assert not found["driver"].ok
    assert "branch 550, expected 570" in found["driver"].message


def test_pinned_driver_version() -> None:
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    assert by_check(gpu_findings(outputs, replace(HGX_H100, driver_version="550.90.07")))["driver"].ok
    assert not by_check(gpu_findings(outputs, replace(HGX_H100, driver_version="550.127.05")))["driver"].ok


def test_wrong_model_fails() -> None:
    found = by_check(gpu_findings(recorded("gpu", "hgx-h100-healthy", GPU_PROBES), replace(HGX_H100, model="H200")))
    assert not found["gpu_model"].ok and "GPU 0 (0000:18:00.0) is NVIDIA H100 80GB HBM3" in found["gpu_model"].message


def test_kernel_module_and_nvml_disagree() -> None:
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    outputs["driver_version"] = ProbeResult(
        0, "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.127.05  Tue Oct  8 2024\n"
    )
    found = by_check(gpu_findings(outputs, HGX_H100))
    assert (
        not found["driver"].ok
        and "kernel module 550.127.05 but nvidia-smi reports 550.90.07" in found["driver"].message
    )


def test_node_without_gpus_passes_when_none_expected() -> None:
    found = by_check(gpu_findings(recorded("gpu", "no-gpu", GPU_PROBES), GpuExpectations(count=0)))
    assert all(f.ok for f in found.values()), found
    assert found["gpu_count"].message == "no GPUs expected; none on the PCI bus"
    assert {f.message for c, f in found.items() if c != "gpu_count"} == {"no GPUs expected"}


def test_node_without_gpus_fails_when_the_design_expects_them() -> None:
    found = by_check(gpu_findings(recorded("gpu", "no-gpu", GPU_PROBES), HGX_H100))
    assert not any(f.ok for c, f in found.items() if c != "fabric_manager"), found
    assert "expected 8 GPUs; nvidia-smi is not installed; 0 GPU(s) on the PCI bus" == found["gpu_count"].message
    assert "kernel module is not loaded" in found["driver"].message


def test_gpus_found_where_none_are_expected_fails() -> None:
    found = by_check(gpu_findings(recorded("gpu", "hgx-h100-healthy", GPU_PROBES), GpuExpectations(count=0)))
    assert not found["gpu_count"].ok and "found 8 GPU(s) (H100 SXM5 80GB)" in found["gpu_count"].message
    # NVSwitches are present, so Fabric Manager is still required (and is active here).
    assert found["fabric_manager"].ok


def test_fabric_manager_disabled_on_an_nvswitch_system_fails() -> None:
    found = by_check(
        gpu_findings(recorded("gpu", "hgx-h100-healthy", GPU_PROBES), replace(HGX_H100, fabric_manager=False))
    )
    assert not found["fabric_manager"].ok and "4 NVSwitch(es)" in found["fabric_manager"].message


def test_fabric_manager_required_by_design_without_visible_nvswitch() -> None:
    # Blackwell HGX NVSwitches are not on the host PCI bus: the design's word is what counts.
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    outputs["pci"] = ProbeResult(
        0, "\n".join(ln for ln in outputs["pci"].stdout.splitlines() if "0x22a3" not in ln and "/0000:0" not in ln)
    )
    outputs["fabricmanager"] = ProbeResult(3, "inactive\n")
    found = by_check(gpu_findings(outputs, replace(HGX_H100, fabric_manager=True)))
    assert not found["fabric_manager"].ok
    assert "inactive" in found["fabric_manager"].message and "is true" in found["fabric_manager"].message


def test_smi_failure_is_reported_with_its_text() -> None:
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    outputs["smi"] = ProbeResult(9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n")
    found = by_check(gpu_findings(outputs, HGX_H100))
    assert not found["gpu_count"].ok and "couldn't communicate" in found["gpu_count"].message
    assert "8 GPU(s) on the PCI bus" in found["gpu_count"].message


def test_undocumented_probe_output_fails_every_check() -> None:
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    outputs["pci"] = ProbeResult(0, "/sys/bus/pci/devices/0000:18:00.0/vendor:nonsense\n")
    found = by_check(gpu_findings(outputs, HGX_H100))
    assert not any(f.ok for f in found.values())


def test_ecc_and_persistence_can_be_waived_by_design() -> None:
    outputs = recorded("gpu", "hgx-h100-degraded", GPU_PROBES)
    found = by_check(gpu_findings(outputs, replace(HGX_H100, ecc=False, sources={"ecc": "nvidia_host_ecc_enabled"})))
    assert found["ecc"].ok and "nvidia_host_ecc_enabled is false" in found["ecc"].message


def test_probes_are_read_only_commands() -> None:
    # The suite runs against production nodes: nothing it runs may change them.
    from nodeconfig.acceptance.ib_checks import IB_PROBES

    for command in [*GPU_PROBES.values(), *IB_PROBES.values()]:
        assert not re.search(r">(?!\s*/dev/null|&\d)|\b(rm|restart|stop|start|reset)\b| -pm | -e ", command), command


def test_untrained_nvlink_fabric_fails_even_with_the_service_active() -> None:
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    outputs["smi_details"] = recorded("gpu", "hgx-h100-degraded", GPU_PROBES)["smi_details"]
    found = by_check(gpu_findings(outputs, HGX_H100))
    assert not found["fabric_manager"].ok
    assert "NVLink fabric not ready on 0000:18:00.0 (Not Started/N/A)" in found["fabric_manager"].message


def test_healthy_fabric_is_reported() -> None:
    found = by_check(gpu_findings(recorded("gpu", "hgx-h100-healthy", GPU_PROBES), HGX_H100))
    assert found["fabric_manager"].message == (
        "nvidia-fabricmanager active (4 NVSwitches on the PCI bus); fabric Completed on 8 GPUs"
    )


OPERATOR = replace(HGX_H100, driver_mode="operator", sources={"driver_mode": "nvidia_host_driver_mode"})


def test_operator_mode_before_the_operator_checks_the_hardware_only() -> None:
    # GPUs on the bus, no driver anywhere yet: the state right after `configure` in operator mode.
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    for probe in ("smi", "smi_details"):
        outputs[probe] = ProbeResult(127, "", "nvidia-smi: not found")
    outputs["driver_version"] = ProbeResult(1, "")
    outputs["gpu_information"] = ProbeResult(2, "")
    outputs["fabricmanager"] = ProbeResult(3, "inactive\n")
    found = by_check(gpu_findings(outputs, OPERATOR))
    assert all(f.ok for f in found.values()), found
    # What needs the driver is pending, not passed; the hardware is checked now.
    assert {c for c, f in found.items() if f.pending} == {"driver", "ecc", "persistence", "fabric_manager"}
    assert found["gpu_count"].message.startswith("8 GPUs on the PCI bus (no driver loaded yet")
    assert found["gpu_model"].message == "8x H100 SXM5 80GB (from PCI ids)"
    assert "nvidia_host_driver_mode is operator" in found["ecc"].message
    # ... but the hardware is still held to the design
    assert not by_check(gpu_findings(outputs, replace(OPERATOR, count=4)))["gpu_count"].ok
    assert not by_check(gpu_findings(outputs, replace(OPERATOR, model="B200")))["gpu_model"].ok


def test_operator_mode_with_its_driver_checks_everything_but_the_host_service() -> None:
    outputs = recorded("gpu", "hgx-h100-healthy", GPU_PROBES)
    outputs["fabricmanager"] = ProbeResult(4, "inactive\n")  # runs in the driver container
    found = by_check(gpu_findings(outputs, OPERATOR))
    assert all(f.ok and not f.pending for f in found.values()), found
    outputs["smi_details"] = ProbeResult(0, "")
    assert "reports no fabric state" in by_check(gpu_findings(outputs, OPERATOR))["fabric_manager"].message

"""nvidia_host: the GPUs the design puts in this node are visible to the driver, are the right
model, run the pinned driver branch with ECC and persistence mode on, NVSwitch systems have a
trained NVLink fabric, nouveau is kept away, and (host mode) the GPU services run. A node whose
design has no GPU passes with "no GPUs expected". In operator mode, before the GPU Operator has
loaded its driver, only the hardware is checked (see gpu_checks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodeconfig.acceptance import burnin_facts as bf
from nodeconfig.acceptance import os_checks as oc
from nodeconfig.acceptance import perf_facts as pf
from nodeconfig.acceptance.burnin_checks import GPU_BURNIN_PROBES, gpu_burnin_findings
from nodeconfig.acceptance.expectations import Vars, burnin_expectations, gpu_expectations
from nodeconfig.acceptance.findings import Finding, failed, passed, select
from nodeconfig.acceptance.gpu_checks import GPU_PROBES, gpu_findings
from nodeconfig.acceptance.perf_checks import all_reduce_findings_from
from nodeconfig.acceptance.probes import ProbeResult, collect

Conclude = Callable[[list[Finding]], None]


@pytest.fixture(scope="module")
def gpu(host: Any, node_vars: Vars) -> list[Finding]:
    return gpu_findings(collect(host, GPU_PROBES), gpu_expectations(node_vars))


def test_gpu_count(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "gpu_count"))


def test_gpu_model(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "gpu_model"))


def test_driver(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "driver"))


def test_ecc(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "ecc"))


def test_persistence(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "persistence"))


def test_fabric_manager(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "fabric_manager"))


def test_nouveau_blacklisted(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    expected = gpu_expectations(node_vars)
    if expected.count == 0 or not node_vars.get_bool("nvidia_host_blacklist_nouveau", True):
        conclude([passed("nouveau", "no GPUs expected" if expected.count == 0 else "not required by the design")])
        return
    path = node_vars.get_str("__nvidia_host_nouveau_file")
    findings = oc.lines_findings(
        "nouveau", path, host.file(path).content_string if host.file(path).exists else None, ["blacklist nouveau"]
    )
    # /proc/modules lists loaded modules without needing kmod installed.
    if host.run("grep -qw ^nouveau /proc/modules").rc == 0:
        findings.append(failed("nouveau", "the nouveau module is loaded (reboot after blacklisting?)"))
    conclude(findings)


def test_host_services(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    """Host mode: persistenced and DCGM as systemd services (fabric manager: test_fabric_manager)."""
    expected = gpu_expectations(node_vars)
    if expected.count == 0:
        conclude([passed("host_services", "no GPUs expected")])
        return
    if expected.driver_mode != "host":
        # dcgm-exporter embeds its own host engine in operator mode; a second one on the host
        # fights it for the GPUs' DCGM state.
        if host.run("pgrep -x nv-hostengine").rc == 0:
            conclude([failed("host_services", "nv-hostengine runs on the host in operator mode: it conflicts with the "
                             "GPU Operator's dcgm-exporter; stop and disable nvidia-dcgm")])
        else:
            conclude([passed("host_services", "operator mode: the GPU Operator runs the GPU services in containers")])
        return
    names = [node_vars.get_str("__nvidia_host_persistenced_service")]
    if node_vars.get_bool("nvidia_host_dcgm_enabled"):
        names.append(node_vars.get_str("__nvidia_host_dcgm_service"))
    down = [n for n in names if not (host.service(n).is_running and host.service(n).is_enabled)]
    if down:
        conclude([failed("host_services", f"not running and enabled: {', '.join(down)}")])
    else:
        conclude([passed("host_services", f"{', '.join(names)} running")])


# --- Burn-in evidence (burnin_checks): read-only, from what the node has logged and trained ---


@pytest.fixture(scope="module")
def burnin(host: Any, node_vars: Vars) -> list[Finding]:
    expected = gpu_expectations(node_vars)
    outputs = collect(host, GPU_BURNIN_PROBES) if expected.count else {}
    return gpu_burnin_findings(outputs, expected, burnin_expectations(node_vars))


def test_ecc_errors(burnin: list[Finding], conclude: Conclude) -> None:
    conclude(select(burnin, "ecc_errors"))


def test_xid(burnin: list[Finding], conclude: Conclude) -> None:
    conclude(select(burnin, "xid"))


def test_gpu_pcie(burnin: list[Finding], conclude: Conclude) -> None:
    conclude(select(burnin, "gpu_pcie"))


def test_nvlink(burnin: list[Finding], conclude: Conclude) -> None:
    conclude(select(burnin, "nvlink"))


def test_pcie_acs(burnin: list[Finding], conclude: Conclude) -> None:
    conclude(select(burnin, "pcie_acs"))


# --- The functional tier (`sovereign verify --burn-in`) ---


@pytest.mark.burn_in
def test_dcgm_diag(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    """DCGM's level-3 diagnostic (memory, PCIe bandwidth, targeted stress and power) on every GPU."""
    expected = gpu_expectations(node_vars)
    if expected.count == 0:
        conclude([passed("dcgm_diag", "no GPUs expected")])
        return
    out = collect(host, {"diag": bf.DIAG_PROBE})["diag"]
    if out.missing:
        conclude([failed("dcgm_diag", "dcgmi is not installed (DCGM: nvidia_host_dcgm_enabled, or the GPU Operator's)")])
        return
    try:
        conclude(bf.diag_findings(bf.parse_dcgm_diag(out.stdout)))
    except bf.BurnInParseError as exc:
        conclude([failed("dcgm_diag", f"exit status {out.rc}: {exc}")])


@pytest.mark.burn_in
def test_all_reduce_bw(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    """nccl-tests all_reduce_perf over all the node's GPUs (1-8 GiB), its mean bus bandwidth against
    the platform's floor (nvidia_host_expected_all_reduce_gbytes_per_s, from the catalog)."""
    gpu = gpu_expectations(node_vars)
    expected = burnin_expectations(node_vars)
    if gpu.count == 0:
        result = ProbeResult(0, "")
    else:
        result = collect(host, {"all_reduce": pf.all_reduce_command(expected.all_reduce_perf, gpu.count)})["all_reduce"]
    conclude(all_reduce_findings_from(result, gpu, expected))

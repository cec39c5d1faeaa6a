"""The burn-in gate's evidence, as findings from raw probe output: for GPU nodes ECC and row
remapping, Xid errors since boot, GPU PCIe links, NVLinks and ACS on the GPU/HCA paths; for fabric
ports HCA PCIe links, HCA firmware, IB error counters and subnet-manager reachability. Pure, like
gpu_checks and ib_checks.

A node whose design has no GPU (or no fabric port) passes with "none expected" without probing.
In operator mode, before the GPU Operator has installed a driver, nvidia-smi is absent: its
checks are pending, not passed; the PCIe ACS check needs no driver and always runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from nodeconfig.acceptance import burnin_facts as bf
from nodeconfig.acceptance import ib_facts, sm_facts
from nodeconfig.acceptance import link_facts as lf
from nodeconfig.acceptance.findings import Finding, failed, passed, pending
from nodeconfig.acceptance.gpu_checks import GpuExpectations
from nodeconfig.acceptance.ib_checks import IbExpectations
from nodeconfig.acceptance.probes import ParseError, ProbeResult

_PCI_CLASSES = "0x10de:0x0302*|0x10de:0x0300*|0x15b3:0x0207*|0x15b3:0x0200*"  # NVIDIA GPUs, ConnectX IB/Ethernet
GPU_BURNIN_PROBES: dict[str, str] = {
    **bf.PROBES,
    "nvlink": "nvidia-smi nvlink --status",
    "pci_paths": (
        "for d in /sys/bus/pci/devices/*; do case \"$(cat $d/vendor):$(cat $d/class)\" in "
        f"{_PCI_CLASSES}) echo \"${{d##*/}} $(readlink -f $d)\";; esac; done; true"
    ),
    "lspci": "lspci -vvv -D",
}
IB_BURNIN_PROBES: dict[str, str] = {
    "hca": "grep -H . " + " ".join(f"/sys/class/infiniband/*/{name}" for name in lf.HCA_SYSFS_FILES),
    "counters": "grep -H . " + " ".join(f"/sys/class/infiniband/*/ports/*/counters/{n}" for n in lf.IB_COUNTER_THRESHOLDS),
    # The port state with the subnet manager's view of it; `ibstat` (ib_checks.IB_PROBES) is the fallback.
    "sm": "grep -H . " + " ".join(f"{ib_facts.IB_SYSFS_DIR}*/ports/*/{a}"
                                  for a in (*ib_facts.IB_PORT_ATTRS, *ib_facts.IB_SM_ATTRS)),
}
GPU_CHECKS = ("ecc_errors", "xid", "gpu_pcie", "nvlink", "pcie_acs")
IB_CHECKS = ("hca_pcie", "hca_firmware", "ib_counters", sm_facts.CHECK)


@dataclass(frozen=True)
class BurnInExpectations:
    """The platform's link figures (inventory, from the catalog); None: no constraint."""

    nvlinks_per_gpu: int | None = None
    gpu_pcie_gen: int | None = None
    gpu_pcie_width: int | None = None
    hca_pcie_gen: int | None = None
    hca_pcie_width: int | None = None
    hca_firmware: str | None = None
    # The functional tier (`verify --burn-in`): floors from the platform's figures, the tools to run
    # and how GPU memory is registered with the HCAs (nvidia_host_gpudirect_rdma).
    all_reduce_gbytes: float | None = None
    write_bw_gbps: float | None = None
    all_reduce_perf: str = "all_reduce_perf"
    ib_write_bw: str = "ib_write_bw"
    gpudirect: str = "dmabuf"
    rails: dict[str, int] = field(default_factory=dict)  # compute port's PCI address -> rail (the GPU beside it)
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def gpu_burnin_findings(
    outputs: Mapping[str, ProbeResult], gpu: GpuExpectations, expected: BurnInExpectations
) -> list[Finding]:
    if gpu.count == 0:
        return [passed(c, "no GPUs expected") for c in GPU_CHECKS]
    findings = _acs(outputs)
    smi = outputs["ecc"]
    if smi.missing or smi.rc != 0:
        why = (smi.stderr.strip() or smi.stdout.strip() or f"exit status {smi.rc}").splitlines()[0]
        for check in GPU_CHECKS[:4]:
            if gpu.driver_mode == "operator" and smi.missing:
                findings.append(pending(check, "operator mode: no nvidia-smi until the GPU Operator installs the driver"))
            else:
                findings.append(failed(check, f"nvidia-smi failed: {why}"))
        return findings
    findings += _parsed("ecc_errors", lambda: bf.ecc_findings(bf.parse_ecc(smi.stdout)))
    xid = outputs["xid"]
    # journalctl --grep exits 1 when nothing matches: no Xid line is the healthy answer.
    if xid.rc not in (0, 1):
        findings.append(failed("xid", f"cannot read the kernel log: {xid.stderr.strip() or xid.rc}"))
    else:
        findings += bf.xid_findings(bf.parse_xids(xid.stdout))
    findings += _parsed("gpu_pcie", lambda: bf.pcie_findings(
        bf.parse_pcie(outputs["pcie"].stdout), expected.gpu_pcie_gen, expected.gpu_pcie_width), rename="pcie")
    nvlink = outputs["nvlink"]
    if nvlink.rc != 0:
        findings.append(failed("nvlink", f"nvidia-smi nvlink failed: {nvlink.stderr.strip() or nvlink.rc}"))
    else:
        findings += _parsed("nvlink", lambda: lf.nvlink_findings(lf.parse_nvlink_status(nvlink.stdout), expected.nvlinks_per_gpu))
    return findings


def hca_burnin_findings(
    outputs: Mapping[str, ProbeResult], ib: IbExpectations, expected: BurnInExpectations, fabric_ports: list[str]
) -> list[Finding]:
    """`fabric_ports`: `<hca>/<port>` of the ports ib_checks counted (the design's link layer)."""
    if ib.port_count == 0:
        return [passed(c, "no fabric ports expected") for c in IB_CHECKS]
    hca = outputs["hca"]
    others = [*_counters(outputs, fabric_ports), *_subnet_manager(outputs, fabric_ports, ib.link_layer)]
    if hca.rc != 0:
        return [*(failed(c, f"cannot read /sys/class/infiniband: {hca.stderr.strip() or hca.rc}") for c in IB_CHECKS[:2]),
                *others]
    try:
        links = lf.parse_hca_sysfs(hca.stdout)
    except lf.LinkParseError as exc:
        return [*(failed(c, f"unreadable output: {exc}") for c in IB_CHECKS[:2]), *others]
    fabric_hcas = {p.split("/", 1)[0] for p in fabric_ports}
    links = [x for x in links if x.hca in fabric_hcas] if fabric_hcas else links
    return [
        *lf.hca_pcie_findings(links, expected.hca_pcie_gen, expected.hca_pcie_width),
        *lf.hca_firmware_findings(links, expected.hca_firmware),
        *others,
    ]


def _subnet_manager(outputs: Mapping[str, ProbeResult], fabric_ports: list[str], link_layer: str) -> list[Finding]:
    """sysfs first (needs nothing installed), then ibstat, as ib_checks reads the port state."""
    sysfs, stat = outputs.get("sm"), outputs.get("ibstat")
    try:
        if sysfs is not None and sysfs.rc == 0 and sysfs.stdout.strip():
            ports = ib_facts.parse_sysfs_ports(sysfs.stdout)
        elif stat is not None and stat.rc == 0 and stat.stdout.strip():
            ports = [p for ca in ib_facts.parse_ibstat(stat.stdout) for p in ca.ports]
        else:
            why = (sysfs.stderr.strip() if sysfs is not None else "") or "no output"
            return [failed(sm_facts.CHECK, f"cannot read the ports' subnet-manager state from sysfs or ibstat: {why}")]
    except ParseError as exc:
        return [failed(sm_facts.CHECK, f"unreadable output: {exc}")]
    return sm_facts.subnet_manager_findings(ports, fabric_ports, link_layer)


def _counters(outputs: Mapping[str, ProbeResult], fabric_ports: list[str]) -> list[Finding]:
    result = outputs["counters"]
    if result.rc != 0:
        return [failed("ib_counters", f"cannot read the port counters: {result.stderr.strip() or result.rc}")]
    return _parsed("ib_counters", lambda: lf.ib_counter_findings(lf.parse_ib_counters(result.stdout), fabric_ports))


def _acs(outputs: Mapping[str, ProbeResult]) -> list[Finding]:
    lspci = outputs["lspci"]
    if lspci.missing:
        return [failed("pcie_acs", "lspci is not installed (pciutils)")]
    denied = "<access denied>" in lspci.stdout
    return _parsed("pcie_acs", lambda: lf.acs_findings(
        lf.parse_pci_paths(outputs["pci_paths"].stdout), lf.parse_acs_control(lspci.stdout), denied))


def _parsed(check: str, compute: Callable[[], list[Finding]], rename: str | None = None) -> list[Finding]:
    """A parser's complaint becomes this check's failure, quoting the output it could not read."""
    try:
        found = compute()
    except (bf.BurnInParseError, lf.LinkParseError) as exc:
        return [failed(check, f"unreadable output: {exc}")]
    if rename:  # burnin_facts names its PCIe finding "pcie"; here the GPU's is told from the HCA's
        found = [Finding(check, f.ok, f.message, f.pending) if f.check == rename else f for f in found]
    return found

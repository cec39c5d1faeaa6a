"""What the nvidia_host role promises about a GPU node, as findings computed from raw probe output.

`gpu_findings(outputs, expected)` is pure: the acceptance tests call it with what `GPU_PROBES`
printed on a node, the unit tests with recorded fixtures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nodeconfig.acceptance import gpu_facts as gf
from nodeconfig.acceptance.findings import Finding, failed, passed
from nodeconfig.acceptance.findings import pending as pending_finding
from nodeconfig.acceptance.probes import ParseError, ProbeResult

# One round trip each; all read-only. The PCI loop keeps only NVIDIA functions (a server has
# hundreds of PCI devices) and prints them in `grep -H` form, which parse_pci_dump reads.
GPU_PROBES: dict[str, str] = {
    "smi": gf.SMI_QUERY,
    "driver_version": "cat /proc/driver/nvidia/version",
    "gpu_information": f"grep -H . {gf.GPU_INFORMATION_DIR}*/information",
    "pci": (
        f"for d in {gf.PCI_DIR}*; do grep -qx 0x10de $d/vendor 2>/dev/null"
        " && grep -H . $d/vendor $d/device $d/class; done; true"
    ),
    "fabricmanager": "systemctl is-active nvidia-fabricmanager",
    "smi_details": gf.SMI_DETAILS,  # read for the NVLink fabric state of each GPU
}

CHECKS = ("gpu_count", "gpu_model", "driver", "ecc", "persistence", "fabric_manager")


@dataclass(frozen=True)
class GpuExpectations:
    count: int = 0  # 0: the design puts no GPU in this node
    model: str | None = None  # family, PCI name or NVML name; see gpu_facts.model_matches
    driver_branch: str | None = None  # "550"
    driver_version: str | None = None  # exact "550.90.07", when the design pins one
    ecc: bool = True
    persistence: bool = True
    # The platform profile (nvidia_host_nvswitch): HGX boards need Fabric Manager even where their
    # NVSwitches are not on the host's PCI bus (B200). None ("auto"): required when NVSwitches show.
    fabric_manager: bool | None = None
    # host: the role installs driver, persistenced and fabric manager; operator: the GPU Operator
    # brings them later, in containers, so until it has, only the hardware can be checked.
    driver_mode: str = "host"
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # field -> var name


@dataclass
class _Observed:
    gpus: list[gf.SmiGpu] | None  # None: nvidia-smi gave no usable answer (see smi_error)
    smi_error: str | None
    pci: list[gf.PciDevice]
    information: list[gf.GpuInformation]
    driver: gf.DriverVersion | None
    driver_error: str | None
    fabric_manager: str  # systemctl's word: active, inactive, failed, ...
    fabric: dict[str, gf.FabricState]  # per GPU bus, from nvidia-smi -q; empty when not reported

    @property
    def pci_gpus(self) -> list[gf.PciDevice]:
        return [d for d in self.pci if d.is_gpu]

    @property
    def nvswitches(self) -> list[gf.PciDevice]:
        return [d for d in self.pci if d.is_nvswitch]

    def pci_at(self, bus: str) -> gf.PciDevice | None:
        return next((d for d in self.pci if d.bus == bus), None)


def _first_line(result: ProbeResult) -> str:
    text = (result.stdout.strip() or result.stderr.strip()).splitlines()
    return text[0] if text else f"exit status {result.rc}"


def _observe(outputs: Mapping[str, ProbeResult]) -> _Observed:
    smi = outputs["smi"]
    gpus: list[gf.SmiGpu] | None = None
    smi_error = None
    if smi.missing:
        smi_error = "nvidia-smi is not installed"
    elif smi.rc != 0:
        smi_error = f"nvidia-smi failed: {_first_line(smi)}"
    else:
        try:
            gpus = gf.parse_smi_query(smi.stdout)
        except ParseError as exc:
            smi_error = str(exc)

    version = outputs["driver_version"]
    driver = None
    driver_error = None
    if version.rc != 0:
        driver_error = "the NVIDIA kernel module is not loaded (no /proc/driver/nvidia/version)"
    else:
        try:
            driver = gf.parse_driver_version(version.stdout)
        except ParseError as exc:
            driver_error = str(exc)

    # Missing procfs/sysfs entries mean "none", which grep reports with a non-zero status.
    info = outputs["gpu_information"]
    pci = outputs["pci"]
    details = outputs.get("smi_details")
    return _Observed(
        gpus=gpus,
        smi_error=smi_error,
        pci=gf.parse_pci_dump(pci.stdout) if pci.rc == 0 else [],
        information=gf.parse_gpu_information_dump(info.stdout) if info.stdout else [],
        driver=driver,
        driver_error=driver_error,
        fabric_manager=(outputs["fabricmanager"].stdout.strip().splitlines() or ["unknown"])[0],
        fabric=gf.parse_smi_fabric(details.stdout) if details is not None and details.rc == 0 else {},
    )


def gpu_findings(outputs: Mapping[str, ProbeResult], expected: GpuExpectations) -> list[Finding]:
    """Findings for every check in CHECKS, from the raw output of GPU_PROBES."""
    try:
        seen = _observe(outputs)
    except ParseError as exc:  # a probe printed something undocumented: every check is unknown
        return [failed(check, f"cannot read GPU state: {exc}") for check in CHECKS]
    if expected.count == 0:
        return _none_expected(seen, expected)
    if expected.driver_mode == "operator" and seen.gpus is None and seen.driver is None:
        return _operator_pending(seen, expected)
    return [
        _count(seen, expected),
        *_per_gpu(seen, expected),
        _driver(seen, expected),
        _fabric_manager(seen, expected),
    ]


def _var(expected: GpuExpectations, name: str) -> str:
    return expected.sources.get(name, name)


def _none_expected(seen: _Observed, expected: GpuExpectations) -> list[Finding]:
    found = max(len(seen.pci_gpus), len(seen.gpus or []))
    if found:
        labels = ", ".join(sorted({d.label for d in seen.pci_gpus})) or "NVIDIA GPU"
        count = failed(
            "gpu_count",
            f"found {found} GPU(s) ({labels}) but the design expects none "
            f"({_var(expected, 'count')} is 0 or unset)",
        )
    else:
        count = passed("gpu_count", "no GPUs expected; none on the PCI bus")
    rest = [passed(check, "no GPUs expected") for check in ("gpu_model", "ecc", "persistence", "driver")]
    return [count, *rest, _fabric_manager(seen, expected)]


def _operator_pending(seen: _Observed, expected: GpuExpectations) -> list[Finding]:
    """Operator mode before the GPU Operator runs: no driver yet, by design. The hardware is
    checked from the PCI bus; the driver's properties wait for the operator's driver."""
    pending = f"no driver loaded yet: the GPU Operator provides it ({_var(expected, 'driver_mode')} is operator)"
    found = seen.pci_gpus
    if len(found) != expected.count:
        count = failed("gpu_count", f"{len(found)} of {expected.count} expected GPUs on the PCI bus ({pending})")
    else:
        count = passed("gpu_count", f"{len(found)} GPUs on the PCI bus ({pending})")
    if expected.model is None:
        model = passed("gpu_model", f"{', '.join(sorted({d.label for d in found}))} (the design names no model)")
    else:
        wrong = [d for d in found if not gf.model_matches(expected.model, "", d)]
        model = (
            failed("gpu_model", f"expected {expected.model}: " + ", ".join(f"{d.bus} is {d.label}" for d in wrong))
            if wrong
            else passed("gpu_model", f"{len(found)}x {', '.join(sorted({d.label for d in found}))} (from PCI ids)")
        )
    return [count, model, *(pending_finding(c, pending) for c in ("driver", "ecc", "persistence", "fabric_manager"))]


def _count(seen: _Observed, expected: GpuExpectations) -> Finding:
    want = expected.count
    if seen.gpus is None:
        return failed(
            "gpu_count",
            f"expected {want} GPUs; {seen.smi_error}; {len(seen.pci_gpus)} GPU(s) on the PCI bus",
        )
    problems = []
    if len(seen.gpus) != want:
        problems.append(f"{len(seen.gpus)} of {want} expected GPUs visible to the driver")
    visible = {g.bus for g in seen.gpus}
    lost = [d for d in seen.pci_gpus if d.bus not in visible]
    if lost:
        problems.append(
            "on the PCI bus but not visible to the driver: " + ", ".join(f"{d.bus} ({d.label})" for d in lost)
        )
    excluded = [i.bus for i in seen.information if i.excluded]
    if excluded:
        problems.append(f"excluded by the driver: {', '.join(excluded)}")
    if problems:
        return failed("gpu_count", "; ".join(problems))
    return passed("gpu_count", f"{want} GPUs visible to the driver")


def _per_gpu(seen: _Observed, expected: GpuExpectations) -> list[Finding]:
    if seen.gpus is None:
        return [failed(check, seen.smi_error or "") for check in ("gpu_model", "ecc", "persistence")]
    if not seen.gpus:
        return [failed(check, "no GPU visible to the driver") for check in ("gpu_model", "ecc", "persistence")]
    return [_model(seen, expected), _ecc(seen, expected), _persistence(seen, expected)]


def _gpu(g: gf.SmiGpu) -> str:
    return f"GPU {g.index} ({g.bus})"


def _model(seen: _Observed, expected: GpuExpectations) -> Finding:
    gpus = seen.gpus or []
    names = sorted({g.name for g in gpus})
    if expected.model is None:
        return passed("gpu_model", f"{', '.join(names)} (the design names no model: {_var(expected, 'model')} unset)")
    wrong = [g for g in gpus if not gf.model_matches(expected.model, g.name, seen.pci_at(g.bus))]
    if wrong:
        found = ", ".join(f"{_gpu(g)} is {g.name}" for g in wrong)
        return failed("gpu_model", f"expected {expected.model}: {found}")
    return passed("gpu_model", f"{len(gpus)}x {', '.join(names)}")


def _ecc(seen: _Observed, expected: GpuExpectations) -> Finding:
    if not expected.ecc:
        return passed("ecc", f"ECC not required ({_var(expected, 'ecc')} is false)")
    off = [g for g in seen.gpus or [] if g.ecc_enabled is not True]
    if off:
        return failed(
            "ecc",
            "ECC not enabled on "
            + ", ".join(f"{_gpu(g)} ({'disabled' if g.ecc_enabled is False else 'N/A'})" for g in off),
        )
    return passed("ecc", f"ECC enabled on all {len(seen.gpus or [])} GPUs")


def _persistence(seen: _Observed, expected: GpuExpectations) -> Finding:
    if not expected.persistence:
        return passed("persistence", f"persistence mode not required ({_var(expected, 'persistence')} is false)")
    off = [g for g in seen.gpus or [] if g.persistence_enabled is not True]
    if off:
        return failed("persistence", "persistence mode off on " + ", ".join(_gpu(g) for g in off))
    return passed("persistence", f"persistence mode on for all {len(seen.gpus or [])} GPUs")


def _driver(seen: _Observed, expected: GpuExpectations) -> Finding:
    if seen.driver is None:
        return failed("driver", seen.driver_error or "")
    kernel = seen.driver.version
    problems = []
    user = sorted({g.driver_version for g in seen.gpus or []})
    if user and user != [kernel]:
        # NVML from one release against a kernel module from another: CUDA fails to initialise.
        problems.append(f"kernel module {kernel} but nvidia-smi reports {', '.join(user)} (reboot pending?)")
    if expected.driver_branch and seen.driver.branch != str(expected.driver_branch):
        problems.append(f"driver {kernel} is on branch {seen.driver.branch}, expected {expected.driver_branch}")
    if expected.driver_version and kernel != str(expected.driver_version):
        problems.append(f"driver {kernel}, expected {expected.driver_version}")
    if problems:
        return failed("driver", "; ".join(problems))
    flavour = "open" if seen.driver.open_module else "proprietary"
    pinned = f"branch {expected.driver_branch}" if expected.driver_branch else "no branch pinned"
    return passed("driver", f"driver {kernel} ({flavour} kernel module; {pinned})")


def _fabric_manager(seen: _Observed, expected: GpuExpectations) -> Finding:
    """Fabric Manager configures NVSwitch routing; without it, NVLink-connected GPUs on HGX
    boards do not initialise for CUDA. Required when the design says so or NVSwitches show.

    Proof that it worked is each GPU's fabric state (Completed/Success in `nvidia-smi -q`). In host
    mode the role also runs it as a systemd service; in operator mode it runs in the driver
    container, so the service is not looked at."""
    switches = len(seen.nvswitches)
    var = _var(expected, "fabric_manager")
    if expected.count == 0 and not switches:  # the platform's profile is the site's, not this node's
        return passed("fabric_manager", "no GPUs expected")
    if expected.fabric_manager is False and switches:
        return failed("fabric_manager", f"{switches} NVSwitch(es) on the PCI bus but {var} is false")
    required = expected.fabric_manager or bool(switches)
    if not required:
        if expected.count == 0:
            return passed("fabric_manager", "no GPUs expected")
        return passed("fabric_manager", f"not required (no NVSwitch on the PCI bus; service {seen.fabric_manager})")
    why = f"{switches} NVSwitches on the PCI bus" if switches else f"{var} is true"
    problems = []
    if expected.driver_mode == "host" and seen.fabric_manager != "active":
        problems.append(f"nvidia-fabricmanager is {seen.fabric_manager}")
    untrained = {bus: st for bus, st in seen.fabric.items() if not st.ready}
    if untrained:
        problems.append(
            "NVLink fabric not ready on "
            + ", ".join(f"{bus} ({st.state}/{st.status})" for bus, st in sorted(untrained.items()))
        )
    if expected.driver_mode != "host" and not seen.fabric:
        problems.append("nvidia-smi -q reports no fabric state to confirm it")
    if problems:
        return failed("fabric_manager", f"{'; '.join(problems)}; required ({why})")
    trained = f"; fabric Completed on {len(seen.fabric)} GPUs" if seen.fabric else ""
    service = "nvidia-fabricmanager active" if expected.driver_mode == "host" else "fabric manager (operator)"
    return passed("fabric_manager", f"{service} ({why}){trained}")

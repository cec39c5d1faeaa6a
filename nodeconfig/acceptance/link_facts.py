"""Burn-in evidence about links: NVLink per GPU, PCIe ACS on the GPU/HCA paths, HCA PCIe links and
firmware, InfiniBand error counters. Parsers and judgements only (pure), like burnin_facts.

Formats, as their tools document them (fixtures in tests/fixtures/*/burnin/ are written from these,
not recorded from hardware):
- `nvidia-smi nvlink --status`: a `GPU <i>: <name> (UUID: <uuid>)` line, then one
  `Link <n>: <speed> GB/s` line per NVLink, `<inactive>` for a link that did not train;
- `lspci -vvv -D` (as root: capabilities are hidden from other users): one block per function,
  `ACSCtl:` listing each ACS control bit as `Name+` (on) or `Name-` (off);
- sysfs: `/sys/bus/pci/devices/<bdf>` links into `/sys/devices/pci<dom>:<bus>/<root port>/.../<bdf>`,
  so the functions on the way are the bridges a device's traffic crosses; `/sys/class/infiniband/
  <hca>/fw_ver`, `device/{current,max}_link_{speed,width}` ("32.0 GT/s PCIe", "16"), and
  `ports/<n>/counters/<name>` (the IB PortCounters).

Why ACS matters (NCCL troubleshooting guide, "PCI Access Control Services"): with ACS on, a PCIe
switch redirects peer-to-peer traffic up to the root complex, which cuts GPUDirect RDMA and P2P
bandwidth or breaks it; on bare metal it must be off on the switches between GPUs and NICs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nodeconfig.acceptance.findings import Finding, failed, passed

_BDF = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")
_GPU_LINE = re.compile(r"^GPU (\d+): (.*?) \(UUID: ([^)]+)\)\s*$")
_LINK_LINE = re.compile(r"^\s*Link (\d+): (.+?)\s*$")
# PCIe transfer rate -> generation (PCI-SIG: 2.5, 5, 8, 16, 32, 64 GT/s for Gen1-Gen6)
_GENERATIONS = {"2.5": 1, "5.0": 2, "8.0": 3, "16.0": 4, "32.0": 5, "64.0": 6}
# infiniband-diags' `ibqueryerrors` default thresholds (its error_thresholds): at or above one of
# these a port is reported as erroneous; link_downed and integrity errors mean a flapping cable.
IB_COUNTER_THRESHOLDS: dict[str, int] = {
    "symbol_error": 10,
    "link_error_recovery": 10,
    "link_downed": 10,
    "port_rcv_errors": 10,
    "port_rcv_remote_physical_errors": 100,
    "port_xmit_discards": 100,
    "local_link_integrity_errors": 10,
    "excessive_buffer_overrun_errors": 10,
}
HCA_SYSFS_FILES = ("fw_ver", "device/current_link_speed", "device/current_link_width",
                   "device/max_link_speed", "device/max_link_width")


class LinkParseError(ValueError):
    """Output that the documented format does not allow; the message quotes it."""


@dataclass(frozen=True)
class NvLinkGpu:
    index: int
    name: str
    links: dict[int, float | None]  # link -> GB/s; None: <inactive>


@dataclass(frozen=True)
class HcaLink:
    hca: str
    firmware: str
    gen_current: int
    gen_max: int
    width_current: int
    width_max: int


def parse_nvlink_status(text: str) -> list[NvLinkGpu]:
    gpus: list[NvLinkGpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        header = _GPU_LINE.match(line)
        if header:
            gpus.append(NvLinkGpu(int(header.group(1)), header.group(2), {}))
            continue
        link = _LINK_LINE.match(line)
        if not link or not gpus:
            raise LinkParseError(f"unexpected line in `nvidia-smi nvlink --status`: {line.strip()!r}")
        value = link.group(2)
        if value == "<inactive>":
            gpus[-1].links[int(link.group(1))] = None
        else:
            speed = re.fullmatch(r"([\d.]+) GB/s", value)
            if not speed:
                raise LinkParseError(f"link {link.group(1)} of GPU {gpus[-1].index}: {value!r} is not '<n> GB/s' or <inactive>")
            gpus[-1].links[int(link.group(1))] = float(speed.group(1))
    return gpus


def nvlink_findings(gpus: list[NvLinkGpu], expected_links: int | None) -> list[Finding]:
    """Every GPU's NVLinks trained; as many per GPU as the platform has, when it says."""
    if not gpus:
        return [failed("nvlink", "nvidia-smi reported no GPU with NVLinks")]
    problems = []
    for gpu in gpus:
        down = sorted(n for n, speed in gpu.links.items() if speed is None)
        if down:
            problems.append(f"GPU {gpu.index}: link(s) {', '.join(map(str, down))} inactive")
        if expected_links and len(gpu.links) != expected_links:
            problems.append(f"GPU {gpu.index}: {len(gpu.links)} NVLinks, the platform has {expected_links}")
    if problems:
        return [failed("nvlink", "; ".join(problems))]
    per_gpu = {len(g.links) for g in gpus}
    return [passed("nvlink", f"{len(gpus)} GPUs, {'/'.join(map(str, sorted(per_gpu)))} NVLinks each, all active")]


def parse_pci_paths(text: str) -> dict[str, list[str]]:
    """`<bdf> <resolved sysfs path>` lines -> device -> the PCI functions above it, root port first."""
    paths: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not _BDF.match(parts[0]):
            raise LinkParseError(f"expected '<pci address> <sysfs path>', got {line.strip()!r}")
        device, path = parts
        chain = [c for c in path.split("/") if _BDF.match(c)]
        if not chain or chain[-1] != device:
            raise LinkParseError(f"{device}: sysfs path {path!r} does not end at the device")
        paths[device] = chain[:-1]
    return paths


def parse_acs_control(text: str) -> dict[str, dict[str, bool]]:
    """`lspci -vvv -D` -> function -> ACS control bits, for functions that have the capability."""
    controls: dict[str, dict[str, bool]] = {}
    current: str | None = None
    for line in text.splitlines():
        first = line.split(" ", 1)[0]
        if line and not line[0].isspace() and _BDF.match(first):
            current = first.lower()
        elif current and line.strip().startswith("ACSCtl:"):
            flags = line.split(":", 1)[1].split()
            if not flags or any(f[-1] not in "+-" for f in flags):
                raise LinkParseError(f"{current}: ACSCtl {line.strip()!r} is not a list of Name+/Name- flags")
            controls[current] = {f[:-1]: f.endswith("+") for f in flags}
    return controls


def acs_findings(paths: Mapping[str, list[str]], controls: Mapping[str, dict[str, bool]], lspci_denied: bool) -> list[Finding]:
    """ACS off on every switch port between the root port and each GPU or HCA. The root port is
    left out: traffic that crosses it goes through the CPU anyway (NCCL disables P2P there)."""
    if not paths:
        return [failed("pcie_acs", "no GPU or HCA found on the PCI bus")]
    if lspci_denied:
        return [failed("pcie_acs", "lspci could not read PCI capabilities: run verify as root")]
    switch_ports = sorted({b.lower() for chain in paths.values() for b in chain[1:]})
    enabled = {b: [name for name, on in controls[b].items() if on] for b in switch_ports if b in controls}
    enabled = {b: names for b, names in enabled.items() if names}
    if enabled:
        shown = "; ".join(f"{b}: {' '.join(n + '+' for n in names)}" for b, names in sorted(enabled.items()))
        return [failed("pcie_acs", f"ACS on along GPU/HCA paths (P2P and GPUDirect go through the CPU): {shown}")]
    return [passed("pcie_acs", f"ACS off on the {len(switch_ports)} switch port(s) above {len(paths)} GPUs/HCAs")]


def _grep_h(text: str, root: str) -> dict[str, str]:
    """`grep -H . <files>` -> path -> value. These sysfs paths hold no ':', so the first one ends it."""
    values = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(root) or ":" not in line:
            raise LinkParseError(f"expected '{root}...:<value>', got {line.strip()!r}")
        path, value = line.split(":", 1)
        values[path] = value.strip()
    return values


def _generation(speed: str, where: str) -> int:
    rate = speed.split(" ", 1)[0]
    if rate not in _GENERATIONS:
        raise LinkParseError(f"{where}: {speed!r} is not a PCIe rate (2.5 ... 64.0 GT/s)")
    return _GENERATIONS[rate]


def parse_hca_sysfs(text: str, root: str = "/sys/class/infiniband/") -> list[HcaLink]:
    values = _grep_h(text, root)
    hcas = sorted({p[len(root):].split("/", 1)[0] for p in values})
    links = []
    for hca in hcas:
        def get(name: str, hca: str = hca) -> str:
            path = f"{root}{hca}/{name}"
            if path not in values:
                raise LinkParseError(f"{hca}: {name} missing from the sysfs dump")
            return values[path]

        widths = (get("device/current_link_width"), get("device/max_link_width"))
        if not all(w.isdigit() for w in widths):
            raise LinkParseError(f"{hca}: link width {widths} is not a number of lanes")
        links.append(HcaLink(
            hca, get("fw_ver"),
            _generation(get("device/current_link_speed"), hca), _generation(get("device/max_link_speed"), hca),
            int(widths[0]), int(widths[1]),
        ))  # fmt: skip
    return links


def hca_pcie_findings(links: Iterable[HcaLink], expected_gen: int | None, expected_width: int | None) -> list[Finding]:
    """An HCA must run at its slot's full width and the generation it trained to at most; the
    platform's figures, when given, say what the slot must offer (CX7: Gen5 x16)."""
    problems = []
    items = list(links)
    for link in items:
        if link.width_current < link.width_max or link.gen_current < link.gen_max:
            problems.append(f"{link.hca}: Gen{link.gen_current} x{link.width_current} of Gen{link.gen_max} x{link.width_max}")
        if expected_gen and link.gen_max < expected_gen:
            problems.append(f"{link.hca}: Gen{link.gen_max}, the platform expects Gen{expected_gen}")
        if expected_width and link.width_max < expected_width:
            problems.append(f"{link.hca}: x{link.width_max}, the platform expects x{expected_width}")
    if not items:
        return [failed("hca_pcie", "no HCA in /sys/class/infiniband")]
    if problems:
        return [failed("hca_pcie", "; ".join(problems))]
    gens = sorted({f"Gen{x.gen_current} x{x.width_current}" for x in items})
    return [passed("hca_pcie", f"{len(items)} HCAs at full link ({', '.join(gens)})")]


def hca_firmware_findings(links: Iterable[HcaLink], expected: str | None) -> list[Finding]:
    """The design's firmware version on every HCA; without one, at least one version on all."""
    items = list(links)
    if not items:
        return [failed("hca_firmware", "no HCA in /sys/class/infiniband")]
    versions = {x.firmware for x in items}
    if expected:
        wrong = [f"{x.hca} {x.firmware}" for x in items if x.firmware != expected]
        if wrong:
            return [failed("hca_firmware", f"expected firmware {expected}: {', '.join(wrong)}")]
        return [passed("hca_firmware", f"{len(items)} HCAs on firmware {expected}")]
    if len(versions) > 1:
        shown = ", ".join(f"{x.hca} {x.firmware}" for x in items)
        return [failed("hca_firmware", f"mixed firmware on one node ({shown}); the design pins none")]
    return [passed("hca_firmware", f"{len(items)} HCAs on firmware {versions.pop()} (the design pins none)")]


def parse_ib_counters(text: str, root: str = "/sys/class/infiniband/") -> dict[str, dict[str, int]]:
    """`<hca>/<port>` -> counter -> value."""
    counters: dict[str, dict[str, int]] = {}
    for path, value in _grep_h(text, root).items():
        parts = path[len(root):].split("/")
        if len(parts) != 5 or parts[1] != "ports" or parts[3] != "counters":
            raise LinkParseError(f"{path}: not <hca>/ports/<n>/counters/<name>")
        if not value.isdigit():
            raise LinkParseError(f"{path}: {value!r} is not a counter")
        counters.setdefault(f"{parts[0]}/{parts[2]}", {})[parts[4]] = int(value)
    return counters


def ib_counter_findings(counters: Mapping[str, dict[str, int]], ports: Iterable[str]) -> list[Finding]:
    """Error counters of the fabric ports (`<hca>/<port>`) under ibqueryerrors' thresholds."""
    wanted = sorted(ports)
    if not wanted:
        return [passed("ib_counters", "no fabric port to read")]
    problems = []
    for port in wanted:
        values = counters.get(port)
        if values is None:
            problems.append(f"{port}: no counters")
            continue
        over = [f"{n}={values[n]}" for n, limit in IB_COUNTER_THRESHOLDS.items() if values.get(n, 0) >= limit]
        if over:
            problems.append(f"{port}: {', '.join(over)}")
    if problems:
        return [failed("ib_counters", "error counters at or over ibqueryerrors' thresholds: " + "; ".join(problems))]
    return [passed("ib_counters", f"{len(wanted)} fabric ports under the error thresholds")]

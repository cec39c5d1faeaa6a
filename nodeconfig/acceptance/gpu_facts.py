"""Pure parsers for what an NVIDIA GPU node reports about itself. No I/O here.

Sources, and why each is read:
- `nvidia-smi --query-gpu=... --format=csv,noheader`: what the driver (NVML) sees and its modes.
- `/proc/driver/nvidia/version`: the loaded kernel module; differs from NVML's version after an
  upgrade without reboot, which breaks CUDA — so both are read and compared.
- `/proc/driver/nvidia/gpus/<bus>/information`: per GPU as the kernel module sees it, including
  GPUs excluded from use.
- PCI sysfs (vendor/device/class): what is physically on the bus, independent of any driver, so a
  GPU that fell off the driver is still counted, and NVSwitches (which need Fabric Manager) show.

Output formats follow NVIDIA's nvidia-smi(1) manual and the driver's procfs files as published in
public bug reports and tooling; they were not re-recorded on hardware for this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nodeconfig.acceptance.probes import ParseError, split_grep_h

NVIDIA_VENDOR = 0x10DE

# The query nvidia-smi is asked; parse_smi_query relies on this field order.
SMI_QUERY_FIELDS = (
    "index",
    "name",
    "uuid",
    "driver_version",
    "ecc.mode.current",
    "persistence_mode",
    "pci.bus_id",
)
# The GPU Operator runs the driver in a container whose root it mounts at /run/nvidia/driver; a
# host without its own nvidia-smi uses that one. 127 (not found) when neither exists.
DRIVER_ROOT = "/run/nvidia/driver"


def smi_command(args: str) -> str:
    return (
        f"if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi {args};"
        f" elif [ -x {DRIVER_ROOT}/usr/bin/nvidia-smi ]; then chroot {DRIVER_ROOT} nvidia-smi {args};"
        " else echo 'nvidia-smi: not found' >&2; exit 127; fi"
    )


SMI_QUERY = smi_command(f"--query-gpu={','.join(SMI_QUERY_FIELDS)} --format=csv,noheader")
SMI_DETAILS = smi_command("-q")

# PCI class (base class << 8 | subclass): GPUs enumerate as 3D controller (0x0302) in compute
# nodes, or VGA (0x0300) on some boards; HGX Hopper NVSwitches as "other bridge" (0x0680).
CLASS_VGA = 0x0300
CLASS_3D = 0x0302
CLASS_OTHER_BRIDGE = 0x0680


@dataclass(frozen=True)
class PciModel:
    family: str  # the GPU family: "H100", "B200"
    name: str  # the PCI ID database's name for this device id
    aliases: tuple[str, ...] = ()  # names stacks/design/catalog.py uses for the same part


# Device ids from the public PCI ID database (https://pci-ids.ucw.cz/read/PC/10de) and NVIDIA's
# gpu-admin-tools (gpu/devid_names.py). Only data-centre parts this project deploys, plus the
# NVSwitch generation that is visible on the host PCI bus (HGX H100/H200). Blackwell HGX
# NVSwitches sit behind ConnectX bridges and do not appear as 10de devices.
PCI_MODELS: dict[int, PciModel] = {
    0x20B0: PciModel("A100", "A100 SXM4 40GB"),
    0x20B2: PciModel("A100", "A100 SXM4 80GB"),
    0x20B5: PciModel("A100", "A100 PCIe 80GB"),
    0x2321: PciModel("H100", "H100 NVL 94GB"),
    0x2322: PciModel("H800", "H800 PCIe"),
    0x2324: PciModel("H800", "H800 SXM5"),
    0x2330: PciModel("H100", "H100 SXM5 80GB"),
    0x2331: PciModel("H100", "H100 PCIe"),
    0x2335: PciModel("H200", "H200 SXM 141GB", ("H200 SXM5 141GB",)),
    0x233B: PciModel("H200", "H200 NVL"),
    0x2342: PciModel("GH200", "GH200 120GB / 480GB"),
    0x2901: PciModel("B200", "B200", ("B200 180GB",)),
    0x2941: PciModel("GB200", "GB200", ("B200 (Grace Blackwell superchip)",)),
    0x31C2: PciModel("GB300", "GB300"),
}
NVSWITCH_DEVICES: dict[int, str] = {
    0x1AF1: "A100 NVSwitch",
    0x22A3: "H100 NVSwitch",
}


@dataclass(frozen=True)
class SmiGpu:
    index: int
    name: str
    uuid: str
    driver_version: str
    ecc_enabled: bool | None  # None: the GPU reports N/A (no ECC support, or not readable)
    persistence_enabled: bool | None
    bus: str  # normalised PCI address, "0000:18:00.0"


@dataclass(frozen=True)
class DriverVersion:
    version: str  # "550.90.07"
    open_module: bool  # the open GPU kernel modules (required for Blackwell)

    @property
    def branch(self) -> str:
        return driver_branch(self.version)


@dataclass(frozen=True)
class GpuInformation:
    bus: str
    model: str
    uuid: str | None
    minor: int | None
    excluded: bool


@dataclass(frozen=True)
class PciDevice:
    bus: str
    vendor: int
    device: int
    pci_class: int  # full 24-bit class code from sysfs, e.g. 0x030200

    @property
    def is_gpu(self) -> bool:
        return self.vendor == NVIDIA_VENDOR and self.pci_class >> 8 in (CLASS_3D, CLASS_VGA)

    @property
    def is_nvswitch(self) -> bool:
        return self.vendor == NVIDIA_VENDOR and (
            self.device in NVSWITCH_DEVICES or self.pci_class >> 8 == CLASS_OTHER_BRIDGE
        )

    @property
    def model(self) -> PciModel | None:
        return PCI_MODELS.get(self.device) if self.vendor == NVIDIA_VENDOR else None

    @property
    def label(self) -> str:
        model = self.model
        return model.name if model else f"10de:{self.device:04x}"


def driver_branch(version: str) -> str:
    """NVIDIA names driver branches by the major number: 550.90.07 is on branch 550."""
    return version.split(".", 1)[0]


def normalize_bus(bus_id: str) -> str:
    """nvidia-smi prints an 8-digit domain (00000000:18:00.0), sysfs a 4-digit one; compare
    them as sysfs writes them, lower case."""
    match = re.fullmatch(r"([0-9A-Fa-f]+):([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})\.([0-7])", bus_id.strip())
    if not match:
        raise ParseError(f"not a PCI address: {bus_id!r}")
    domain, bus, dev, fn = match.groups()
    return f"{int(domain, 16):04x}:{bus.lower()}:{dev.lower()}.{fn}"


def _flag(value: str) -> bool | None:
    value = value.strip()
    if value == "Enabled":
        return True
    if value == "Disabled":
        return False
    return None  # "[N/A]", "N/A", "[Not Supported]"


def parse_smi_query(text: str) -> list[SmiGpu]:
    """Parse the CSV that SMI_QUERY prints, one GPU per line.

    No output at all means no GPUs. Any line that is not a 7-field record — for instance
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" — is an
    error, not an absent GPU.
    """
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(SMI_QUERY_FIELDS):
            # A GPU name never contains a comma in NVML's naming, so a wrong count is garbage.
            raise ParseError(f"unexpected nvidia-smi output: {line.strip()!r}")
        index, name, uuid, version, ecc, persistence, bus = fields
        if not index.isdigit():
            raise ParseError(f"unexpected nvidia-smi output: {line.strip()!r}")
        gpus.append(
            SmiGpu(
                index=int(index),
                name=name,
                uuid=uuid,
                driver_version=version,
                ecc_enabled=_flag(ecc),
                persistence_enabled=_flag(persistence),
                bus=normalize_bus(bus),
            )
        )
    return gpus


_NVRM = re.compile(r"NVRM version:.*?(Open )?Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class FabricState:
    state: str  # "Completed" once Fabric Manager trained the GPU's NVLinks; "N/A" without NVSwitch
    status: str  # "Success", or the error

    @property
    def ready(self) -> bool:
        return self.state == "Completed" and self.status == "Success"


def parse_smi_fabric(text: str) -> dict[str, FabricState]:
    """Per GPU, the "Fabric" section of `nvidia-smi -q` (drivers 530+ on NVSwitch systems):

        GPU 00000000:18:00.0
            ...
            Fabric
                State                             : Completed
                Status                            : Success

    GPUs without the section are absent from the result (older drivers, no NVSwitch support).
    """
    result: dict[str, FabricState] = {}
    bus: str | None = None
    fabric_indent: int | None = None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if stripped.startswith("GPU ") and indent == 0:
            bus, fabric_indent, fields = normalize_bus(stripped[4:]), None, {}
            continue
        if fabric_indent is not None and stripped and indent <= fabric_indent:
            fabric_indent = None  # the Fabric section ended
        if bus is not None and stripped == "Fabric":
            fabric_indent, fields = indent, {}
        elif fabric_indent is not None and ":" in stripped:
            key, _, value = stripped.partition(":")
            fields[key.strip()] = value.strip()
            if "State" in fields and "Status" in fields:
                result[bus] = FabricState(fields["State"], fields["Status"])  # type: ignore[index]
    return result


def parse_driver_version(text: str) -> DriverVersion:
    """Parse /proc/driver/nvidia/version, e.g.
    `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.07  Fri May 31 09:35:42 UTC 2024` or
    `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  (...)`."""
    match = _NVRM.search(text)
    if not match:
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise ParseError(f"no NVRM version line in /proc/driver/nvidia/version: {first!r}")
    return DriverVersion(version=match.group(2), open_module=bool(match.group(1)))


def parse_gpu_information(text: str, bus: str | None = None) -> GpuInformation:
    """Parse one /proc/driver/nvidia/gpus/<bus>/information file ("Key: <tabs> value" lines)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    location = fields.get("Bus Location") or bus
    if not location or "Model" not in fields:
        raise ParseError(f"GPU information without Model or Bus Location: {text[:80]!r}")
    minor = fields.get("Device Minor", "")
    return GpuInformation(
        bus=normalize_bus(location),
        model=fields["Model"],
        uuid=fields.get("GPU UUID"),
        minor=int(minor) if minor.isdigit() else None,
        excluded=fields.get("GPU Excluded", "No") == "Yes",
    )


GPU_INFORMATION_DIR = "/proc/driver/nvidia/gpus/"


def parse_gpu_information_dump(text: str) -> list[GpuInformation]:
    """Parse `grep -H . /proc/driver/nvidia/gpus/*/information` (all GPUs in one read)."""
    files = split_grep_h(text, GPU_INFORMATION_DIR, ("information",))
    infos = []
    for path, lines in sorted(files.items()):
        bus = path[len(GPU_INFORMATION_DIR) :].split("/", 1)[0]
        infos.append(parse_gpu_information("\n".join(lines), bus=bus))
    return infos


PCI_DIR = "/sys/bus/pci/devices/"


def parse_pci_dump(text: str) -> list[PciDevice]:
    """Parse `grep -H . <dev>/vendor <dev>/device <dev>/class` for PCI devices in sysfs.

    Values are hex strings as sysfs writes them ("0x10de", "0x2330", "0x030200").
    """
    attrs: dict[str, dict[str, int]] = {}
    for path, lines in split_grep_h(text, PCI_DIR, ("vendor", "device", "class")).items():
        bus, _, attr = path[len(PCI_DIR) :].partition("/")
        try:
            attrs.setdefault(bus, {})[attr] = int(lines[0].strip(), 16)
        except ValueError as exc:
            raise ParseError(f"{path}: not a hex value: {lines[0]!r}") from exc
    devices = []
    for bus, values in sorted(attrs.items()):
        if {"vendor", "device", "class"} - values.keys():
            raise ParseError(f"{PCI_DIR}{bus}: vendor, device and class must all be readable")
        devices.append(PciDevice(normalize_bus(bus), values["vendor"], values["device"], values["class"]))
    return devices


def _norm_model(name: str) -> str:
    name = " ".join(name.lower().split())
    return name.removeprefix("nvidia ")


def model_matches(expected: str, smi_name: str, pci: PciDevice | None) -> bool:
    """Whether a GPU is the model the design asks for.

    The design may name the family ("H100"), the PCI database name ("H100 SXM5 80GB") or NVML's
    product name ("NVIDIA H100 80GB HBM3"); any of them must match exactly (case and the
    "NVIDIA " prefix aside). No substring matching: "H100" must not match "H100 NVL" by accident
    of spelling — only because both are the H100 family, which is what "H100" asks for.
    """
    want = _norm_model(expected)
    names = {_norm_model(smi_name)}
    if pci is not None and pci.model is not None:
        model = pci.model
        names |= {_norm_model(n) for n in (model.family, model.name, *model.aliases)}
    return want in names

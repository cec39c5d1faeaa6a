"""A server's inventory as its BMC reports it (Redfish documents), and the check against the design.

Pure: documents come through a `fetch(path) -> dict` callable (the provider passes sushy's
connector; the tests pass recorded documents shaped like the DMTF public mockups), so the parsing
and the check are tested without a BMC. GPUs are counted from the system's Processors
(`ProcessorType: GPU`, as Redfish 2019.4+ BMCs report them) and, where a BMC lists them only as
PCIe devices, from PCIeDevices whose functions are display/3D controllers of a GPU vendor. A BMC
that exposes neither (the lab's emulator, older firmware) reports `gpus: None`: unknown is not zero,
so the check then only records it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

Fetch = Callable[[str], dict[str, Any]]

# PCI class 0x03 (display controller); NVIDIA and AMD vendor ids.
_GPU_VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD"}


class InventoryMismatch(ValueError):
    """The server is not the design's platform; the message names the server and what differs."""


@dataclass(frozen=True)
class Inventory:
    manufacturer: str | None
    model: str | None
    serial: str | None
    cpus: int | None
    memory_gib: float | None
    gpus: int | None  # None: the BMC does not expose GPUs
    gpu_models: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpu_models"] = list(self.gpu_models)
        return data


def _members(fetch: Fetch, document: dict[str, Any], key: str) -> list[dict[str, Any]] | None:
    link = document.get(key, {}).get("@odata.id") if isinstance(document.get(key), dict) else None
    if not link:
        return None
    collection = fetch(link)
    return [fetch(m["@odata.id"]) for m in collection.get("Members", [])]


def read_inventory(fetch: Fetch, system_path: str) -> Inventory:
    system = fetch(system_path)
    processors = _members(fetch, system, "Processors")
    gpu_models: list[str] = []
    cpus = system.get("ProcessorSummary", {}).get("Count")
    if processors is not None:
        gpu_models = [str(p.get("Model") or p.get("Name") or "GPU") for p in processors if p.get("ProcessorType") == "GPU"]
        if cpus is None:
            cpus = sum(1 for p in processors if p.get("ProcessorType") == "CPU") or None
    if not gpu_models:
        gpu_models = _pcie_gpus(fetch, system)
    memory = system.get("MemorySummary", {}).get("TotalSystemMemoryGiB")
    exposed = processors is not None and any(p.get("ProcessorType") == "GPU" for p in processors)
    exposed = exposed or bool(gpu_models) or "PCIeDevices" in system
    return Inventory(
        manufacturer=system.get("Manufacturer"),
        model=system.get("Model"),
        serial=system.get("SerialNumber"),
        cpus=cpus,
        memory_gib=memory,
        gpus=len(gpu_models) if exposed else None,
        gpu_models=tuple(gpu_models),
    )


def _pcie_gpus(fetch: Fetch, system: dict[str, Any]) -> list[str]:
    devices = system.get("PCIeDevices")
    if not isinstance(devices, list):  # a link list in ComputerSystem < 1.14, a collection after
        devices = [{"@odata.id": m["@odata.id"]} for m in fetch(devices["@odata.id"]).get("Members", [])] \
            if isinstance(devices, dict) else []
    found = []
    for link in devices:
        device = fetch(link["@odata.id"])
        functions = device.get("PCIeFunctions") or device.get("Links", {}).get("PCIeFunctions") or []
        if isinstance(functions, dict):
            functions = fetch(functions["@odata.id"]).get("Members", [])
        for ref in functions:
            function = fetch(ref["@odata.id"])
            vendor = str(function.get("VendorId", "")).lower()
            if function.get("DeviceClass") == "DisplayController" and vendor in _GPU_VENDORS:
                found.append(str(device.get("Model") or device.get("Name") or _GPU_VENDORS[vendor]))
                break
    return found


def check_inventory(server: str, inventory: Inventory, *, gpu_model: str, gpus: int) -> None:
    """Raise InventoryMismatch when the BMC's GPUs are not the design's (count or model)."""
    if inventory.gpus is None:
        return
    problems = []
    if inventory.gpus != gpus:
        problems.append(f"{inventory.gpus} GPUs, the design's platform has {gpus} per server")
    # The design names the GPU ("H200 SXM5 141GB"); BMCs say "NVIDIA H200" or "NVIDIA H200 SXM5":
    # the model token must appear in what each GPU reports.
    token = gpu_model.split()[0].lower()
    wrong = sorted({m for m in inventory.gpu_models if token not in m.lower()})
    if wrong:
        problems.append(f"GPU model {', '.join(wrong)}, the design's platform has {gpu_model}")
    if problems:
        raise InventoryMismatch(f"server {server}: the BMC reports {'; '.join(problems)}")

from __future__ import annotations

import pytest

from nodeconfig.acceptance import gpu_facts as gf
from nodeconfig.acceptance.probes import ParseError
from tests.nodeconfig.acceptance.fakes import FIXTURES

HEALTHY = FIXTURES / "gpu" / "hgx-h100-healthy"
DEGRADED = FIXTURES / "gpu" / "hgx-h100-degraded"


def test_smi_query_healthy_hgx() -> None:
    gpus = gf.parse_smi_query((HEALTHY / "smi.out").read_text())
    assert [g.index for g in gpus] == list(range(8))
    first = gpus[0]
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.uuid == "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"
    assert first.driver_version == "550.90.07"
    assert first.ecc_enabled is True and first.persistence_enabled is True
    assert first.bus == "0000:18:00.0"  # 8-digit domain and upper case normalised to sysfs form
    assert gpus[7].bus == "0000:db:00.0"


def test_smi_query_degraded_has_seven_gpus_one_without_ecc() -> None:
    gpus = gf.parse_smi_query((DEGRADED / "smi.out").read_text())
    assert len(gpus) == 7
    assert "0000:9a:00.0" not in {g.bus for g in gpus}
    assert [g.index for g in gpus if g.ecc_enabled is False] == [3]


def test_smi_query_not_applicable_fields_are_none() -> None:
    line = "0, NVIDIA L4, GPU-1, 550.90.07, [N/A], [Not Supported], 00000000:01:00.0\n"
    (gpu,) = gf.parse_smi_query(line)
    assert gpu.ecc_enabled is None and gpu.persistence_enabled is None


def test_smi_query_empty_means_no_gpu() -> None:
    assert gf.parse_smi_query("") == []


@pytest.mark.parametrize(
    "text",
    [
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.",
        "No devices were found",
        "x, NVIDIA H100, GPU-1, 550.90.07, Enabled, Enabled, 00000000:18:00.0",
    ],
)
def test_smi_query_error_text_is_an_error_not_zero_gpus(text: str) -> None:
    with pytest.raises(ParseError, match="unexpected nvidia-smi output"):
        gf.parse_smi_query(text)


def test_driver_version_proprietary_and_open() -> None:
    prop = gf.parse_driver_version((HEALTHY / "driver_version.out").read_text())
    assert (prop.version, prop.branch, prop.open_module) == ("550.90.07", "550", False)
    open_ = gf.parse_driver_version((DEGRADED / "driver_version.out").read_text())
    assert (open_.version, open_.branch, open_.open_module) == ("570.86.15", "570", True)


def test_driver_version_on_arm_grace() -> None:
    text = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  570.124.06  Release Build  (dvs-builder@U22)\n"
    assert gf.parse_driver_version(text).version == "570.124.06"


def test_driver_version_garbage_is_an_error() -> None:
    with pytest.raises(ParseError, match="no NVRM version"):
        gf.parse_driver_version("GCC version:  gcc version 12.2.0\n")


def test_gpu_information_dump() -> None:
    infos = gf.parse_gpu_information_dump((HEALTHY / "gpu_information.out").read_text())
    assert [i.bus for i in infos][:2] == ["0000:18:00.0", "0000:2a:00.0"]
    assert infos[0].model == "NVIDIA H100 80GB HBM3"
    assert infos[0].uuid == "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"
    assert infos[0].minor == 0 and not infos[0].excluded
    assert len(infos) == 8


def test_gpu_information_excluded() -> None:
    info = gf.parse_gpu_information(
        "Model: \t\t NVIDIA H100 80GB HBM3\nBus Location: \t 0000:18:00.0\nGPU Excluded:\t Yes\n"
    )
    assert info.excluded and info.minor is None


def test_pci_dump_finds_gpus_and_nvswitches() -> None:
    devices = gf.parse_pci_dump((HEALTHY / "pci.out").read_text())
    gpus = [d for d in devices if d.is_gpu]
    switches = [d for d in devices if d.is_nvswitch]
    assert len(gpus) == 8 and len(switches) == 4
    assert {d.model for d in gpus} == {gf.PciModel("H100", "H100 SXM5 80GB")}
    assert switches[0].bus == "0000:05:00.0" and switches[0].label == "10de:22a3"


def test_pci_dump_tolerates_unknown_device_ids() -> None:
    d = "/sys/bus/pci/devices/0000:01:00.0"
    (dev,) = gf.parse_pci_dump(f"{d}/vendor:0x10de\n{d}/device:0x9999\n{d}/class:0x030000\n")
    assert dev.is_gpu and dev.model is None and dev.label == "10de:9999"


def test_pci_dump_incomplete_device_is_an_error() -> None:
    d = "/sys/bus/pci/devices/0000:01:00.0"
    with pytest.raises(ParseError, match="must all be readable"):
        gf.parse_pci_dump(f"{d}/vendor:0x10de\n")


@pytest.mark.parametrize(
    ("expected", "smi_name", "device", "ok"),
    [
        ("H100", "NVIDIA H100 80GB HBM3", 0x2330, True),  # family
        ("H100 SXM5 80GB", "NVIDIA H100 80GB HBM3", 0x2330, True),  # stacks/design/catalog.py's name
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", 0x2330, True),  # NVML's name
        ("h100 80gb hbm3", "NVIDIA H100 80GB HBM3", 0x2330, True),
        ("H200 SXM5 141GB", "NVIDIA H200", 0x2335, True),
        ("B200 180GB", "NVIDIA B200", 0x2901, True),
        ("H100 SXM5 80GB", "NVIDIA H100 NVL", 0x2321, False),  # same family, other part
        ("H200", "NVIDIA H100 80GB HBM3", 0x2330, False),
        ("H10", "NVIDIA H100 80GB HBM3", 0x2330, False),  # no substring matching
    ],
)
def test_model_matches(expected: str, smi_name: str, device: int, ok: bool) -> None:
    pci = gf.PciDevice("0000:18:00.0", gf.NVIDIA_VENDOR, device, 0x030200)
    assert gf.model_matches(expected, smi_name, pci) is ok


def test_catalog_gpu_models_are_recognised() -> None:
    # The design's model comes from stacks/design/catalog.py; each HGX part must be matchable by it.
    from stacks.design.catalog import PLATFORMS

    names = {_norm(n) for m in gf.PCI_MODELS.values() for n in (m.family, m.name, *m.aliases)}
    for platform in PLATFORMS.values():
        if platform.key.startswith("hgx-"):
            assert _norm(platform.gpu_model) in names, platform.key


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("00000000:18:00.0", "0000:18:00.0"), ("0000:DB:00.0", "0000:db:00.0"), ("0001:05:1f.7", "0001:05:1f.7")],
)
def test_normalize_bus(raw: str, normal: str) -> None:
    assert gf.normalize_bus(raw) == normal


def test_smi_fabric_state_per_gpu() -> None:
    healthy = gf.parse_smi_fabric((HEALTHY / "smi_details.out").read_text())
    assert len(healthy) == 8 and all(s.ready for s in healthy.values())
    assert healthy["0000:18:00.0"] == gf.FabricState("Completed", "Success")
    degraded = gf.parse_smi_fabric((DEGRADED / "smi_details.out").read_text())
    assert len(degraded) == 7 and not any(s.ready for s in degraded.values())


def test_smi_fabric_absent_on_older_drivers() -> None:
    text = "GPU 00000000:18:00.0\n    Product Name : NVIDIA A100-SXM4-80GB\n    Processes : None\n"
    assert gf.parse_smi_fabric(text) == {}


def test_smi_commands_fall_back_to_the_operator_driver_root() -> None:
    assert gf.SMI_QUERY.startswith("if command -v nvidia-smi")
    assert "chroot /run/nvidia/driver nvidia-smi --query-gpu=" in gf.SMI_QUERY

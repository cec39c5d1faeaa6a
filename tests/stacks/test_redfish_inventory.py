"""Fast tier: the inventory check against recorded Redfish documents (shaped like the DMTF public
mockups), the BMC plan from the OOB pool, and the provider's checks that need no BMC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi.dynamic import Config, ConfigureRequest

from stacks.design.bmc_plan import bmc_servers, system_uuid
from stacks.design.loader import load_and_design
from stacks.design.redfish_inventory import InventoryMismatch, check_inventory, read_inventory
from stacks.providers.redfish_machine import CONFIG_NAMESPACE, RedfishMachineProvider

FIXTURES = Path(__file__).parents[1] / "fixtures" / "redfish"


def recorded(name: str):
    documents = json.loads((FIXTURES / name).read_text())
    return lambda path: documents[path]


def test_gpus_from_processors_match_the_platform():
    inventory = read_inventory(recorded("hgx-h200-processors.json"), "/redfish/v1/Systems/1")
    assert (inventory.model, inventory.serial, inventory.cpus, inventory.memory_gib) == ("DGX H200", "1560123456789", 2, 2048)
    assert inventory.gpus == 8
    check_inventory("site-gpu-00001", inventory, gpu_model="H200 SXM5 141GB", gpus=8)


def test_missing_gpu_is_an_error_naming_the_server():
    inventory = read_inventory(recorded("hgx-h200-one-gpu-missing.json"), "/redfish/v1/Systems/1")
    with pytest.raises(InventoryMismatch, match=r"server site-gpu-00007: the BMC reports 7 GPUs, the design's platform has 8"):
        check_inventory("site-gpu-00007", inventory, gpu_model="H200 SXM5 141GB", gpus=8)


def test_wrong_gpu_model_is_an_error():
    inventory = read_inventory(recorded("hgx-h200-processors.json"), "/redfish/v1/Systems/1")
    with pytest.raises(InventoryMismatch, match=r"GPU model NVIDIA H200 SXM5 141GB, the design's platform has B200 180GB"):
        check_inventory("s1", inventory, gpu_model="B200 180GB", gpus=8)


def test_gpus_listed_only_as_pcie_devices_are_counted():
    inventory = read_inventory(recorded("hgx-h100-pcie-only.json"), "/redfish/v1/Systems/1")
    assert inventory.gpus == 8 and set(inventory.gpu_models) == {"NVIDIA H100 80GB HBM3"}  # the NIC is not a GPU
    check_inventory("s1", inventory, gpu_model="H100 SXM5 80GB", gpus=8)
    with pytest.raises(InventoryMismatch):
        check_inventory("s1", inventory, gpu_model="H200 SXM5 141GB", gpus=8)


def test_a_bmc_without_gpu_inventory_is_unknown_not_zero():
    system = {"Id": "x", "Manufacturer": "Sushy Emulator", "ProcessorSummary": {}, "MemorySummary": {}}
    inventory = read_inventory(lambda path: system, "/redfish/v1/Systems/x")
    assert inventory.gpus is None
    check_inventory("s1", inventory, gpu_model="H200 SXM5 141GB", gpus=8)  # recorded, not refused


def test_bmc_addresses_come_from_the_oob_pool():
    _, planned = load_and_design("ke-staging")
    site = planned.sites[0]
    servers = bmc_servers(site, "https://{bmc_ip}", "/redfish/v1/Systems/1", limit=3)
    oob = site.pools["oob"]
    assert [s.url for s in servers] == [f"https://{oob.address(i)}" for i in range(3)]
    assert servers[0].name == f"{site.site}-gpu-00001" and servers[0].rack == 1
    lab = bmc_servers(site, "https://127.0.0.1:1", "/redfish/v1/Systems/{system_uuid}", limit=1)
    assert lab[0].system == f"/redfish/v1/Systems/{system_uuid(servers[0].name)}"


def configured(**connection) -> RedfishMachineProvider:
    """The provider as a pool's process has it: configured from the pool's inputs, as the engine sends them."""
    provider = RedfishMachineProvider()
    raw = {f"{CONFIG_NAMESPACE}:{key}": value for key, value in connection.items()}
    provider.configure(ConfigureRequest(Config(raw, "sovereign")))
    return provider


@pytest.mark.parametrize(("user", "password"), [("root", "calvin"), ("ADMIN", "ADMIN"), ("USERID", "PASSW0RD"), ("x", "")])
def test_default_credentials_are_refused_before_any_bmc_is_touched(user, password):
    result = configured(username=user, password=password).check({}, {"name": "s1", "url": "https://10.0.0.1"})
    assert [f.property for f in result.failures] == ["password"]
    assert "vendor default" in result.failures[0].reason and (not password or password not in result.failures[0].reason)


def test_plain_http_bmc_is_refused():
    result = configured(username="ops", password="Xk2-long").check({}, {"name": "s1", "url": "http://10.0.0.1"})
    assert [f.property for f in result.failures] == ["url"]


def test_a_machine_outside_a_configured_pool_is_refused():
    result = RedfishMachineProvider().check({}, {"name": "s1", "url": "https://10.0.0.1"})
    assert "username" in [f.property for f in result.failures]
    assert "one of its Machines' pools" in result.failures[0].reason

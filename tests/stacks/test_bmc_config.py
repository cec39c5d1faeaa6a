"""Fast tier: BMC settings are read once, every problem at once, naming the field."""

from __future__ import annotations

import pytest

from stacks.bmc_config import _from_mapping
from stacks.design.loader import InputError


def test_every_missing_field_is_named(tmp_path):
    with pytest.raises(InputError) as err:
        _from_mapping({"url": "https://{bmc_ip}"}, "Pulumi.xx-staging.yaml sovereign:bmc", None, "sovereign:bmcPassword")
    fields = [p.field for p in err.value.problems]
    assert fields == ["username", "caFile", "installImage", "sovereign:bmcPassword"]
    assert all(p.file == "Pulumi.xx-staging.yaml sovereign:bmc" for p in err.value.problems)


def test_unreadable_ca_bundle_is_a_problem_not_a_traceback(tmp_path):
    raw = {"url": "https://{bmc_ip}", "username": "ops", "caFile": str(tmp_path / "missing.pem"),
           "installImage": {"url": "http://a/i.iso", "sha256": "0" * 64}}
    with pytest.raises(InputError, match="cannot read the BMCs' CA bundle"):
        _from_mapping(raw, "stack config", "secret", "sovereign:bmcPassword")


def test_a_complete_mapping_reads_with_defaults(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    raw = {"url": "https://{bmc_ip}", "username": "ops", "caFile": str(ca),
           "installImage": {"url": "http://a/i.iso", "sha256": "0" * 64}, "adminKeys": ["ssh-ed25519 AAAA ops"]}
    settings = _from_mapping(raw, "stack config", "secret", "sovereign:bmcPassword")
    assert (settings.system, settings.deadline_s, settings.wave, settings.generation) == ("/redfish/v1/Systems/1", 300.0, 8, 0)
    assert settings.ca_pem.startswith("-----BEGIN") and settings.admin_keys == ("ssh-ed25519 AAAA ops",)

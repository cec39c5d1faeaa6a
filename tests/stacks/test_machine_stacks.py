"""Fast tier: how a site's servers are split into one stack per scalable unit (stacks.machine_stacks).
The real engine runs the unit stacks in tests/engine/test_machines_on_bmcs.py."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import yaml

from stacks import machine_stacks
from stacks.bmc_config import BmcSettings
from stacks.design.loader import load_and_design
from stacks.design.project import load_project
from stacks.machines_layer import build_machines, machines_site, scalable_units
from tests.stacks.test_program import mocks  # noqa: F401  (the fixture)

STACK = "in-staging"  # HGX H100 first site: 4 servers a rack, 32 a scalable unit


def bmc_config(tmp_path: Path, **extra) -> dict[str, tuple[str, bool]]:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    raw = {"url": "https://{bmc_ip}", "username": "ops", "caFile": str(ca),
           "installImage": {"url": "http://a/i.iso", "sha256": "0" * 64}, **extra}
    return {"sovereign:bmc": (json.dumps(raw), False), "sovereign:bmcPassword": ("s3cret", True)}


def test_a_stack_without_bmcs_has_no_unit_stacks(tmp_path):
    assert machine_stacks.split(STACK, {}, {}) is None


def test_servers_split_by_scalable_unit_and_units_share_the_pools(tmp_path):
    split = machine_stacks.split(STACK, bmc_config(tmp_path, servers=70), {})
    assert split is not None
    assert split.units == {1: "in-staging-machines-su01", 2: "in-staging-machines-su02", 3: "in-staging-machines-su03"}
    assert (split.at_once, split.pools) == (2, 4)  # 8 pools over the 2 units that run at once
    one = machine_stacks.split(STACK, bmc_config(tmp_path, servers=70, stacksAtOnce=1, pools=6), {})
    assert one is not None and (one.at_once, one.pools) == (1, 6)
    small = machine_stacks.split(STACK, bmc_config(tmp_path, servers=5), {})
    assert small is not None and small.units == {1: "in-staging-machines-su01"} and (small.at_once, small.pools) == (1, 8)


def test_the_lab_s_bmc_file_is_read_from_the_engine_environment(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("PEM")
    (tmp_path / "password").write_text("pw\n")
    lab = tmp_path / "stack.json"
    lab.write_text(json.dumps({"url": "https://127.0.0.1:1", "username": "u", "ca_file": str(ca), "servers": 33,
                               "password_file": str(tmp_path / "password"),
                               "install_image": {"url": "http://a/i.iso", "sha256": "0" * 64}}))
    split = machine_stacks.split(STACK, {}, {"SOVEREIGN_BMC_FILE": str(lab)})
    assert split is not None and sorted(split.units) == [1, 2]


def test_a_unit_s_config_is_its_site_stack_s_plus_which_unit():
    site = {"sovereign:partnership": ('{"country": "IN"}', False)}
    config = machine_stacks.unit_config(site, STACK, 2, 4)
    assert config == {**site, "sovereign:machinesOf": (STACK, False), "sovereign:su": ("2", False),
                      "sovereign:unitPools": ("4", False)}


def test_the_units_summaries_add_up():
    one = {"servers": 32, "racks": 8, "wave": 8, "pools": 4, "powered_on": 31}
    two = {"servers": 2, "racks": 1, "wave": 8, "pools": 1, "powered_on": 2}
    total = machine_stacks.add_summaries(machine_stacks.add_summaries(None, one), two)
    assert total == {"servers": 34, "racks": 9, "wave": 8, "pools": 5, "powered_on": 33, "stacks": 2}


def test_existing_units_are_read_from_the_backend_by_exact_name(tmp_path):
    stacks = tmp_path / ".pulumi" / "stacks" / "sovereign"
    stacks.mkdir(parents=True)
    for name in ("in-staging", "in-staging-machines-su01", "in-staging-machines-su12", "in-staging-machines-su3",
                 "xin-staging-machines-su02", "in-staging-machines-su02.bak"):
        (stacks / f"{name}.json").write_text("{}")
    assert machine_stacks.existing_units(STACK, tmp_path) == {1: "in-staging-machines-su01",
                                                             12: "in-staging-machines-su12"}


def test_a_site_stack_that_still_holds_servers_is_recognised(tmp_path):
    stacks = tmp_path / ".pulumi" / "stacks" / "sovereign"
    stacks.mkdir(parents=True)
    (stacks / "in-staging.json").write_text(json.dumps({"resources": [{"type": "sovereign:site:Site"}]}))
    (stacks / "in-staging-machines-su01.json").write_text(json.dumps({"resources": [{"type": machine_stacks.MACHINES_TYPE}]}))
    assert not machine_stacks.holds_servers(STACK, tmp_path)
    (stacks / "in-staging.json").write_text(json.dumps({"resources": [{"type": machine_stacks.MACHINES_TYPE}]}))
    assert machine_stacks.holds_servers(STACK, tmp_path)


def test_the_units_workspace_runs_the_project_s_own_program(tmp_path):
    project = load_project(Path(__file__).resolve().parents[2])
    assert project is not None
    folder = machine_stacks.workspace(project, tmp_path / "pulumi")
    settings = yaml.safe_load((folder / "Pulumi.yaml").read_text())
    assert settings["name"] == project.name and settings["main"] == str(project.root / "stacks")
    assert settings["runtime"]["options"]["virtualenv"] == str(project.root / ".venv")
    assert "stackConfigDir" not in settings  # the units' configs stay in the workspace, not countries/
    before = (folder / "Pulumi.yaml").stat().st_mtime_ns
    machine_stacks.workspace(project, tmp_path / "pulumi")
    assert (folder / "Pulumi.yaml").stat().st_mtime_ns == before


def test_a_unit_stack_builds_its_own_servers_only(mocks):  # noqa: F811
    partnership, planned = load_and_design(STACK)
    site = machines_site(planned, None)
    bmc = BmcSettings(url="https://{bmc_ip}", system="/redfish/v1/Systems/1", username="ops",
                      password="pw", ca_pem="", image_url="http://a/i.iso", image_sha256="0" * 64, servers=70, pools=4)
    assert scalable_units(site, bmc) == [1, 2, 3]

    @pulumi.runtime.test
    def run():
        return build_machines(partnership, site, bmc, su=2).apply(lambda s: s)

    run()
    servers = sorted(r.name for r in mocks.resources if r.typ == "pulumi-python:dynamic:Resource")
    assert servers == [f"{site.site}-gpu-{i:05d}" for i in range(33, 65)]
    pools = [r.name for r in mocks.resources if r.typ == "pulumi:providers:pulumi-python"]
    assert sorted(pools) == [f"{site.site}-su02-machines-pool{i}" for i in range(4)]


def test_up_s_summary_names_the_servers_and_their_unit_stacks():
    from rich.console import Console

    from cli.engine_view import render
    from stacks.automation import RunResult

    out = Console(record=True, width=200)
    machines = {"servers": 34, "racks": 17, "wave": 8, "pools": 5, "powered_on": 33, "stacks": 2}
    render(RunResult("up", STACK, {"create": 71}, {"machines": machines}), out)
    assert "machines: 34 servers in 17 racks, 33 powered on; 2 scalable-unit stack(s), 5 provider pools" in out.export_text()

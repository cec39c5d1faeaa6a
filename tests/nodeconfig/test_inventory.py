"""Inventory from the design and from the lab: groups, shards, role inputs, nothing secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from nodeconfig.acceptance.expectations import Vars, gpu_expectations
from nodeconfig.configure import _secret_vars, _stack_admins, lab_apt_mirrors
from nodeconfig.inventory import NODE_PROFILES, Admin, build_inventory, design_hosts, lab_hosts, shards_for, site_vars
from stacks.design.catalog import PLATFORMS
from stacks.design.loader import InputError, load_and_design

REPO = Path(__file__).resolve().parents[2]

def _inventory(stack="in-staging", lab_nodes=None):
    partnership, planned = load_and_design(stack)
    site, design = partnership.sites[0], planned.sites[0]
    hosts = lab_hosts(design, lab_nodes) if lab_nodes else design_hosts(design)
    admins = [Admin("ops", ("ssh-ed25519 AAAA ops",))]
    return partnership, design, build_inventory(hosts, site_vars(partnership, site, design, admins))


def test_design_inventory_groups_by_scalable_unit():
    _, design, inventory = _inventory()
    gpu = inventory["all"]["children"]["gpu"]["children"]
    assert list(gpu) == [f"su{i:02d}" for i in range(1, design.scalable_units + 1)]
    assert sum(len(g["hosts"]) for g in gpu.values()) == design.nodes.gpu
    assert len(inventory["all"]["children"]["storage"]["hosts"]) == design.nodes.storage
    first = next(iter(gpu["su01"]["hosts"].values()))
    assert first["ansible_host"] == design.pools["data"].first
    assert first["nvidia_host_expected_gpu_count"] == 8


def test_shards_one_per_scalable_unit_plus_infra():
    _, design, inventory = _inventory()
    shards = shards_for(inventory)
    assert [s.name for s in shards] == [f"su{i:02d}" for i in range(1, design.scalable_units + 1)] + ["infra"]


def test_role_inputs_come_from_the_partnership():
    partnership, _, inventory = _inventory()
    v = inventory["all"]["vars"]
    assert v["hardening_banner_authority"] == partnership.operating_authority
    assert v["time_sync_servers"] == list(partnership.sites[0].ntp_servers)
    assert set(v["container_runtime_registry_mirrors"]) == {r.upstream for r in partnership.sovereignty.registries}


def test_lab_nodes_stand_in_for_management_storage_and_gpu():
    _, _, inventory = _inventory(lab_nodes=[{"name": f"n{i}", "ip": f"10.250.9.{10 + i}"} for i in (1, 2, 3)])
    children = inventory["all"]["children"]
    assert list(children["management"]["hosts"]) == ["n1"]
    assert list(children["storage"]["hosts"]) == ["n2"]
    assert list(children["gpu"]["children"]["su01"]["hosts"]) == ["n3"]
    assert children["gpu"]["children"]["su01"]["hosts"]["n3"]["nvidia_host_expected_gpu_count"] == 0


def test_secrets_file_must_be_private_and_known(tmp_path):
    _, _, inventory = _inventory()
    path = tmp_path / "s.yml"
    path.write_text("admin_password_hashes: {ops: '$6$x$y'}\n")
    path.chmod(0o644)
    with pytest.raises(InputError, match="chmod 600"):
        _secret_vars(path, inventory)
    path.chmod(0o600)
    assert _secret_vars(path, inventory)["baseline_admin_users"][0]["password_hash"] == "$6$x$y"
    path.write_text("admin_password_hashes: {nobody: '$6$x$y'}\n")
    with pytest.raises(InputError, match="no such admin"):
        _secret_vars(path, inventory)
    path.write_text("tokens: {}\n")
    with pytest.raises(InputError, match="unknown field"):
        _secret_vars(path, inventory)


def test_secrets_problems_name_line_and_field(tmp_path):
    _, _, inventory = _inventory()
    path = tmp_path / "s.yml"
    path.write_text(
        "admin_password_hashes:\n  ops: '$6$x$y'\n  ghost: '$6$x$z'\n"
        "registry_credentials:\n  nvcr.io: {username: x}\n"
    )
    path.chmod(0o600)
    with pytest.raises(InputError) as info:
        _secret_vars(path, inventory)
    ((line, field),) = [(p.line, p.field) for p in info.value.problems]
    assert (line, field) == (5, "registry_credentials.nvcr.io.password")
    path.write_text("admin_password_hashes:\n  ops: '$6$x$y'\n  ghost: '$6$x$z'\n")
    with pytest.raises(InputError) as info:
        _secret_vars(path, inventory)
    assert [(p.line, p.field) for p in info.value.problems] == [(3, "admin_password_hashes.ghost")]
    path.write_text("admin_password_hashes:\n  ops: ' $6$x$y '\n")
    assert _secret_vars(path, inventory)["baseline_admin_users"][0]["password_hash"] == " $6$x$y "


def test_admins_are_read_by_the_loader_with_lines(tmp_path):
    stack = tmp_path / "Pulumi.ke-staging.yaml"
    # The stack file ends with Pulumi's own top-level `encryptionsalt`; admins go under `config:`.
    text = "".join(line for line in (REPO / "countries" / "Pulumi.ke-staging.yaml").read_text().splitlines(keepends=True)
                   if not line.startswith("encryptionsalt:"))
    stack.write_text(text + "  sovereign:admins:\n    - {name: ops, ssh_keys: ['ssh-ed25519 AAAAC3Nz ops@x']}\n"
                     "    - {name: Root!, ssh_keys: ['/home/me/.ssh/id_ed25519']}\n")
    with pytest.raises(InputError) as info:
        _stack_admins(str(stack))
    found = {(p.line, p.field) for p in info.value.problems}
    last = len(stack.read_text().splitlines())
    assert found == {(last, "config.sovereign:admins[1].name"), (last, "config.sovereign:admins[1].ssh_keys")}
    stack.write_text(text + "  sovereign:admins:\n    - {name: ops, ssh_keys: ['ssh-ed25519 AAAAC3Nz ops@x']}\n")
    assert [(a.name, a.ssh_keys) for a in _stack_admins(str(stack))] == [("ops", ("ssh-ed25519 AAAAC3Nz ops@x",))]


def test_configure_bad_input_exits_2(tmp_path):
    assert CliRunner().invoke(cli, ["configure", "zz-nowhere"]).exit_code == 2
    result = CliRunner().invoke(cli, ["configure", "ke-staging", "--site", "atlantis"])
    assert result.exit_code == 2 and "atlantis" in result.output
    result = CliRunner().invoke(cli, ["configure", "ke-staging", "--lab", "never-started"])
    assert result.exit_code == 2 and "lab nodes up" in result.output


@pytest.mark.parametrize(
    ("stack", "nvswitch", "imex"),
    [("in-staging", "true", False), ("ke-staging", "false", True)],  # HGX H100; GB200 NVL72
)
def test_platform_profile_sets_what_nvidia_host_and_the_acceptance_suite_read(stack, nvswitch, imex):
    _, design, inventory = _inventory(stack)
    group_vars = inventory["all"]["vars"]
    assert group_vars["sovereign_platform"] == design.platform
    profile = NODE_PROFILES[design.platform]
    assert group_vars["nvidia_host_nvswitch"] == ("true" if profile.nvswitch else "false")
    assert group_vars["nvidia_host_imex_enabled"] is profile.imex
    assert (group_vars["nvidia_host_nvswitch"], group_vars["nvidia_host_imex_enabled"]) == (nvswitch, imex)
    # The acceptance suite requires Fabric Manager exactly where the profile does.
    assert gpu_expectations(Vars(group_vars)).fabric_manager is profile.nvswitch


def test_every_catalog_platform_has_a_profile():
    assert set(NODE_PROFILES) == set(PLATFORMS)
    assert NODE_PROFILES["hgx-b200"].nvlsm and NODE_PROFILES["hgx-b200"].nvswitch  # NVSwitches off the PCI bus


def test_apt_sources_come_from_the_partnerships_package_mirrors():
    _, _, inventory = _inventory("ke-staging")
    group_vars = inventory["all"]["vars"]
    assert group_vars["baseline_apt_mirrors"] == {
        "deb.debian.org/debian": "http://packages.ai.go.ke/debian",
        "security.debian.org/debian-security": "http://packages.ai.go.ke/debian-security",
    }
    # NVIDIA's repositories: nvidia_host appends the release/architecture path itself.
    assert group_vars["nvidia_host_cuda_mirror"] == "https://packages.ai.go.ke/nvidia/cuda"
    assert group_vars["nvidia_host_container_toolkit_mirror"] == "https://packages.ai.go.ke/nvidia/libnvidia-container"


def test_the_lab_plays_the_package_mirror_through_its_apt_cache():
    mirrors = lab_apt_mirrors("10.250.7.1", ["http://deb.debian.org/debian", "http://deb.debian.org/debian-security"])
    assert mirrors == {
        "deb.debian.org/debian": "http://10.250.7.1:3142/deb.debian.org/debian",
        "security.debian.org/debian-security": "http://10.250.7.1:3142/deb.debian.org/debian-security",
    }


def _h100_inventory(write_stack, partnership_dict, compute: str | None):
    if compute:
        partnership_dict["sites"][0]["networks"]["compute"] = compute
    partnership, planned = load_and_design(write_stack(partnership_dict))
    site, design = partnership.sites[0], planned.sites[0]
    hosts = design_hosts(design, site.networks.compute)
    return design, {h.name: h for h in hosts}


def test_gpu_nodes_name_their_ports_by_pci_path_with_per_rail_addresses(write_stack, partnership_dict):
    design, hosts = _h100_inventory(write_stack, partnership_dict, "10.40.0.0/16")
    first, second = (hosts[f"{design.site}-gpu-{i:05d}"].vars for i in (1, 2))
    interfaces = first["infiniband_interfaces"]
    assert [i["name"] for i in interfaces] == [
        "ibp24s0", "ibp64s0", "ibp79s0", "ibp94s0", "ibp154s0", "ibp192s0", "ibp206s0", "ibp220s0",
        "ibp41s0f0", "ibp170s0f0"]
    assert interfaces[0] == {"name": "ibp24s0", "mode": "ipoib", "pci": "0000:18:00.0", "rail": 0, "address": "10.40.0.17/19"}
    assert [i["address"] for i in second["infiniband_interfaces"][:8]] == [f"10.40.{32 * r}.18/19" for r in range(8)]
    storage = interfaces[8]
    assert storage["address"] == f"{design.pools['storage'].first}/16" and "address" not in interfaces[9]
    assert first["infiniband_expected_port_count"] == 10
    assert first["infiniband_expected_hcas"] == sorted(f"mlx5_{n}" for n in (0, 1, 3, 4, 5, 6, 7, 9, 10, 11))


def test_without_a_compute_pool_the_rails_get_no_address(write_stack, partnership_dict):
    design, hosts = _h100_inventory(write_stack, partnership_dict, None)
    interfaces = hosts[f"{design.site}-gpu-00001"].vars["infiniband_interfaces"]
    assert all("address" not in i for i in interfaces[:8]) and "address" in interfaces[8]


def test_storage_servers_and_unpublished_layouts_keep_one_named_storage_port(write_stack, partnership_dict):
    design, hosts = _h100_inventory(write_stack, partnership_dict, None)
    storage = next(h for h in hosts.values() if h.group == "storage").vars
    [port] = storage["infiniband_interfaces"]
    assert port == {"name": "ib0", "mode": "ipoib", "address": port["address"]}
    partnership_dict["sites"][0]["capacity"]["platform"] = "hgx-b200"  # no port table published here
    partnership_dict["sites"][0]["max_rack_kw"] = 60
    design, hosts = _h100_inventory(write_stack, partnership_dict, None)
    gpu = hosts[f"{design.site}-gpu-00001"].vars
    assert [i["name"] for i in gpu["infiniband_interfaces"]] == ["ib0"] and gpu["infiniband_expected_port_count"] == 8


def test_gb200_counts_its_infiniband_rails_not_its_ethernet_storage_ports():
    design = load_and_design("ke-staging")[1].sites[0]
    gpu = next(h for h in design_hosts(design) if h.group == "gpu").vars
    names = [i["name"] for i in gpu["infiniband_interfaces"]]
    assert names == ["ibp3s0", "ibP2p3s0", "ibP16p3s0", "ibP18p3s0", "enP6p3s0f0np0", "enP22p3s0f0np0"]
    assert gpu["infiniband_expected_port_count"] == 4
    assert gpu["infiniband_expected_hcas"] == ["mlx5_0", "mlx5_1", "mlx5_4", "mlx5_5"]
    assert gpu["infiniband_interfaces"][4]["mode"] == "roce"


def test_the_sites_log_collector_reaches_hardening(write_stack, partnership_dict):
    partnership_dict["sites"][0]["log_collector"] = {"host": "logs.site-a.example", "port": 6514}
    partnership, planned = load_and_design(write_stack(partnership_dict))
    group_vars = site_vars(partnership, partnership.sites[0], planned.sites[0], [])
    assert (group_vars["hardening_remote_log_host"], group_vars["hardening_remote_log_port"],
            group_vars["hardening_remote_log_tls"]) == ("logs.site-a.example", 6514, True)
    partnership_dict["sites"][0]["log_collector"] = {"host": "logs example", "tls": "yes"}
    with pytest.raises(InputError) as caught:
        load_and_design(write_stack(partnership_dict))
    fields = {p.field.removeprefix("config.sovereign:partnership.") for p in caught.value.problems}
    assert {"sites[0].log_collector.host", "sites[0].log_collector.tls"} <= fields, fields


def test_without_a_log_collector_nothing_is_forwarded(write_stack, partnership_dict):
    partnership, planned = load_and_design(write_stack(partnership_dict))
    assert "hardening_remote_log_host" not in site_vars(partnership, partnership.sites[0], planned.sites[0], [])
    assert "log_collector" not in partnership.model_dump(mode="json")["sites"][0]  # digests as before


@pytest.mark.parametrize(("stack", "gpu_pcie", "hca_pcie"), [("in-staging", 5, 5), ("ke-staging", None, 5)])
def test_burnin_figures_reach_the_acceptance_suite(stack, gpu_pcie, hca_pcie):
    from nodeconfig.acceptance.expectations import burnin_expectations

    _, _, inventory = _inventory(stack)
    expected = burnin_expectations(Vars(inventory["all"]["vars"]))
    assert (expected.nvlinks_per_gpu, expected.gpu_pcie_gen, expected.hca_pcie_gen) == (18, gpu_pcie, hca_pcie)


@pytest.mark.parametrize(("stack", "all_reduce", "write_bw"), [("in-staging", 360.0, 360.0), ("ke-staging", 720.0, 360.0)])
def test_functional_burnin_floors_come_from_the_catalog(stack, all_reduce, write_bw):
    """HGX H100 (NVLink 900 GB/s, NDR 400 Gb/s) and GB200 NVL72 (NVLink 1.8 TB/s, NDR 400 Gb/s)."""
    from nodeconfig.acceptance.expectations import burnin_expectations

    _, _, inventory = _inventory(stack)
    expected = burnin_expectations(Vars(inventory["all"]["vars"]))
    assert (expected.all_reduce_gbytes, expected.write_bw_gbps) == (all_reduce, write_bw)


def test_the_write_test_rails_come_from_the_port_table():
    from nodeconfig.acceptance.expectations import burnin_expectations
    from stacks.design.hcas import HCA_LAYOUTS

    _, _, inventory = _inventory("in-staging")
    group_vars = inventory["all"]["vars"]
    su = next(iter(inventory["all"]["children"]["gpu"]["children"].values()))
    host_vars = next(iter(su["hosts"].values()))
    rails = burnin_expectations(Vars({**group_vars, **host_vars})).rails
    assert rails == {h.pci: h.rail for h in HCA_LAYOUTS["hgx-h100"].compute()}

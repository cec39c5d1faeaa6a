from __future__ import annotations

from pathlib import Path

import pytest

from nodeconfig.acceptance.expectations import (
    GPU_VARS,
    IB_VARS,
    ROLE_GROUPS,
    ExpectationError,
    Vars,
    applies,
    gpu_expectations,
    ib_expectations,
    os_family,
    role_groups,
)


@pytest.fixture
def roles_dir(tmp_path: Path) -> Path:
    """A roles/ tree with the three layers Ansible merges: defaults < inventory < vars."""
    (tmp_path / "nvidia_host" / "defaults").mkdir(parents=True)
    (tmp_path / "nvidia_host" / "defaults" / "main.yml").write_text(
        "nvidia_host_driver_branch: '550'\n"
        "nvidia_host_expected_gpu_count: 0\n"
        "nvidia_host_persistence_mode: true\n"
        "nvidia_host_packages: ['nvidia-driver-{{ nvidia_host_driver_branch }}']\n"
        "nvidia_host_from_facts: \"{{ ansible_facts['kernel'] }}\"\n"
    )
    (tmp_path / "nvidia_host" / "vars").mkdir()
    (tmp_path / "nvidia_host" / "vars" / "Debian.yml").write_text("__nvidia_host_service: nvidia-persistenced\n")
    (tmp_path / "nvidia_host" / "vars" / "main.yml").write_text(
        "__nvidia_host_all: \"{{ {'a': 1} | combine({'b': nvidia_host_expected_gpu_count}) }}\"\n"
    )
    return tmp_path


def test_inventory_overrides_role_defaults_and_templates_render(roles_dir: Path) -> None:
    v = Vars(
        {"nvidia_host_driver_branch": "570", "nvidia_host_expected_gpu_count": 8}, roles_dir=roles_dir, family="Debian"
    )
    assert v.get_str("nvidia_host_driver_branch") == "570"
    assert v["nvidia_host_packages"] == ["nvidia-driver-570"]  # rendered against the inventory value
    assert v.get_bool("nvidia_host_persistence_mode") is True  # from defaults
    assert v["__nvidia_host_service"] == "nvidia-persistenced"  # vars/<family>.yml
    assert v.get_map("__nvidia_host_all") == {"a": 1, "b": 8}  # native types, ansible's combine


def test_value_that_needs_facts_is_an_error_naming_the_variable(roles_dir: Path) -> None:
    v = Vars({}, roles_dir=roles_dir)
    with pytest.raises(
        ExpectationError, match=r"nvidia_host_from_facts cannot be rendered: .*ansible_facts.* is undefined"
    ):
        v.get_str("nvidia_host_from_facts")


@pytest.mark.parametrize(
    ("method", "value", "message"),
    [
        ("get_int", "eight", "expected a whole number"),
        ("get_int", True, "expected a whole number"),
        ("get_bool", "maybe", "expected true or false"),
        ("get_float", "fast", "expected a number"),
        ("get_list", "mlx5_0", "expected a list"),
        ("get_map", None, "undefined"),
        ("get_list", None, "undefined"),
        ("get_str", None, "undefined"),
    ],
)
def test_typed_accessors_name_the_variable(method: str, value: object, message: str) -> None:
    v = Vars({"x": value}, roles_dir=None)
    with pytest.raises(ExpectationError, match=f"x .*{message}"):
        getattr(v, method)("x")


@pytest.mark.parametrize(("raw", "want"), [("yes", True), ("True", True), ("off", False), (0, False), ("1", True)])
def test_ansible_truthy_spellings(raw: object, want: bool) -> None:
    assert Vars({"x": raw}, roles_dir=None).get_bool("x") is want


def test_gpu_expectations_from_inventory() -> None:
    v = Vars(
        {
            "nvidia_host_expected_gpu_count": 8,
            "nvidia_host_expected_gpu_model": "H100 SXM5 80GB",
            "nvidia_host_driver_branch": 550,
            "nvidia_host_ecc_enabled": "yes",
            "nvidia_host_nvswitch": "false",
        },
        roles_dir=None,
    )
    e = gpu_expectations(v)
    assert (e.count, e.model, e.driver_branch, e.ecc, e.persistence, e.fabric_manager) == (
        8, "H100 SXM5 80GB", "550", True, True, False,
    )  # fmt: skip
    assert e.sources == GPU_VARS  # messages name the inventory variable


def test_fabric_manager_follows_the_roles_nvswitch_choice() -> None:
    # The variable nvidia_host itself reads: the inventory's platform profile sets it.
    for raw, want in (("auto", None), ("true", True), (True, True), ("False", False)):
        assert gpu_expectations(Vars({"nvidia_host_nvswitch": raw}, roles_dir=None)).fabric_manager is want
    assert gpu_expectations(Vars({})).fabric_manager is None  # the role's default: auto


def test_unset_expectations_mean_none_expected() -> None:
    e = gpu_expectations(Vars({}, roles_dir=None))
    assert e.count == 0 and e.fabric_manager is None
    i = ib_expectations(Vars({}, roles_dir=None))
    assert i.port_count == 0 and i.link_layer == "InfiniBand" and i.sources == IB_VARS


def test_ib_expectations_from_inventory() -> None:
    v = Vars(
        {
            "infiniband_expected_port_count": "8",
            "infiniband_expected_rate_gbps": 400,
            "infiniband_expected_hcas": ["mlx5_0"],
        },
        roles_dir=None,
    )
    i = ib_expectations(v)
    assert (i.port_count, i.rate_gbps, i.hcas, i.link_layer) == (8, 400.0, ("mlx5_0",), "InfiniBand")


def test_roce_fabric_counts_ethernet_ports() -> None:
    assert ib_expectations(Vars({"infiniband_link_layer": "ethernet"}, roles_dir=None)).link_layer == "Ethernet"
    with pytest.raises(
        ExpectationError, match="infiniband_link_layer = 'omnipath': expected one of InfiniBand, Ethernet"
    ):
        ib_expectations(Vars({"infiniband_link_layer": "omnipath"}, roles_dir=None))


def test_role_applicability() -> None:
    assert applies("baseline", [])
    assert applies("nvidia_host", ["gpu"]) and not applies("nvidia_host", ["storage"])
    assert applies("infiniband", ["storage"]) and applies("container_runtime", ["management"])
    assert not applies("container_runtime", ["storage"])


def test_role_groups_come_from_the_site_playbook(tmp_path: Path) -> None:
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        "- hosts: all\n  roles: [baseline, hardening]\n"
        "- hosts: gpu:storage\n  roles: [{role: infiniband}]\n"
        "- hosts: gpu\n  roles: [nvidia_host, container_runtime]\n"
        "- hosts: storage\n  roles: [{role: container_runtime, when: kubernetes_node_api_server is defined}]\n"
        "- import_playbook: other.yml\n"
    )
    groups = role_groups(playbook)
    assert groups["infiniband"] == ("gpu", "storage")
    # the playbook wins over the built-in table; a conditional role (storage nodes joining a
    # cluster) is not expected everywhere its play runs
    assert groups["container_runtime"] == ("gpu",)
    assert groups["time_sync"] == ROLE_GROUPS["time_sync"]  # not in the playbook: the table


def test_the_site_playbooks_container_runtime_is_expected_where_it_always_runs() -> None:
    assert role_groups()["container_runtime"] == ("gpu", "management")


def test_role_groups_without_a_playbook(tmp_path: Path) -> None:
    assert role_groups(tmp_path / "absent.yml") == ROLE_GROUPS


@pytest.mark.parametrize(("distribution", "family"), [("debian", "Debian"), ("ubuntu", "Debian"), ("rocky", "RedHat")])
def test_os_family(distribution: str, family: str) -> None:
    assert os_family(distribution) == family


def test_project_roles_render_without_facts() -> None:
    # Every variable the project's roles define must be readable as an expectation, or be one
    # the checks never read; this catches a default that quietly needs facts.
    v = Vars({"group_names": ["gpu"]}, family="Debian")
    assert v.get_map("__baseline_all_sysctls")["vm.max_map_count"] == 1048576

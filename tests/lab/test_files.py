"""Fast tier: the files a lab writes (lab.json, ssh_config, inventory, hosts, LXC config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import render, sockets
from lab.spec import LabSpec, node_name

MIRROR = {"deb.debian.org": ("203.0.113.80",)}


def make_spec(tmp_path: Path, name: str = "ci", count: int = 3, lab_dir: Path | None = None) -> LabSpec:
    return LabSpec(name, 42, lab_dir or tmp_path / "lab" / name, tmp_path / "rootfs", count, MIRROR)


def test_node_names_are_prefixed_with_the_lab(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    assert [n.name for n in spec.nodes] == ["ci-node1", "ci-node2", "ci-node3"]
    assert [n.ip for n in spec.nodes] == ["10.250.42.11", "10.250.42.12", "10.250.42.13"]
    assert node_name("default", 1) == "default-node1"


def test_lab_json_round_trips_and_lists_what_tools_need(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    data = spec.to_json()
    assert LabSpec.from_json(data) == spec
    assert data["bridge"] == "sovbr42" and data["subnet"] == "10.250.42.0/24"
    for key in ("ssh_key", "ssh_config", "inventory", "known_hosts", "lxc_path"):
        assert Path(data[key]).parent in (spec.lab_dir, spec.lab_dir.parent)
    assert data["nodes"][0] == {"name": "ci-node1", "ip": "10.250.42.11"}


def test_ssh_config_reuses_connections_and_pins_host_keys(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    text = render.ssh_config(spec)
    assert "Host ci-node2\n  HostName 10.250.42.12\n" in text
    for line in (
        "ControlMaster auto",
        "ControlPersist 60s",
        f"ControlPath {spec.control_path}",
        f"IdentityFile {spec.ssh_key}",
        f"UserKnownHostsFile {spec.known_hosts}",
        "StrictHostKeyChecking yes",
        "User root",
    ):
        assert f"  {line}\n" in text


@pytest.mark.parametrize("lab_dir", [Path("/root/.local/state/sovereign/lab/ci"), Path("/" + "x" * 120) / "lab" / "ci"])
def test_control_path_is_short_whatever_the_lab_dir(tmp_path: Path, lab_dir: Path) -> None:
    spec = make_spec(tmp_path, lab_dir=lab_dir)
    assert spec.control_dir == sockets.socket_dir(lab_dir, len("cm-root@10.250.254.254:22"))
    assert spec.control_path == f"{spec.control_dir}/cm-%r@%h:%p"
    assert len(spec.control_path.replace("%r@%h:%p", "root@10.250.254.254:22")) + 17 <= 107
    # recorded, so leftover checks and other tools find the masters without recomputing
    assert spec.to_json()["control_dir"] == str(spec.control_dir)


def test_inventory_parses_with_ansible(tmp_path: Path) -> None:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    spec = make_spec(tmp_path)
    path = tmp_path / "inventory.ini"
    path.write_text(render.inventory(spec))
    inv = InventoryManager(loader=DataLoader(), sources=[str(path)])
    hosts = inv.get_groups_dict()["lab_nodes"]
    assert hosts == ["ci-node1", "ci-node2", "ci-node3"]
    hv = inv.get_host("ci-node3").get_vars()
    group_vars = inv.groups["lab_nodes"].get_vars()
    assert hv["ansible_host"] == "10.250.42.13"
    assert group_vars["ansible_user"] == "root"
    assert group_vars["ansible_ssh_private_key_file"] == str(spec.ssh_key)
    # Ansible must use our ControlPath, or `down` could not close its masters
    assert f"ControlPath={spec.control_path}" in group_vars["ansible_ssh_common_args"]
    assert f"-F {spec.ssh_config}" in group_vars["ansible_ssh_common_args"]


def test_etc_hosts_resolves_mirror_and_peers(tmp_path: Path) -> None:
    text = render.etc_hosts(make_spec(tmp_path, count=2))
    assert "203.0.113.80 deb.debian.org\n" in text
    assert "10.250.42.12 ci-node2\n" in text
    assert text.startswith("127.0.0.1 localhost\n")


def test_known_hosts_lists_name_and_ip(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, count=1)
    assert (
        render.known_hosts(spec, {"ci-node1": "ssh-ed25519 AAAA"})
        == "ci-node1,10.250.42.11 ssh-ed25519 AAAA\n"
    )


@pytest.mark.parametrize("index", [1, 7, 244])
def test_lxc_config_is_an_overlay_on_the_shared_base(tmp_path: Path, index: int) -> None:
    spec = make_spec(tmp_path, count=index)
    node = spec.node(index)
    conf = dict(
        (k.strip(), v.strip())
        for k, _, v in (
            line.partition("=") for line in render.lxc_config(spec, node).splitlines() if "=" in line
        )
    )
    assert conf["lxc.rootfs.path"] == f"overlay:{spec.rootfs}:{spec.node_dir(node) / 'delta0'}"
    assert conf["lxc.uts.name"] == node.name
    assert conf["lxc.net.0.link"] == "sovbr42"
    assert conf["lxc.net.0.ipv4.address"] == f"{node.ip}/24"
    assert conf["lxc.net.0.ipv4.gateway"] == "10.250.42.1"
    assert len(conf["lxc.net.0.veth.pair"]) <= 15
    assert conf["lxc.net.0.hwaddr"].startswith("00:16:3e:2a:")

"""The infiniband role's .network files for a design's GPU node, rendered by Ansible's own template
module on the controller (the lab's nodes have no HCA, so no PCI path to match): each port matched
by its PCI path, per-rail addresses, a port without an address left unaddressed, and the old
by-name match where the design gives no PCI address."""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
from pathlib import Path

import yaml

from nodeconfig.inventory import design_hosts
from stacks.design.loader import load_and_design
from tests.roles.helpers import ROLES_DIR, tool, tool_env

PLAY = [
    {
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars_files": [str(ROLES_DIR / "infiniband" / "defaults" / "main.yml")],
        "tasks": [
            {
                "name": "Render each fabric interface as the role does",
                "ansible.builtin.template": {
                    "src": str(ROLES_DIR / "infiniband" / "templates" / "fabric.network.j2"),
                    "dest": "{{ out }}/{{ item.name }}.network",
                    "mode": "0644",
                },
                "loop": "{{ infiniband_interfaces }}",
            }
        ],
    }
]


def render(tmp: Path, interfaces: list[dict]) -> dict[str, configparser.ConfigParser]:
    (tmp / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    out = tmp / "out"
    out.mkdir()
    extra = {"out": str(out), "infiniband_interfaces": interfaces, "ansible_python_interpreter": sys.executable}
    run = subprocess.run(
        [tool("ansible-playbook"), "-i", "localhost,", str(tmp / "play.yml"), "-e", json.dumps(extra)],
        env=tool_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    files = {}
    for path in sorted(out.glob("*.network")):
        parser = configparser.ConfigParser(strict=True, interpolation=None)  # duplicate keys or sections fail
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(path.read_text())
        files[path.stem] = parser
    return files


def test_gpu_node_ports_match_by_pci_path_with_rail_addresses(tmp_path, write_stack, partnership_dict):
    partnership_dict["sites"][0]["networks"]["compute"] = "10.40.0.0/16"
    partnership, planned = load_and_design(write_stack(partnership_dict))
    node = next(h for h in design_hosts(planned.sites[0], partnership.sites[0].networks.compute) if h.group == "gpu")
    interfaces = node.vars["infiniband_interfaces"]
    storage_node = next(h for h in design_hosts(planned.sites[0]) if h.group == "storage")
    files = render(tmp_path, interfaces + storage_node.vars["infiniband_interfaces"])
    assert sorted(files) == sorted([i["name"] for i in interfaces] + ["ib0"])
    rail0 = files["ibp24s0"]
    assert dict(rail0["Match"]) == {"Path": "pci-0000:18:00.0"}
    assert rail0["Network"]["Address"] == "10.40.0.17/19" and rail0["Link"]["MTUBytes"] == "4092"
    assert files["ibp220s0"]["Network"]["Address"] == "10.40.224.17/19"
    assert files["ibp41s0f0"]["Network"]["Address"] == interfaces[8]["address"]
    assert "Address" not in files["ibp170s0f0"]["Network"]  # the second storage port has no address
    assert dict(files["ib0"]["Match"]) == {"Name": "ib0"}  # no PCI address in the design: by name

"""Real tier: nvidia_host's IMEX service on a GB200/GB300 node, masked while the GPU Operator's DRA
driver runs IMEX per ComputeDomain, and running again when the host owns it.

NVIDIA's nvidia-imex package is not in Debian's archive and a lab node has no GPU, so the package's
unit is stood in for by a unit of the same name where a package puts it (/lib/systemd/system); the
role's own tasks (its OS variables, then services.yml) run against it over SSH, with the variables
a host-mode GB200 node carries after its driver is installed and loaded.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.nodes import NodeLab
from tests.lab_session import fresh_lab
from tests.roles.helpers import tool, tool_env

pytestmark = pytest.mark.lab

UNIT = ("[Unit]\nDescription=stand-in for NVIDIA IMEX\n[Service]\nExecStart=/bin/sleep infinity\n"
        "[Install]\nWantedBy=multi-user.target\n")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
PLAY = [{
    "hosts": "lab_nodes",
    "tasks": [
        {"name": "nvidia_host's OS variables",
         "ansible.builtin.include_role": {"name": "nvidia_host", "tasks_from": "os.yml", "public": True}},
        {"name": "nvidia_host's services",
         "ansible.builtin.include_role": {"name": "nvidia_host", "tasks_from": "services.yml"}},
    ],
}]  # fmt: skip


@pytest.fixture(scope="module")
def lab() -> Iterator[NodeLab]:
    with fresh_lab("imex", 1) as node_lab:
        name = node_lab.spec().nodes[0].name  # type: ignore[union-attr]
        put = node_lab.ssh(name, f"printf '{UNIT}' > /lib/systemd/system/nvidia-imex.service && systemctl daemon-reload"
                                 " && systemctl enable --now nvidia-imex")
        assert put.returncode == 0, put.stderr
        yield node_lab


def converge(lab: NodeLab, tmp: Path, dra_managed: bool) -> dict[str, int]:
    spec = lab.spec()
    assert spec is not None
    (tmp / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    extra = {
        "nvidia_host_imex_enabled": True,
        "nvidia_host_imex_dra_managed": dra_managed,
        "nvidia_host_persistence_mode": False,
        "nvidia_host_dcgm_enabled": False,
        # What host mode leaves after the driver tasks: units installed, the module loaded.
        "__nvidia_host_unit_known": True,
        "__nvidia_host_fabricmanager": False,
        "__nvidia_host_state": "started",
    }
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(tmp / "play.yml"), "-e", json.dumps(extra)],
        env=tool_env(ANSIBLE_PIPELINING="1"), capture_output=True, text=True, timeout=900, check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    return {k: int(v) for k, v in zip(("ok", "changed", "unreachable", "failed"), RECAP.findall(out.stdout)[0][1:])}


def state(lab: NodeLab) -> tuple[str, str]:
    name = lab.spec().nodes[0].name  # type: ignore[union-attr]
    out = lab.ssh(name, "systemctl is-enabled nvidia-imex; systemctl is-active nvidia-imex").stdout.split()
    return out[0], out[1]


def test_masked_and_stopped_for_the_dra_driver_and_a_rerun_changes_nothing(lab: NodeLab, tmp_path: Path) -> None:
    assert state(lab) == ("enabled", "active")  # as the package leaves it
    assert converge(lab, tmp_path, dra_managed=True)["changed"] == 1
    assert state(lab) == ("masked", "inactive")
    assert converge(lab, tmp_path, dra_managed=True)["changed"] == 0


def test_given_back_to_the_host_it_is_unmasked_and_runs(lab: NodeLab, tmp_path: Path) -> None:
    converge(lab, tmp_path, dra_managed=True)
    assert converge(lab, tmp_path, dra_managed=False)["changed"] == 1
    assert state(lab) == ("enabled", "active")
    assert converge(lab, tmp_path, dra_managed=False)["changed"] == 0

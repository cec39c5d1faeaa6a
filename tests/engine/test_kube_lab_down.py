"""Real tier: `lab up` then `lab down` of a Kubernetes lab leaves no process, port or file behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.lab.leftovers import _cmdlines

pytestmark = pytest.mark.lab
SOVEREIGN = str(Path(sys.executable).parent / "sovereign")


def test_lab_up_status_down_through_the_cli_leaves_nothing():
    state = Path(tempfile.mkdtemp(prefix="sovdown-", dir="/tmp"))
    env = {**os.environ, "SOVEREIGN_STATE": str(state)}
    name = f"d{secrets.token_hex(3)}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SOVEREIGN, "lab", *args, "--name", name, "--json"], env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    up = cli("up", "--stack", "de-staging", "--gpu-nodes", "4", "--nodes", "0", "--bmcs", "2")
    assert up.returncode == 0, up.stdout + up.stderr
    bmcs = json.loads(up.stdout)["bmcs"]
    assert bmcs["servers"] == 2 and bmcs["running"]  # the BMC emulator and artifact server go down with the lab too
    data = json.loads(up.stdout)["kubernetes"]
    assert data["healthy"] and data["simulated_nodes"]["gpu"] == 4
    lab_dir = state / "lab" / name
    ports = json.loads((lab_dir / "kube" / "kube.json").read_text())["ports"]
    ports["chart_mirror"] = json.loads((lab_dir / "charts" / "mirror.json").read_text())["port"]
    assert any(str(lab_dir) in c for c in _cmdlines())

    status = cli("status")
    assert status.returncode == 0 and json.loads(status.stdout)["kubernetes"]["healthy"]

    down = cli("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert [c for c in _cmdlines() if str(lab_dir) in c] == []
    for port in ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
    assert not lab_dir.exists()
    again = cli("down")
    assert again.returncode == 0 and json.loads(again.stdout)["removed"] == []
    shutil.rmtree(state)

"""Real tier: `sovereign configure <greenfield stack> --lab NAME --cluster` end to end.

The whole site playbook on three lab nodes standing in for ke-staging's management, storage and
GPU nodes: besides the node roles, the management node gets the control plane and the two others
join it as real kubelets, Ready with the design's roles; a second run changes nothing.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from lab.kubeapi import Credentials, KubeApi
from nodeconfig.cluster_greenfield import RECORD
from nodeconfig.configure import plan_target
from stacks.design.node_labels import ROLE, SITE
from tests.lab_session import fresh_lab

pytestmark = pytest.mark.lab
STACK = "ke-staging"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_configure_bootstraps_the_greenfield_cluster_and_a_rerun_changes_nothing(tmp_path) -> None:
    with fresh_lab("gfc", 3) as lab:
        first = invoke("configure", STACK, "--lab", lab.name, "--cluster", "--json")
        assert first.exit_code == 0, first.output[-6000:]
        report = json.loads(first.stdout)
        assert report["ok"] and len(report["hosts"]) == 3
        inventory = plan_target(STACK, lab=lab.name)
        record = inventory.state_dir / RECORD
        assert record.stat().st_mode & 0o777 == 0o600
        children = inventory.inventory["all"]["children"]
        management = next(iter(children["management"]["hosts"].items()))
        pairs = json.loads(record.read_text())["certificates"][management[0]]
        files = {"ca.crt": lab.dir.joinpath("kube", "pki", "ca.crt").read_text(),
                 "admin.crt": pairs["admin"]["cert"], "admin.key": pairs["admin"]["key"]}
        for name, text in files.items():
            fd = os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
        api = KubeApi(Credentials(management[1]["ansible_host"], 6443, tmp_path / "ca.crt",
                                  tmp_path / "admin.crt", tmp_path / "admin.key"))
        deadline, ready = time.monotonic() + 180, {}
        while time.monotonic() < deadline:
            nodes = api.get("/api/v1/nodes")["items"]
            ready = {n["metadata"]["name"]: n["metadata"]["labels"] for n in nodes
                     if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
            if len(ready) == 2:
                break
            time.sleep(3)
        assert sorted(labels[ROLE] for labels in ready.values()) == ["gpu", "storage"], ready
        assert {labels[SITE] for labels in ready.values()} == {inventory.inventory["all"]["vars"]["sovereign_site"]}
        second = invoke("configure", STACK, "--lab", lab.name, "--cluster", "--json")
        assert second.exit_code == 0, second.output[-6000:]
        assert [h["changed"] for h in json.loads(second.stdout)["hosts"]] == [0, 0, 0], second.stdout[-3000:]
        secret = json.loads(record.read_text())["token"].split(".")[1]
        assert secret not in first.output + second.output

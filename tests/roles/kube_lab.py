"""Helpers for the lab tests where real kubelets join a cluster: the node play, running it, waiting."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from lab.nodes import NodeLab
from tests.roles.helpers import tool, tool_env

# container_runtime and kubernetes_node as a site's nodes run them, with the lab's deviations.
PLAY = """
- hosts: "{{ target }}"
  roles:
    - role: container_runtime
      vars:
        container_runtime_sandbox_image: "{{ lab_pause_image }}"
        # overlayfs cannot stack on the node's overlay root (see roles/kubernetes_node/README.md)
        container_runtime_snapshotter: native
        # this machine denies CAP_SYS_RESOURCE even to root: no negative OOM score adjustments
        container_runtime_restrict_oom_score_adj: true
        container_runtime_registry_mirrors: {registry.k8s.io: ["{{ lab_registry_mirror }}"]}
      when: inventory_hostname not in lab_no_runtime | default([])
    - role: kubernetes_node
      vars:
        kubernetes_node_labels: "{{ lab_labels[inventory_hostname] }}"
        kubernetes_node_pod_cidr: "{{ lab_pod_cidrs[inventory_hostname] }}"
        kubernetes_node_ip: "{{ ansible_host }}"
        # the lab's eviction floors: the node's disk is the shared host's (lab/kube_join.py)
        kubernetes_node_kubelet_config: "{{ lab_kubelet_config }}"
        # Without containerd there is none to restart for the CA either.
        kubernetes_node_trust_ca: "{{ inventory_hostname not in lab_no_runtime | default([]) }}"
"""


def run_play(node_lab: NodeLab, work: Path, settings: dict[str, Any], token: str) -> subprocess.CompletedProcess[str]:
    """PLAY on the lab's nodes named in settings["target"]; the bootstrap token goes in a 0600
    file that lives only as long as the run."""
    spec = node_lab.spec()
    assert spec is not None
    (work / "play.yml").write_text(PLAY)
    (work / "settings.json").write_text(json.dumps(settings))
    secrets = work / "secrets.json"
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"kubernetes_node_bootstrap_token": token}, fh)
    try:
        return subprocess.run(
            [tool("ansible-playbook"), "-i", str(spec.inventory), str(work / "play.yml"),
             "-e", f"@{work / 'settings.json'}", "-e", f"@{secrets}"],
            env=tool_env(ANSIBLE_PIPELINING="1"), capture_output=True, text=True, timeout=900, check=False,
        )
    finally:
        secrets.unlink()


def wait_for(what: str, check: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(2)
    pytest.fail(f"{what} not reached within {timeout:.0f} s (last: {last!r})", pytrace=False)

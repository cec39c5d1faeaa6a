"""Real tier: lab LXC nodes become real Kubernetes nodes.

The lab's control plane (the pinned kube-apiserver, controller-manager, scheduler, and kwok)
listens on the lab bridge; the lab's in-country registry serves the pause image the project
compiled itself. container_runtime and kubernetes_node converge two nodes: each joins with a
bootstrap token (TLS bootstrap: client certificate approved and signed by the cluster), registers
with the design's topology labels, turns Ready, and runs a pause pod the scheduler placed there,
pulled through containerd's hosts.toml from the lab registry (the lab's NAT reaches no other
registry). kwok's simulated GPU nodes of the same design join the same cluster: a DaemonSet for the
site's GPU nodes lands on both kinds, a GPU pod on a simulated one. A third node offered a wrong
token, or a cluster of another minor version, fails before anything is installed, with a message
that says so; a rerun over all three changes nothing on the joined two while the third, whose
kubelet rejects its configuration, fails with the kubelet's own words. The token shows up in no
output.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.control_plane import ControlPlane
from lab.image_registry import pause_image
from lab.kube_join import serve_joins, stop_joins
from lab.kubeapi import KubeApi
from lab.nodes import NodeLab
from lab.sim_nodes import ensure_nodes, simulated_nodes
from stacks.design.loader import load_and_design
from stacks.design.node_labels import ROLE, SITE, topology_labels
from stacks.design.sizing import SiteDesign
from tests.lab_session import fresh_lab
from tests.roles.helpers import tool, tool_env
from toolchain import build, pins

pytestmark = pytest.mark.lab

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
        # Without containerd there is none to restart for the CA either.
        kubernetes_node_trust_ca: "{{ inventory_hostname not in lab_no_runtime | default([]) }}"
        # The fault case: one node's kubelet refuses its configuration and never joins.
        kubernetes_node_kubelet_config: "{{ (lab_kubelet_config | default({}))[inventory_hostname] | default({}) }}"
        kubernetes_node_join_timeout: "{{ (lab_join_timeout | default({}))[inventory_hostname] | default(120) }}"
"""
STACK = "ke-staging"  # the real nodes stand in for GPU nodes of this design's first site
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass
class Cluster:
    lab: NodeLab
    api: KubeApi
    settings: dict[str, Any]  # lab.kube_join.serve_joins: server, CA, token, kubelet, registry
    work: Path
    members: list[str]  # nodes that join
    outsider: str  # the node offered a wrong token

    @property
    def token(self) -> str:
        return str(self.settings["bootstrap_token"])


@functools.cache
def design_site() -> SiteDesign:
    return load_and_design(STACK)[1].sites[0]


def _labels(index: int) -> dict[str, str]:
    return topology_labels(design_site().site, "gpu", rack=index, su=1, rail_group=1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if any(build.missing(step) for step in build.STEPS):
        pytest.fail("the pinned tools are not built: run `make tools`", pytrace=False)
    with fresh_lab("k8n", 3) as node_lab:
        try:
            settings = serve_joins(node_lab.name)
            names = [n["name"] for n in json.loads((node_lab.dir / "lab.json").read_text())["nodes"]]
            api = ControlPlane(node_lab.name, node_lab.dir).api()
            yield Cluster(node_lab, api, settings, tmp_path_factory.mktemp("k8n"), names[:2], names[2])
        finally:
            stop_joins(node_lab.name)


def converge(
    cluster: Cluster, target: str, token: str, *, no_runtime: tuple[str, ...] = (), extra: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    spec = cluster.lab.spec()
    assert spec is not None
    s = cluster.settings
    settings = {
        "target": target,
        "lab_no_runtime": list(no_runtime),
        "lab_pause_image": s["pause_image"],
        "lab_registry_mirror": s["registry_mirror"],
        "lab_labels": {n.name: _labels(n.index) for n in spec.nodes},
        "lab_pod_cidrs": s["pod_cidrs"],
        "kubernetes_node_version": s["version"],
        "kubernetes_node_kubelet_source": s["kubelet"],
        "kubernetes_node_kubelet_sha256": s["kubelet_sha256"],
        "kubernetes_node_api_server": s["api_server"],
        "kubernetes_node_ca_cert": s["ca_cert"],
        **(extra or {}),
    }
    (cluster.work / "play.yml").write_text(PLAY)
    (cluster.work / "settings.json").write_text(json.dumps(settings))
    secrets = cluster.work / "secrets.json"
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"kubernetes_node_bootstrap_token": token}, fh)
    try:
        return subprocess.run(
            [tool("ansible-playbook"), "-i", str(spec.inventory), str(cluster.work / "play.yml"),
             "-e", f"@{cluster.work / 'settings.json'}", "-e", f"@{secrets}"],
            env=tool_env(ANSIBLE_PIPELINING="1"), capture_output=True, text=True, timeout=900, check=False,
        )
    finally:
        secrets.unlink()  # the token lives only as long as the run


def recap(out: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    return {m[0]: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m[1:]))) for m in RECAP.findall(out.stdout)}


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def wait_for(what: str, check: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(2)
    pytest.fail(f"{what} not reached within {timeout:.0f} s (last: {last!r})", pytrace=False)


@pytest.fixture(scope="module")
def joined(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    out = converge(cluster, ",".join(cluster.members), cluster.token)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    return out


def test_nodes_are_ready_with_the_design_labels(cluster: Cluster, joined: subprocess.CompletedProcess[str]) -> None:
    def ready_members() -> list[dict[str, Any]] | None:
        nodes = {n["metadata"]["name"]: n for n in cluster.api.get("/api/v1/nodes")["items"]}
        found = [nodes[m] for m in cluster.members if m in nodes and _ready(nodes[m])]
        return found if len(found) == len(cluster.members) else None

    nodes = wait_for("both lab nodes Ready", ready_members)
    for node in nodes:
        index = int(node["metadata"]["name"].rsplit("node", 1)[1])
        labels = node["metadata"]["labels"]
        assert _labels(index).items() <= labels.items(), labels
        info = node["status"]["nodeInfo"]
        assert info["kubeletVersion"] == f"v{pins.KUBERNETES}"
        assert info["containerRuntimeVersion"].startswith("containerd://")
    # A real kubelet, not kwok: the node's client certificate was signed through a CSR.
    csrs = cluster.api.get("/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]
    signed = {c["spec"]["username"] for c in csrs if c["status"].get("certificate")}
    assert any(u.startswith("system:bootstrap:") for u in signed), signed


def test_a_pause_pod_runs_on_each_node_from_the_lab_registry(cluster: Cluster, joined: subprocess.CompletedProcess[str]) -> None:
    for name in cluster.members:
        cluster.api.create(
            "/api/v1/namespaces/default/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"pause-{name}"},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": name},
                    "containers": [{"name": "pause", "image": pause_image()}],
                },
            },
        )

    def running() -> dict[str, str] | None:
        pods = {p["metadata"]["name"]: p for p in cluster.api.get("/api/v1/namespaces/default/pods")["items"]}
        phases = {n: pods[f"pause-{n}"]["status"].get("phase", "") for n in cluster.members if f"pause-{n}" in pods}
        return phases if all(phases.get(n) == "Running" for n in cluster.members) else None

    wait_for("a Running pause pod on each node", running)
    for name in cluster.members:
        pod = cluster.api.get(f"/api/v1/namespaces/default/pods/pause-{name}")
        assert pod["spec"]["nodeName"] == name  # placed by the scheduler, run by that node's kubelet
        assert pod["status"]["podIP"].startswith(f"10.244.{name.rsplit('node', 1)[1]}.")
        images = cluster.lab.ssh(name, "ctr -n k8s.io images ls -q").stdout
        assert pause_image() in images


def test_simulated_gpu_nodes_and_real_nodes_share_one_cluster(
    cluster: Cluster, joined: subprocess.CompletedProcess[str]
) -> None:
    """kwok's simulated GPU nodes of the design beside the real ones: a DaemonSet for the site's
    GPU nodes lands on both kinds; a pod asking for a GPU lands on a simulated node (the lab's
    real nodes have none)."""
    site = design_site()
    ensure_nodes(cluster.api, site, 2)
    gpu_sims = [n["metadata"]["name"] for n in simulated_nodes(cluster.api) if n["metadata"]["labels"][ROLE] == "gpu"]
    assert len(gpu_sims) == 2
    cluster.api.create(
        "/apis/apps/v1/namespaces/default/daemonsets",
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "gpu-node-agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "gpu-node-agent"}},
                "template": {
                    "metadata": {"labels": {"app": "gpu-node-agent"}},
                    "spec": {
                        "nodeSelector": {SITE: site.site, ROLE: "gpu"},
                        "containers": [{"name": "agent", "image": pause_image()}],
                    },
                },
            },
        },
    )
    cluster.api.create(
        "/api/v1/namespaces/default/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "gpu-job"},
            "spec": {
                "containers": [{"name": "job", "image": pause_image(), "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            },
        },
    )

    def placed() -> dict[str, str] | None:
        pods = cluster.api.get("/api/v1/namespaces/default/pods")["items"]
        running = {
            p["spec"].get("nodeName", ""): p["metadata"]["name"]
            for p in pods
            if p["status"].get("phase") == "Running" and p["metadata"]["name"].startswith("gpu-node-agent-")
        }
        gpu_job = next((p for p in pods if p["metadata"]["name"] == "gpu-job"), None)
        if set(running) != {*cluster.members, *gpu_sims} or not gpu_job or gpu_job["status"].get("phase") != "Running":
            return None
        return {"gpu-job": gpu_job["spec"]["nodeName"], **running}

    where = wait_for("the DaemonSet on real and simulated GPU nodes, the GPU pod Running", placed)
    assert where["gpu-job"] in gpu_sims


def test_a_wrong_token_is_a_clear_error(cluster: Cluster) -> None:
    token_id = cluster.token.split(".")[0]
    wrong = f"{token_id}.{'x' * 16}"
    out = converge(cluster, cluster.outsider, wrong, no_runtime=(cluster.outsider,))
    assert out.returncode != 0
    assert "rejected the bootstrap token (401 Unauthorized): it is wrong or has expired" in out.stdout
    assert wrong.split(".")[1] not in out.stdout + out.stderr
    # Refused before anything was installed or started.
    assert cluster.lab.ssh(cluster.outsider, "test -e /usr/local/bin/kubelet").returncode == 1


def test_a_cluster_of_another_minor_version_is_refused(cluster: Cluster) -> None:
    # The roles pinned one minor version behind the lab's API server (the expand case: a
    # partnership's cluster that is not on the pinned version).
    out = converge(
        cluster, cluster.outsider, cluster.token, no_runtime=(cluster.outsider,), extra={"kubernetes_node_version": "1.33.4"}
    )
    assert out.returncode != 0
    refused = "the roles pin kubelet 1.33.4: joining a cluster of another minor version is refused"
    assert f"runs v{pins.KUBERNETES}, {refused}" in out.stdout
    assert cluster.lab.ssh(cluster.outsider, "test -e /usr/local/bin/kubelet").returncode == 1


def test_a_rerun_changes_nothing_while_a_failing_node_reports_its_kubelet(
    cluster: Cluster, joined: subprocess.CompletedProcess[str]
) -> None:
    """One run over all three nodes: the joined two change nothing; the third, whose kubelet
    rejects its configuration, fails with the kubelet's own words, and does not stop the others."""
    # The failing node gets no containerd: its kubelet stops at its configuration, before the runtime.
    out = converge(
        cluster,
        ",".join([*cluster.members, cluster.outsider]),
        cluster.token,
        no_runtime=(cluster.outsider,),
        extra={
            "lab_kubelet_config": {cluster.outsider: {"imageGCHighThresholdPercent": 200}},
            "lab_join_timeout": {cluster.outsider: 20},
        },
    )
    counts = recap(out)
    for name in cluster.members:
        assert counts[name]["changed"] == 0 and counts[name]["failed"] == 0, out.stdout[-4000:]
        # The bootstrap credential is gone from the node once it joined.
        assert cluster.lab.ssh(name, "test -e /etc/kubernetes/bootstrap-kubelet.conf").returncode == 1
    assert counts[cluster.outsider]["failed"] == 1, out.stdout[-5000:]
    message = next((line for line in out.stdout.splitlines() if f"{cluster.outsider} did not join" in line), None)
    assert message, out.stdout[-5000:]
    assert "imageGCHighThresholdPercent" in message, message
    assert cluster.token.split(".")[1] not in out.stdout + out.stderr


def test_tokens_and_keys_appear_in_no_output(cluster: Cluster, joined: subprocess.CompletedProcess[str]) -> None:
    secret = cluster.token.split(".")[1]
    assert secret not in joined.stdout + joined.stderr
    leaked = [p for p in cluster.work.rglob("*") if p.is_file() and secret in p.read_text(errors="replace")]
    assert not leaked

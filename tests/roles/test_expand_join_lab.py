"""Real tier: `sovereign configure` of an expand stack joins the new nodes to an existing cluster.

The lab stands in for a country's existing data centre: its control plane (the pinned binaries,
kwok beside them) listens on the lab bridge, and the lab's first LXC node is already a Kubernetes
node of it (joined before with the kubernetes_node role run directly, as that centre's nodes were).
Before configure touches them, the role offered a wrong bootstrap token on one of the new nodes
fails with a message that says so and installs nothing. `configure de-staging --lab` then runs
against the design's new storage and GPU nodes (the lab's other three): it reads the cluster from
the lab as it would read a real cluster's kubeconfig from the stack secret, checks its version,
creates a short-lived bootstrap token and deletes it afterwards. Two nodes turn Ready with the
design's labels (real kubelets on containerd, client certificates signed through a CSR, the
bootstrap credential gone) and run a pause pod pulled from the lab registry, its IP in the node's
pod CIDR; the third, whose kubelet cannot open its health port, is reported with the kubelet's
own words while the others finish. The existing control plane is not restarted, the existing node
is not touched, the token shows up in no output or artifact, and a second run changes nothing.
kwok's simulated GPU nodes of the design share the cluster with the real ones: a DaemonSet for the
site's GPU nodes lands on both kinds, a GPU pod on a simulated one.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from lab.control_plane import ControlPlane
from lab.image_registry import ImageRegistry, pause_image
from lab.kube_join import KUBELET_CONFIG, prepare_lxc_node
from lab.kubeapi import KubeApi
from lab.nodes import NodeLab
from lab.sim_nodes import ensure_nodes, simulated_nodes
from nodeconfig import cluster_join
from nodeconfig.cluster_join import JoinError, create_bootstrap_token, ensure_bootstrap_rbac, file_sha256
from nodeconfig.configure import plan_target
from stacks.design.loader import load_and_design
from stacks.design.node_labels import RACK, ROLE, SITE, SU
from stacks.design.project import current_project_or_none
from stacks.design.sizing import SiteDesign
from tests.lab_session import fresh_lab
from tests.roles.kube_lab import run_play, wait_for
from toolchain import build, pins

pytestmark = pytest.mark.lab

STACK = "de-staging"  # expand: new GB200 nodes join the centre's existing cluster
TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
TAGS = "container_runtime,kubernetes_node"
KUBELET_STATE = "systemctl show kubelet -p MainPID -p ActiveEnterTimestamp; md5sum /var/lib/kubelet/config.yaml " \
                "/etc/systemd/system/kubelet.service /etc/kubernetes/kubelet.conf"


@dataclass
class Existing:
    lab: NodeLab
    control_plane: ControlPlane
    api: KubeApi
    node: str  # the existing centre's node, joined before configure runs
    new: list[str]  # the design's new storage and GPU nodes (the last one fails to join)
    apiserver: tuple[int, str]  # pid and start time of the existing kube-apiserver
    node_state: str  # the existing node's kubelet: pid, start, configuration digests
    tokens: list[str]  # every token configure created (recorded here to search for leaks)
    runs: list[Any]
    work: Path  # where the role runs by hand keep their play and settings


def _apiserver(control_plane: ControlPlane) -> tuple[int, str]:
    pid = control_plane.daemon("kube-apiserver").pid()
    assert pid is not None
    return pid, Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


@functools.cache
def design_site() -> SiteDesign:
    return load_and_design(STACK)[1].sites[0]


def _play_settings(node_lab: NodeLab, control_plane: ControlPlane, name: str, **extra: Any) -> dict[str, Any]:
    """What tests.roles.kube_lab.PLAY needs to join one lab node to the lab's cluster by hand."""
    spec = node_lab.spec()
    assert spec is not None
    node = spec.find(name)
    assert node is not None
    kubelet = pins.tools_dir() / "bin" / "kubelet"
    return {
        "target": name,
        "lab_pause_image": pause_image(),
        "lab_registry_mirror": ImageRegistry(node_lab.name, node_lab.dir, spec.gateway).mirror_for("registry.k8s.io"),
        "lab_kubelet_config": KUBELET_CONFIG,
        "lab_labels": {name: {SITE: design_site().site, ROLE: "gpu"}},
        "lab_pod_cidrs": {name: f"10.244.{node.index}.0/24"},
        "kubernetes_node_version": pins.KUBERNETES,
        "kubernetes_node_kubelet_source": str(kubelet),
        "kubernetes_node_kubelet_sha256": file_sha256(kubelet),
        "kubernetes_node_api_server": control_plane.server,
        "kubernetes_node_ca_cert": control_plane.pki_dir.joinpath("ca.crt").read_text(),
        **extra,
    }


def _join_existing_node(node_lab: NodeLab, control_plane: ControlPlane, api: KubeApi, name: str, work: Path) -> None:
    """The existing centre's node: joined with the kubernetes_node role directly, as it was
    joined long before this project came (its own token, deleted once it has joined)."""
    spec = node_lab.spec()
    assert spec is not None
    registry = ImageRegistry(node_lab.name, node_lab.dir, spec.gateway)
    registry.up()
    registry.seed()
    ensure_bootstrap_rbac(api)
    prepare_lxc_node(node_lab, name)
    token = create_bootstrap_token(api)
    out = run_play(node_lab, work, _play_settings(node_lab, control_plane, name), token)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    cluster_join.delete_bootstrap_token(api, token)


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Existing]:
    if any(build.missing(step) for step in build.STEPS):
        pytest.fail("the pinned tools are not built: run `make tools`", pytrace=False)
    with fresh_lab("xj", 4) as node_lab:
        spec = node_lab.spec()
        assert spec is not None
        control_plane = ControlPlane(node_lab.name, node_lab.dir, address=spec.gateway)
        try:
            control_plane.up()
            api = control_plane.api()
            names = [n.name for n in spec.nodes]
            work = tmp_path_factory.mktemp("xj")
            _join_existing_node(node_lab, control_plane, api, names[0], work)
            wait_for("the existing node Ready", lambda: _ready(api, names[0]))
            # The fault: the last new node's kubelet finds its health port taken.
            blocker = "systemd-run --unit=lab-port-10248 python3 -m http.server 10248 --bind 127.0.0.1"
            assert node_lab.ssh(names[3], blocker).returncode == 0
            yield Existing(node_lab, control_plane, api, names[0], names[1:], _apiserver(control_plane),
                           node_lab.ssh(names[0], KUBELET_STATE).stdout, [], [], work)
        finally:
            ImageRegistry(node_lab.name, node_lab.dir, "").down()
            if control_plane.exists():
                control_plane.down()


def _ready(api: KubeApi, name: str) -> bool:
    nodes = {n["metadata"]["name"]: n for n in api.get("/api/v1/nodes")["items"]}
    node = nodes.get(name)
    return node is not None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
    )


def configure(existing: Existing, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, Any]:
    real = cluster_join.create_bootstrap_token

    def recorded(api: KubeApi, *args: Any, **kwargs: Any) -> str:
        token = real(api, *args, **kwargs)
        existing.tokens.append(token)
        return token

    monkeypatch.setattr(cluster_join, "create_bootstrap_token", recorded)
    result = CliRunner().invoke(
        cli, ["configure", STACK, "--lab", existing.lab.name, "--tags", TAGS, "--json", *extra], catch_exceptions=False
    )
    report = json.loads(result.stdout)
    report["_output"] = result.stdout + (result.stderr or "")
    existing.runs.append(report)
    return report


@dataclass
class Refused:
    out: subprocess.CompletedProcess[str]
    wrong: str  # the token offered: a live token's id with another secret
    kubelet_after: int  # `test -e` of the kubelet binary right after the refusal (1: absent)


@pytest.fixture(scope="module")
def refused(existing: Existing) -> Refused:
    """The role run directly on the failing new node, before configure touches it, with a wrong
    token. Recorded here, not in the test, so configure's later install cannot hide what this left."""
    node = existing.new[2]
    token = create_bootstrap_token(existing.api)
    try:
        wrong = f"{token.split('.')[0]}.{'x' * 16}"
        # No containerd either: whatever the node has afterwards, the join put there.
        settings = _play_settings(existing.lab, existing.control_plane, node, lab_no_runtime=[node])
        out = run_play(existing.lab, existing.work, settings, wrong)
    finally:
        cluster_join.delete_bootstrap_token(existing.api, token)
    return Refused(out, wrong, existing.lab.ssh(node, "test -e /usr/local/bin/kubelet").returncode)


@pytest.fixture(scope="module")
def first_run(existing: Existing, refused: Refused) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return configure(existing, monkeypatch, "--limit", "storage:gpu")


def test_a_cluster_of_another_minor_version_is_refused_before_any_node_changes(
    existing: Existing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pins, "KUBERNETES", "1.33.4")
    result = CliRunner().invoke(cli, ["configure", STACK, "--lab", existing.lab.name, "--tags", TAGS, "--json"])
    assert result.exit_code == 1, result.output
    message = json.loads(result.stdout)["problems"][0]["message"]
    assert re.search(r"runs v1\.34\.\d+, the roles pin kubelet 1\.33\.4: joining a cluster of another minor "
                     r"version is refused", message), message
    target = plan_target(STACK, lab=existing.lab.name)
    assert not (target.state_dir / "runs").exists()  # no run started
    secrets = existing.api.get("/api/v1/namespaces/kube-system/secrets")["items"]
    assert not [s for s in secrets if s.get("type") == "bootstrap.kubernetes.io/token"]


def test_a_wrong_token_is_a_clear_error_and_installs_nothing(refused: Refused) -> None:
    assert refused.out.returncode != 0
    assert "rejected the bootstrap token (401 Unauthorized): it is wrong or has expired" in refused.out.stdout
    assert refused.wrong.split(".")[1] not in refused.out.stdout + refused.out.stderr
    assert refused.kubelet_after == 1  # refused before anything was installed or started


def test_the_new_nodes_join_ready_with_the_design_labels(existing: Existing, first_run: dict[str, Any]) -> None:
    hosts = {h["host"]: h for h in first_run["hosts"]}
    assert existing.node not in hosts  # the existing centre's node is no part of the run
    joined, failing = existing.new[:2], existing.new[2]
    for name in joined:
        status = hosts.get(name, {}).get("status")
        assert status in ("changed", "ok"), (first_run["shards"], hosts, first_run["_output"][-3000:])
    wait_for("the new nodes Ready", lambda: all(_ready(existing.api, n) for n in joined))
    inventory = plan_target(STACK, lab=existing.lab.name).inventory["all"]["children"]
    design = {**inventory["storage"]["hosts"], **inventory["gpu"]["children"]["su01"]["hosts"]}
    for name, role in zip(joined, ("storage", "gpu")):
        labels = existing.api.get(f"/api/v1/nodes/{name}")["metadata"]["labels"]
        assert labels[SITE] == "garching-1" and labels[ROLE] == role, labels
        assert labels[RACK] == f"{design[name]['sovereign_rack']:04d}", labels
        assert (labels.get(SU) == "su01") == (role == "gpu"), labels
        info = existing.api.get(f"/api/v1/nodes/{name}")["status"]["nodeInfo"]
        assert info["kubeletVersion"] == f"v{pins.KUBERNETES}", info
        assert info["containerRuntimeVersion"].startswith("containerd://"), info
        # The bootstrap credential is gone from the node once it joined.
        assert existing.lab.ssh(name, "test -e /etc/kubernetes/bootstrap-kubelet.conf").returncode == 1
    # Real kubelets, not kwok: their client certificates were signed through CSRs of the bootstrap token.
    csrs = existing.api.get("/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]
    signed = {c["spec"]["username"] for c in csrs if c["status"].get("certificate")}
    assert {f"system:bootstrap:{t.split('.')[0]}" for t in existing.tokens} & signed, signed
    # The node whose kubelet failed is reported with the kubelet's own reason.
    assert hosts[failing]["status"] == "failed"
    reason = " ".join(hosts[failing]["messages"])
    assert "did not join" in reason and "healthz" in reason and "address already in use" in reason, reason
    assert not first_run["ok"]


def test_a_pause_pod_runs_on_each_new_node(existing: Existing, first_run: dict[str, Any]) -> None:
    joined = existing.new[:2]
    for name in joined:
        existing.api.create("/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pause-{name}"},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": name},
                     "containers": [{"name": "pause", "image": pause_image()}]},
        })

    def running() -> bool:
        pods = {p["metadata"]["name"]: p for p in existing.api.get("/api/v1/namespaces/default/pods")["items"]}
        return all(pods.get(f"pause-{n}", {}).get("status", {}).get("phase") == "Running" for n in joined)

    wait_for("a Running pause pod on each new node", running)
    spec = existing.lab.spec()
    assert spec is not None
    for name in joined:
        pod = existing.api.get(f"/api/v1/namespaces/default/pods/pause-{name}")
        assert pod["spec"]["nodeName"] == name  # placed by the scheduler, run by that node's kubelet
        node = spec.find(name)
        assert node is not None
        assert pod["status"]["podIP"].startswith(f"10.244.{node.index}."), pod["status"]  # the node's pod CIDR
        # Pulled through containerd's hosts.toml from the lab registry: the lab's NAT reaches no other.
        assert pause_image() in existing.lab.ssh(name, "ctr -n k8s.io images ls -q").stdout


def test_the_existing_cluster_and_node_are_untouched(existing: Existing, first_run: dict[str, Any]) -> None:
    assert _apiserver(existing.control_plane) == existing.apiserver  # not restarted
    assert existing.lab.ssh(existing.node, KUBELET_STATE).stdout == existing.node_state
    # The token configure made is gone again; the bindings the lab had are all there are.
    secrets = existing.api.get("/api/v1/namespaces/kube-system/secrets")["items"]
    assert not [s for s in secrets if s.get("type") == "bootstrap.kubernetes.io/token"]
    bindings = existing.api.get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")["items"]
    ours = {b["metadata"]["name"] for b in bindings
            if b["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "sovereign"}
    assert ours == set(cluster_join.BINDINGS)


def test_a_second_run_changes_nothing(existing: Existing, first_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    joined = existing.new[:2]
    report = configure(existing, monkeypatch, "--limit", ",".join(joined))
    assert report["ok"], report["_output"][-4000:]
    assert {h["host"]: h["changed"] for h in report["hosts"]} == dict.fromkeys(joined, 0)
    assert _apiserver(existing.control_plane) == existing.apiserver


def test_simulated_gpu_nodes_and_real_nodes_share_one_cluster(existing: Existing, first_run: dict[str, Any]) -> None:
    """kwok's simulated GPU nodes of the design beside the real ones: a DaemonSet for the site's
    GPU nodes lands on both kinds; a pod asking for a GPU lands on a simulated node (the lab's
    real nodes have none)."""
    site = design_site()
    ensure_nodes(existing.api, site, 2)
    gpu_sims = {n["metadata"]["name"] for n in simulated_nodes(existing.api) if n["metadata"]["labels"][ROLE] == "gpu"}
    assert len(gpu_sims) == 2
    existing.api.create("/apis/apps/v1/namespaces/default/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "gpu-node-agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "gpu-node-agent"}},
            "template": {
                "metadata": {"labels": {"app": "gpu-node-agent"}},
                "spec": {"nodeSelector": {SITE: site.site, ROLE: "gpu"},
                         "containers": [{"name": "agent", "image": pause_image()}]},
            },
        },
    })
    existing.api.create("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-job"},
        "spec": {"containers": [{"name": "job", "image": pause_image(),
                                 "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
    })
    # The real GPU nodes: the existing centre's and the new one that joined (the storage node is not one).
    real_gpu = {existing.node, existing.new[1]}

    def placed() -> dict[str, Any] | None:
        pods = existing.api.get("/api/v1/namespaces/default/pods")["items"]
        agents = {p["spec"].get("nodeName", "") for p in pods
                  if p["metadata"]["name"].startswith("gpu-node-agent-") and p["status"].get("phase") == "Running"}
        job = next((p for p in pods if p["metadata"]["name"] == "gpu-job"), None)
        if not (real_gpu | gpu_sims) <= agents or not job or job["status"].get("phase") != "Running":
            return None
        return {"agents": agents, "gpu-job": job["spec"]["nodeName"]}

    where = wait_for("the DaemonSet on real and simulated GPU nodes, the GPU pod Running", placed)
    labels = {n["metadata"]["name"]: n["metadata"]["labels"] for n in existing.api.get("/api/v1/nodes")["items"]}
    # Only the site's GPU nodes: not the storage node, not the simulated management nodes.
    assert all(labels[a][ROLE] == "gpu" and labels[a][SITE] == site.site for a in where["agents"]), where
    assert existing.new[0] not in where["agents"]
    assert where["gpu-job"] in gpu_sims


def test_the_token_appears_in_no_output_or_artifact(
    existing: Existing, refused: Refused, first_run: dict[str, Any]
) -> None:
    assert existing.tokens
    secrets = {t.split(".")[1] for t in [*existing.tokens, refused.wrong]}
    project = current_project_or_none()
    roots = [plan_target(STACK, lab=existing.lab.name).state_dir, existing.work]
    if project is not None:
        roots.append(project.state_dir / "configure" / f"lab-{existing.lab.name}")
    leaked = []
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file()):
            text = path.read_text(errors="replace")
            leaked += [str(path) for s in secrets if s in text]
    for report in existing.runs:
        leaked += [f"output of run {n}" for n, s in enumerate(secrets) if s in report["_output"]]
    assert not leaked, leaked
    # Nothing of the run is left on memory-backed storage either.
    assert not list(Path("/dev/shm").glob("sovereign-join-*"))


def test_join_session_checks_the_version_before_creating_anything(existing: Existing) -> None:
    endpoint = cluster_join.parse_kubeconfig(existing.control_plane.kubeconfig.read_text(), "lab kubeconfig")
    with pytest.raises(JoinError, match=r"the roles pin kubelet 1\.33\.4"):
        with cluster_join.join_session(endpoint, kubelet=pins.tools_dir() / "bin" / "kubelet", pinned="1.33.4"):
            pytest.fail("no join for another minor version")

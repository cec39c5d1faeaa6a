"""Real tier: `sovereign configure` of an expand stack joins the new nodes to an existing cluster.

The lab stands in for a country's existing data centre: its control plane (the pinned binaries)
listens on the lab bridge, and the lab's first LXC node is already a Kubernetes node of it (joined
before, as that centre's nodes were). `configure de-staging --lab` then runs against the design's
new storage and GPU nodes (the lab's other three): it reads the cluster from the lab as it would
read a real cluster's kubeconfig from the stack secret, checks its version, creates a short-lived
bootstrap token and deletes it afterwards. Two nodes turn Ready with the design's labels and run a
pause pod; the third, whose kubelet cannot open its health port, is reported with the kubelet's
own words while the others finish. The existing control plane is not restarted, the existing node
is not touched, the token shows up in no output or artifact, and a second run changes nothing.
"""

from __future__ import annotations

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
from lab.kube_join import prepare_lxc_node
from lab.kubeapi import KubeApi
from lab.nodes import NodeLab
from nodeconfig import cluster_join
from nodeconfig.cluster_join import JoinError, create_bootstrap_token, ensure_bootstrap_rbac, file_sha256
from nodeconfig.configure import plan_target
from stacks.design.node_labels import RACK, ROLE, SITE, SU
from stacks.design.project import current_project_or_none
from tests.lab_session import fresh_lab
from tests.roles.helpers import tool, tool_env
from tests.roles.test_kubernetes_node_lab import PLAY, wait_for
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


def _apiserver(control_plane: ControlPlane) -> tuple[int, str]:
    pid = control_plane.daemon("kube-apiserver").pid()
    assert pid is not None
    return pid, Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


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
    kubelet = pins.tools_dir() / "bin" / "kubelet"
    node = spec.find(name)
    assert node is not None
    settings = {
        "target": name,
        "lab_pause_image": pause_image(),
        "lab_registry_mirror": registry.mirror_for("registry.k8s.io"),
        "lab_labels": {name: {SITE: "garching-1", ROLE: "gpu"}},
        "lab_pod_cidrs": {name: f"10.244.{node.index}.0/24"},
        "kubernetes_node_version": pins.KUBERNETES,
        "kubernetes_node_kubelet_source": str(kubelet),
        "kubernetes_node_kubelet_sha256": file_sha256(kubelet),
        "kubernetes_node_api_server": control_plane.server,
        "kubernetes_node_ca_cert": control_plane.pki_dir.joinpath("ca.crt").read_text(),
        "kubernetes_node_bootstrap_token": token,
    }
    (work / "play.yml").write_text(PLAY)
    vars_file = work / "settings.json"
    vars_file.write_text(json.dumps(settings))
    try:
        out = subprocess.run(
            [tool("ansible-playbook"), "-i", str(spec.inventory), str(work / "play.yml"), "-e", f"@{vars_file}"],
            env=tool_env(ANSIBLE_PIPELINING="1"), capture_output=True, text=True, timeout=900, check=False,
        )
    finally:
        vars_file.unlink()
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
            _join_existing_node(node_lab, control_plane, api, names[0], tmp_path_factory.mktemp("xj"))
            wait_for("the existing node Ready", lambda: _ready(api, names[0]))
            # The fault: the last new node's kubelet finds its health port taken.
            blocker = "systemd-run --unit=lab-port-10248 python3 -m http.server 10248 --bind 127.0.0.1"
            assert node_lab.ssh(names[3], blocker).returncode == 0
            yield Existing(node_lab, control_plane, api, names[0], names[1:], _apiserver(control_plane),
                           node_lab.ssh(names[0], KUBELET_STATE).stdout, [], [])
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


@pytest.fixture(scope="module")
def first_run(existing: Existing) -> dict[str, Any]:
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


def test_the_token_appears_in_no_output_or_artifact(existing: Existing, first_run: dict[str, Any]) -> None:
    assert existing.tokens
    secrets = {t.split(".")[1] for t in existing.tokens}
    project = current_project_or_none()
    roots = [plan_target(STACK, lab=existing.lab.name).state_dir]
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

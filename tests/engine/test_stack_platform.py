"""Real tier: the platform layer — GPU Operator, Network Operator, monitoring, tenants and the
sovereignty admission policies — installed by the real engine from the lab's chart mirror (the
real upstream charts) onto the lab's API server with 64 simulated GPU nodes. Every check reads the
API server. Runs after test_stack_on_lab.py (same lab), whose last test leaves the stack up.

Simulated nodes run no containers: the charts' own workloads (operators, NFD) are scheduled and
reach Running as kwok plays their kubelet, but the operands the operators would create at run
time (driver, toolkit, device plugin, DCGM exporter daemonsets) never appear, since no operator
process really runs. The tests check only what the stack itself creates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.kubeapi import ApiError, Credentials, KubeApi
from lab.pki import LabCA
from stacks.design.charts import GPU_OPERATOR, KUBE_PROMETHEUS_STACK, NETWORK_OPERATOR
from stacks.design.loader import load_and_design
from tests.engine.test_stack_on_lab import STACK, sovereign, up_json, wait_for

pytestmark = pytest.mark.lab

MIRROR = "registry.ai.go.ke/"
PLATFORM_NAMESPACES = ("gpu-operator", "nvidia-network-operator", "monitoring")


def _pod(name: str, image: str, gpus: int = 0) -> dict:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": image, "resources": {"limits": limits}}]}}


@pytest.fixture(scope="module")
def platform(kube_lab):
    return up_json(kube_lab)


def test_the_operators_are_installed_with_the_partnerships_values(kube_lab, platform):
    api = kube_lab.api
    _, planned = load_and_design(STACK)
    site = planned.sites[0]
    outputs = platform["outputs"]["platform"][site.site]
    assert outputs["gpu"]["chart"] == f"{GPU_OPERATOR.name} {GPU_OPERATOR.version}"
    assert outputs["gpu"]["repository"].startswith("https://127.0.0.1:")  # the lab's mirror, not upstream
    for crd in ("clusterpolicies.nvidia.com", "nicclusterpolicies.mellanox.com", "nodefeaturerules.nfd.k8s-sigs.io",
                "prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"):
        assert api.exists(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"), crd

    policy = api.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")["spec"]
    assert policy["driver"]["enabled"] is True  # ke-staging: the operator owns the driver
    assert policy["driver"]["rdma"]["enabled"] is True
    assert policy["driver"]["upgradePolicy"]["maxParallelUpgrades"] == 1
    assert policy["mig"]["strategy"] == "single"
    assert policy["dcgmExporter"]["serviceMonitor"]["enabled"] is True
    repositories = [v["repository"] for v in policy.values() if isinstance(v, dict) and "repository" in v]
    assert repositories and all(r.startswith("registry.ai.go.ke/nvcr/") for r in repositories), repositories

    nic = api.get("/apis/mellanox.com/v1alpha1/nicclusterpolicies/nic-cluster-policy")["spec"]
    resources = json.loads(nic["rdmaSharedDevicePlugin"]["config"])["configList"]
    assert [r["resourceName"] for r in resources] == [f"rail-{i}" for i in range(site.fabric.rails)]
    assert all(len(r["selectors"]["ifNames"]) == 1 for r in resources)  # the port table's name per rail
    assert all(r["selectors"]["linkTypes"] == ["infiniband"] for r in resources)
    assert nic["ofedDriver"]["repository"].startswith("registry.ai.go.ke/nvcr/")


def test_the_charts_workloads_run_where_their_selectors_say(kube_lab, platform):
    api = kube_lab.api
    nodes = api.get("/api/v1/nodes")["items"]
    deployments = api.get("/apis/apps/v1/namespaces/gpu-operator/deployments")["items"]
    deployments += api.get("/apis/apps/v1/namespaces/nvidia-network-operator/deployments")["items"]
    names = {d["metadata"]["name"] for d in deployments}
    assert "gpu-operator" in names and any("network-operator" in n for n in names)
    assert any("node-feature-discovery-master" in n for n in names)
    for deployment in deployments:
        assert deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"], deployment["metadata"]["name"]
    workers = [d for d in api.get("/apis/apps/v1/namespaces/gpu-operator/daemonsets")["items"]
               if "node-feature-discovery-worker" in d["metadata"]["name"]]
    assert len(workers) == 1
    assert workers[0]["status"]["numberReady"] == workers[0]["status"]["desiredNumberScheduled"] == len(nodes)
    # Every image any platform pod names is one of the country's mirrors (the admission policy
    # would have refused the others, failing the `up`).
    images = {c["image"] for ns in PLATFORM_NAMESPACES for p in api.get(f"/api/v1/namespaces/{ns}/pods")["items"]
              for c in p["spec"]["containers"] + p["spec"].get("initContainers", [])}
    assert images and all(i.startswith(MIRROR) for i in images), images
    running = [p for p in api.get("/api/v1/namespaces/gpu-operator/pods")["items"] if p["status"]["phase"] == "Running"]
    assert len(running) >= len(nodes)


def test_monitoring_reports_what_the_mirrored_chart_lacks_and_installs_the_rules(kube_lab, platform):
    _, planned = load_and_design(STACK)
    monitoring = platform["outputs"]["platform"][planned.sites[0].site]["monitoring"]
    # shared/charts' kube-prometheus-stack names four dependencies its charts/ folder does not carry,
    # so Helm cannot render it: the stack says so rather than pretending.
    assert monitoring["chart"] == f"{KUBE_PROMETHEUS_STACK.name} {KUBE_PROMETHEUS_STACK.version}"
    assert monitoring["installed"] is False
    assert set(monitoring["missing_charts"]) == {"kube-state-metrics", "prometheus-node-exporter", "grafana",
                                                 "prometheus-windows-exporter"}
    rule = kube_lab.api.get("/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheusrules/sovereign-gpu-fabric")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"GpuXidError", "GpuFellOffTheBus", "GpuRowRemapFailure", "GpuTooHot", "NvlinkErrors",
            "InfinibandLinkDown", "InfinibandErrors"} <= alerts
    assert monitoring["alert_rules"] == len(alerts)


def test_the_api_server_enforces_the_sovereignty_rules(kube_lab, platform):
    api = kube_lab.api
    ns = "tenant-knbs"
    with pytest.raises(ApiError) as foreign:
        api.create(f"/api/v1/namespaces/{ns}/pods", _pod("foreign", "docker.io/library/busybox:1.36"))
    assert foreign.value.status == 403 and "sovereign-allowed-registries" in str(foreign.value)
    assert "docker.io/library/busybox:1.36" in str(foreign.value)
    # A look-alike host is not a mirror: prefixes end at a '/'.
    with pytest.raises(ApiError):
        api.create(f"/api/v1/namespaces/{ns}/pods", _pod("lookalike", "registry.ai.go.ke.evil.example/nvcr/x:1"))
    with pytest.raises(ApiError) as deployment:
        api.create(f"/apis/apps/v1/namespaces/{ns}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "quay.io/org/web:1"}]}}}})
    assert deployment.value.status == 403
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "public"},
               "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}
    with pytest.raises(ApiError) as public:
        api.create(f"/api/v1/namespaces/{ns}/services", service)
    assert public.value.status == 403 and "sovereign-no-public-endpoints" in str(public.value)
    service["metadata"]["labels"] = {"sovereign.io/public-endpoint": "approved"}
    api.create(f"/api/v1/namespaces/{ns}/services", service)
    api.delete(f"/api/v1/namespaces/{ns}/services/public")


def _tenant_user(kube_lab, user: str, tenant: str) -> KubeApi:
    """A real client certificate from the lab CA, as the site's identity provider would vouch for a user."""
    cp = kube_lab.lab.control_plane
    pair = LabCA(cp.pki_dir, kube_lab.name).issue(f"user-{user}", user, organization=f"sovereign.io:tenant:{tenant}")
    admin = cp.admin_credentials()
    return KubeApi(Credentials(admin.host, admin.port, admin.ca, pair.cert, pair.key))


def test_a_tenant_gets_its_quota_and_only_its_namespace(kube_lab, platform):
    partnership, _ = load_and_design(STACK)
    knbs = next(t for t in partnership.tenants if t.name == "knbs")
    alice = _tenant_user(kube_lab, "alice", "knbs")
    image = "registry.ai.go.ke/nvcr/nvidia/cuda:12.4.1-base-ubuntu22.04"
    alice.create("/api/v1/namespaces/tenant-knbs/pods", _pod("train-0", image, gpus=4))
    with pytest.raises(ApiError) as over:
        alice.create("/api/v1/namespaces/tenant-knbs/pods", _pod("train-1", image, gpus=knbs.gpu_quota))
    assert over.value.status == 403 and "exceeded quota: gpu-quota" in str(over.value)
    limit_range = kube_lab.api.get("/api/v1/namespaces/tenant-knbs/pods/train-0")["spec"]["containers"][0]["resources"]
    assert limit_range["requests"]["memory"] == "4Gi"  # the LimitRange's default request
    # RBAC keeps alice out of another tenant's namespace...
    with pytest.raises(ApiError) as other:
        alice.create("/api/v1/namespaces/tenant-uon/pods", _pod("sneak", image))
    assert other.value.status == 403
    # ...and where someone granted her rights by mistake, the admission policy still does.
    api = kube_lab.api
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch"}})
    try:
        api.create("/apis/rbac.authorization.k8s.io/v1/namespaces/scratch/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "oops"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]})
        with pytest.raises(ApiError) as outside:
            alice.create("/api/v1/namespaces/scratch/pods", _pod("outside", image))
        assert outside.value.status == 403 and "sovereign-tenant-namespace" in str(outside.value)
    finally:
        api.delete("/api/v1/namespaces/scratch")
        api.delete("/api/v1/namespaces/tenant-knbs/pods/train-0")


def test_artifacts_lists_exactly_the_images_the_applied_objects_reference(kube_lab, platform):
    from stacks.artifacts import images_in

    result = sovereign("artifacts", STACK, "--lab", kube_lab.name, "--allow-unapproved", "--json", env=kube_lab.env)
    kube_lab.transcript.append(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout)
    api = kube_lab.api
    objects: list = []
    for ns in PLATFORM_NAMESPACES:
        for kind in ("deployments", "daemonsets", "statefulsets"):
            objects += api.get(f"/apis/apps/v1/namespaces/{ns}/{kind}")["items"]
        objects += api.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"]
    objects.append(api.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")["spec"])
    objects.append(api.get("/apis/mellanox.com/v1alpha1/nicclusterpolicies/nic-cluster-policy")["spec"])
    applied = {image for obj in objects for image in images_in(obj)}
    assert set(found["images"]) == applied
    assert any(i.startswith("registry.ai.go.ke/nvcr/nvidia/gpu-operator:") for i in found["images"])
    assert any("/driver:" in i for i in found["images"])  # an operand: the operator's driver container
    charts = {c["name"]: c for c in found["charts"]}
    assert charts[GPU_OPERATOR.name]["version"] == GPU_OPERATOR.version and len(charts[GPU_OPERATOR.name]["digest"]) == 64
    assert {p["package"] for p in found["packages"]} >= {"containerd", "jq", "pciutils"}


def test_a_second_up_changes_nothing_and_destroy_leaves_nothing(kube_lab, platform):
    again = sovereign("preview", STACK, "--lab", kube_lab.name, "--allow-unapproved", "--expect-no-changes", "--json",
                      env=kube_lab.env)
    kube_lab.transcript.append(again.stdout + again.stderr)
    assert again.returncode == 0, again.stdout + again.stderr
    destroy = sovereign("destroy", STACK, "--lab", kube_lab.name, "--yes", "--json", env=kube_lab.env)
    kube_lab.transcript.append(destroy.stdout + destroy.stderr)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    api = kube_lab.api
    for ns in (*PLATFORM_NAMESPACES, "tenant-knbs", "tenant-uon", "tenant-kemri"):
        wait_for(lambda ns=ns: not api.exists(f"/api/v1/namespaces/{ns}"), 180, f"namespace {ns} to go")
    crds = [c["metadata"]["name"] for c in api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]]
    assert crds == [], crds
    policies = api.get("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies")["items"]
    assert policies == []
    leftovers = [r["metadata"]["name"] for r in api.get("/apis/rbac.authorization.k8s.io/v1/clusterroles")["items"]
                 if "operator" in r["metadata"]["name"] or "node-feature-discovery" in r["metadata"]["name"]]
    assert leftovers == []


def test_an_object_someone_else_manages_is_reported_never_clobbered(kube_lab):
    """Expand sites already run things: a namespace made by hand (here, as Helm would label it)
    conflicts with the stack's; `up` stops naming it, and the object keeps its owner's values."""
    api = kube_lab.api
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "nvidia-network-operator", "labels": {"app.kubernetes.io/managed-by": "Helm"}}})
    try:
        result = sovereign("up", STACK, "--lab", kube_lab.name, "--allow-unapproved", "--json", env=kube_lab.env)
        kube_lab.transcript.append(result.stdout + result.stderr)
        assert result.returncode == 1, result.stdout + result.stderr
        message = json.loads(result.stdout)["problems"][0]["message"]
        assert "konza-1-network-ns" in message and "conflict" in message.lower()
        assert "Traceback" not in result.stdout + result.stderr
        labels = api.get("/api/v1/namespaces/nvidia-network-operator")["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    finally:
        api.delete("/api/v1/namespaces/nvidia-network-operator")
        wait_for(lambda: not api.exists("/api/v1/namespaces/nvidia-network-operator"), 120, "the namespace to go")
    converged = sovereign("up", STACK, "--lab", kube_lab.name, "--allow-unapproved", "--json", env=kube_lab.env)
    assert converged.returncode == 0, converged.stdout + converged.stderr
    destroy = sovereign("destroy", STACK, "--lab", kube_lab.name, "--yes", "--json", env=kube_lab.env)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr


def test_a_chart_missing_from_the_mirror_is_a_clear_error(tmp_path: Path):
    """The stack's own check, against a real mirror that lacks one chart."""
    import shutil

    from lab.chart_mirror import ChartMirror
    from lab.chart_repo import default_source
    from stacks.chart_index import ChartUnavailable, locate
    from stacks.design.charts import ChartSource

    source = default_source()
    assert source is not None, "the real charts (shared/charts or $SOVEREIGN_CHARTS) are needed"
    seed = tmp_path / "seed"
    shutil.copytree(source / GPU_OPERATOR.name, seed / GPU_OPERATOR.name)
    mirror = ChartMirror(tmp_path / "lab", "mirrortest")
    mirror.up(seed)
    try:
        repo = ChartSource(mirror.url, str(mirror.ca), True)
        assert locate(GPU_OPERATOR, repo).endswith(f"{GPU_OPERATOR.name}-{GPU_OPERATOR.version}.tgz")
        with pytest.raises(ChartUnavailable) as missing:
            locate(NETWORK_OPERATOR, repo)
        message = str(missing.value)
        assert f"chart {NETWORK_OPERATOR.name} {NETWORK_OPERATOR.version} is not in the chart mirror {mirror.url}" in message
    finally:
        mirror.down()


def test_the_policy_pack_fails_a_preview_that_would_use_an_unmirrored_registry(kube_lab, tmp_path: Path):
    """A country project whose partnership forgot the registry.k8s.io mirror: the chart's NFD image
    would come from outside, and the mandatory policy pack stops the preview naming rule and resource."""
    import sys

    project = tmp_path / "country"
    made = sovereign("init", str(project), "--json", env=kube_lab.env)
    assert made.returncode == 0, made.stdout + made.stderr
    (project / ".venv").symlink_to(Path(sys.executable).parents[1])  # the project's virtualenv: this one
    text = (Path(__file__).resolve().parents[2] / "countries" / f"Pulumi.{STACK}.yaml").read_text()
    text = "\n".join(line for line in text.splitlines()
                     if "upstream: registry.k8s.io" not in line and not line.startswith("encryptionsalt"))
    (project / "countries" / f"Pulumi.{STACK}.yaml").write_text(text + "\n")
    refused = sovereign("--project", str(project), "preview", STACK, "--lab", kube_lab.name, "--allow-unapproved",
                        "--json", env=kube_lab.env)
    kube_lab.transcript.append(refused.stdout + refused.stderr)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    message = json.loads(refused.stdout)["problems"][0]["message"]
    assert message.startswith("the sovereignty policy pack refused the plan:")
    assert "policy images-from-mirrors" in message and "registry.k8s.io/nfd/node-feature-discovery" in message
    assert "Traceback" not in refused.stdout + refused.stderr

    # A partnership whose residency list leaves out its own country fails before anything else.
    text = (project / "countries" / f"Pulumi.{STACK}.yaml").read_text().replace("data_residency: [KE]",
                                                                                 "data_residency: [DE]")
    (project / "countries" / f"Pulumi.{STACK}.yaml").write_text(text)
    outside = sovereign("--project", str(project), "preview", STACK, "--lab", kube_lab.name, "--allow-unapproved",
                        "--json", env=kube_lab.env)
    assert outside.returncode == 1, outside.stdout + outside.stderr
    message = json.loads(outside.stdout)["problems"][0]["message"]
    assert "policy data-residency (the stack): site konza-1 is in KE, outside the data residency list (DE)" in message

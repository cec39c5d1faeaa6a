"""Fast tier: the platform layer's values logic (pure). The lab tier (tests/engine/
test_stack_platform.py) proves the same values reach a real API server through the real engine."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from lab.chart_repo import default_source, package
from stacks.chart_index import _values_of
from stacks.design import admission
from stacks.design.alert_rules import gpu_alert_rules
from stacks.design.charts import (
    CHARTS,
    GPU_OPERATOR,
    allowed_image_prefixes,
    chart_source,
    mirror_image,
    mirror_values,
    registry_mirrors,
)
from stacks.design.hcas import HCA_LAYOUTS
from stacks.design.loader import load, load_and_design
from stacks.design.partnership import DriverMode, GpuDriver
from stacks.design.platform_values import gpu_operator_values, network_operator_values, nic_cluster_policy

MIRRORS = {"nvcr.io": "registry.example.gov/nvcr", "docker.io": "registry.example.gov/hub",
           "quay.io": "registry.example.gov/quay", "registry.k8s.io": "registry.example.gov/k8s"}


@pytest.mark.parametrize(("image", "expected"), [
    ("nvcr.io/nvidia/gpu-operator:v26.3.3", "registry.example.gov/nvcr/nvidia/gpu-operator:v26.3.3"),
    ("busybox:1.36", "registry.example.gov/hub/library/busybox:1.36"),
    ("grafana/grafana:12", "registry.example.gov/hub/grafana/grafana:12"),
    ("ghcr.io/org/x:1", "ghcr.io/org/x:1"),  # no mirror for ghcr.io here: left alone, and the policy refuses it
    ("localhost:5000/x", "localhost:5000/x"),
])
def test_an_image_moves_to_its_registrys_mirror(image, expected):
    assert mirror_image(image, MIRRORS) == expected


def test_every_image_spelling_in_values_is_rewritten_and_only_changed_leaves_returned():
    defaults = {
        "operator": {"repository": "nvcr.io/nvidia", "image": "gpu-operator", "version": "v1"},
        "prometheus": {"image": {"registry": "quay.io", "repository": "prometheus/prometheus", "tag": "v3"}},
        "sidecar": {"image": "docker.io/kiwigrid/k8s-sidecar:1.30", "imagePullPolicy": "IfNotPresent"},
        "untouched": {"repository": "ghcr.io/org", "replicas": 2},
    }
    assert mirror_values(defaults, MIRRORS) == {
        "operator": {"repository": "registry.example.gov/nvcr/nvidia"},
        "prometheus": {"image": {"registry": "registry.example.gov/quay"}},
        "sidecar": {"image": "registry.example.gov/hub/kiwigrid/k8s-sidecar:1.30"},
    }


def _chart_values(name: str) -> dict:
    source = default_source()
    assert source is not None, "the real charts (shared/charts or $SOVEREIGN_CHARTS) are needed"
    files = {}
    with tarfile.open(fileobj=io.BytesIO(package(Path(source) / name)), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(("/values.yaml", "/Chart.yaml")):
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read()
    return _values_of(name, files)


def test_the_gpu_operator_values_follow_the_partnership():
    _, planned = load_and_design("ke-staging")
    site = planned.sites[0]
    defaults = _chart_values(GPU_OPERATOR.name)
    operator = gpu_operator_values(site, GpuDriver(), defaults, MIRRORS, monitoring=True)
    assert operator["driver"]["enabled"] and operator["toolkit"]["enabled"]
    assert operator["driver"]["repository"] == "registry.example.gov/nvcr/nvidia"
    assert operator["node-feature-discovery"]["image"]["repository"] == "registry.example.gov/k8s/nfd/node-feature-discovery"
    assert "version" not in operator["driver"]  # the release's own default unless the site pins one
    host = gpu_operator_values(site, GpuDriver(mode=DriverMode.HOST, version="570.195.03", mig_strategy="none"),
                               defaults, MIRRORS, monitoring=False)
    # The host owns driver and toolkit (roles/nvidia_host): the operator must not install either.
    assert host["driver"]["enabled"] is False and host["toolkit"]["enabled"] is False
    assert host["driver"]["version"] == "570.195.03"
    assert host["migManager"]["enabled"] is False
    assert host["dcgmExporter"]["serviceMonitor"]["enabled"] is False


def test_the_network_operator_leaves_nfd_to_the_gpu_operator_and_gets_one_rdma_resource_per_rail():
    _, planned = load_and_design("ke-staging")
    site = planned.sites[0]
    values = network_operator_values(_chart_values("network-operator"), MIRRORS)
    assert values["nfd"] == {"enabled": False, "deployNodeFeatureRules": True}
    assert values["operator"]["repository"] == "registry.example.gov/nvcr/nvidia/cloud-native"
    policy = nic_cluster_policy(site, MIRRORS)
    assert policy["ofedDriver"]["repository"] == "registry.example.gov/nvcr/nvidia/mellanox"
    assert "ofedDriver" not in nic_cluster_policy(site, MIRRORS, ofed="inbox")
    resources = json.loads(policy["rdmaSharedDevicePlugin"]["config"])["configList"]
    # GB200's compute tray: the four compute ports of the published port table, one rail each.
    assert [(r["resourceName"], r["selectors"]["ifNames"]) for r in resources] == [
        (f"rail-{port.rail}", [port.interface]) for port in HCA_LAYOUTS["gb200-nvl72"].compute()]
    assert site.fabric.rails == len(resources) == 4
    b200 = replace(site, platform="hgx-b200")  # no published port table: one shared resource
    shared = json.loads(nic_cluster_policy(b200, MIRRORS)["rdmaSharedDevicePlugin"]["config"])["configList"]
    assert [r["resourceName"] for r in shared] == ["rdma-shared"] and "ifNames" not in shared[0]["selectors"]


def test_charts_come_from_the_mirror_when_one_is_named():
    partnership = load("ke-staging")
    assert chart_source(GPU_OPERATOR, partnership.sovereignty).repo == "https://charts.ai.go.ke"
    lab = chart_source(GPU_OPERATOR, partnership.sovereignty, mirror_override="https://127.0.0.1:1/", ca_file="/ca")
    assert (lab.repo, lab.ca_file, lab.mirrored) == ("https://127.0.0.1:1", "/ca", True)
    public = chart_source(GPU_OPERATOR, partnership.sovereignty.model_copy(update={"chart_mirror": None}))
    assert public.repo == GPU_OPERATOR.upstream and not public.mirrored
    assert {c.name for c in CHARTS} == {"gpu-operator", "network-operator", "kube-prometheus-stack"}


def test_the_admission_policy_allows_exactly_the_mirror_prefixes():
    partnership = load("ke-staging")
    prefixes = allowed_image_prefixes(partnership.sovereignty)
    assert prefixes == sorted(f"{m}/" for m in registry_mirrors(partnership.sovereignty).values())
    spec = admission.allowed_registries_policy(prefixes)
    foreign = next(v["expression"] for v in spec["variables"] if v["name"] == "foreign")
    assert all(f'"{p}"' in foreign for p in prefixes)
    assert set(admission.policies(prefixes)) == {"sovereign-allowed-registries", "sovereign-no-public-endpoints",
                                                 "sovereign-tenant-namespace"}


def test_alert_rules_cover_the_gpu_and_fabric_faults():
    rules = gpu_alert_rules(gpus_per_node=8)
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {"GpuXidError", "GpuFellOffTheBus", "GpuUncorrectableEcc", "GpuRowRemapFailure", "GpuTooHot",
            "NvlinkErrors", "NvlinkDown", "InfinibandLinkDown", "InfinibandErrors"} <= set(alerts)
    assert alerts["GpuMissing"]["expr"].endswith("< 8")
    assert all(r["labels"]["severity"] in {"critical", "warning"} for r in alerts.values())


def _problems(data: dict) -> list:
    import yaml

    from stacks.design.loader import InputError, parse

    with pytest.raises(InputError) as info:
        parse(yaml.safe_dump({"config": {"sovereign:partnership": data}}, sort_keys=False), "p.yaml")
    prefix = "config.sovereign:partnership."
    for problem in info.value.problems:
        assert problem.field.startswith(prefix), problem
    return [type(p)(p.file, p.line, p.field.removeprefix(prefix), p.message) for p in info.value.problems]


def _ke() -> dict:
    import copy

    import yaml

    text = (Path(__file__).resolve().parents[2] / "countries" / "Pulumi.ke-staging.yaml").read_text()
    return copy.deepcopy(yaml.safe_load(text)["config"]["sovereign:partnership"])


def test_tenants_are_validated_each_at_its_own_field():
    data = _ke()
    data["tenants"].append({"name": "Bad_Name", "title": "x", "kind": "agency", "gpu_quota": 1})
    data["tenants"].append({"name": "fine", "title": "x", "kind": "agency", "gpu_quota": "8"})
    fields = {p.field for p in _problems(data)}
    assert fields == {"tenants[3].name", "tenants[4].gpu_quota"}  # not a DNS label; a quoted number
    data = _ke()
    data["tenants"].append(dict(data["tenants"][0]))  # the same name twice
    [problem] = _problems(data)
    assert problem.field == "tenants[3].name" and "already used by tenants[0]" in problem.message


def test_the_gpu_driver_block_is_validated():
    data = _ke()
    data["sites"][0]["gpu_driver"] = {"mode": "kernel", "version": "latest"}
    fields = {p.field for p in _problems(data)}
    assert {"sites[0].gpu_driver.mode", "sites[0].gpu_driver.version"} <= fields


def test_a_chart_mirror_must_be_https():
    data = _ke()
    data["sovereignty"]["chart_mirror"] = "http://charts.example"
    assert [p.field for p in _problems(data)] == ["sovereignty.chart_mirror"]

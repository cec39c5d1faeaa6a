"""The engine's steps → the changes a reviewer reads: which steps count, who owns them, the hash."""

from __future__ import annotations

from stacks.design.preview import NOT_REQUESTED, EnginePreview, by_component, change_from_step

STACK = "urn:pulumi:ke-staging::sovereign::"
SITE = "sovereign:site:Site$sovereign:cluster:Cluster"
TENANTS = f"{STACK}{SITE}$sovereign:platform:Tenants$kubernetes:core/v1:Namespace::tenant-knbs"
QUOTA = f"{STACK}{SITE}$sovereign:platform:Tenants$kubernetes:core/v1:ResourceQuota::tenant-knbs-gpus"
GPU = f"{STACK}{SITE}$sovereign:platform:GpuPlatform$kubernetes:helm.sh/v3:Release::gpu-operator"
CLUSTER = f"{STACK}{SITE}$kubernetes:core/v1:ConfigMap::plan-of-record"
PROVIDER = f"{STACK}pulumi:providers:kubernetes::default"


def test_only_steps_that_change_something_are_kept():
    for op in ("same", "read", "refresh", "create-replacement", "delete-replaced", "discard-replaced"):
        assert change_from_step(GPU, op, ["values"]) is None
    update = change_from_step(QUOTA, "update", ["spec", "metadata", "spec"])
    assert update is not None and update.properties == ("metadata", "spec")
    create = change_from_step(TENANTS, "create", ["anything"])
    assert create is not None and create.properties == ()  # a new object: every property is new


def test_each_change_belongs_to_the_innermost_project_component():
    quota = change_from_step(QUOTA, "update", ["spec"])
    assert quota is not None
    assert quota.component == ("platform", "Tenants")
    assert (quota.kind, quota.name) == ("ResourceQuota", "tenant-knbs-gpus")
    configmap = change_from_step(CLUSTER, "create", None)
    assert configmap is not None and configmap.component == ("cluster", "Cluster")
    provider = change_from_step(PROVIDER, "create", None)
    assert provider is not None and provider.component == ("stack", "Stack") and provider.kind == "kubernetes"
    component = change_from_step(f"{STACK}{SITE}$sovereign:platform:Tenants::konza-1-tenants", "create", None)
    assert component is not None and component.component == ("platform", "Tenants")


def test_grouped_by_layer_in_build_order_with_counts_per_operation():
    steps = [(PROVIDER, "create"), (GPU, "replace"), (TENANTS, "create"), (QUOTA, "delete"), (CLUSTER, "update"),
             (TENANTS.replace("knbs", "kemri"), "create")]
    changes = [c for urn, op in steps if (c := change_from_step(urn, op, ["data"])) is not None]
    groups = by_component(changes)
    assert [(g.layer, g.component) for g in groups] == [
        ("cluster", "Cluster"), ("platform", "GpuPlatform"), ("platform", "Tenants"), ("stack", "Stack")]
    tenants = groups[2]
    assert tenants.counts == {"create": 2, "delete": 1}  # only the operations that occur
    assert [c.op for c in tenants.changes] == ["create", "create", "delete"]
    assert groups[1].counts == {"replace": 1} and groups[1].changes[0].properties == ("data",)


def test_the_preview_hash_is_of_the_change_set_not_its_order():
    a = change_from_step(TENANTS, "create", None)
    b = change_from_step(QUOTA, "update", ["spec"])
    assert a is not None and b is not None
    one, other = EnginePreview("included", [a, b]), EnginePreview("included", [b, a])
    assert one.digest == other.digest and len(one.digest) == 64
    changed = change_from_step(QUOTA, "update", ["metadata", "spec"])
    assert changed is not None and EnginePreview("included", [a, changed]).digest != one.digest
    assert EnginePreview("included", []).digest != one.digest  # "nothing to change" is a view too
    assert NOT_REQUESTED.digest == "" and EnginePreview("unavailable", reason="no lab").digest == ""
    assert one.to_json()["changes"] == {"create": 1, "update": 1}


def test_changed_properties_come_from_the_most_precise_account_and_never_carry_values():
    detailed = change_from_step(QUOTA, "update", ["spec"], ['spec.hard["requests.nvidia.com/gpu"]'])
    assert detailed is not None and detailed.properties == ('spec.hard["requests.nvidia.com/gpu"]',)
    # Kubernetes' server-side apply gives no diff in a preview: the inputs that differ are named
    old = {"metadata": {"name": "gpu-quota"}, "spec": {"hard": {"requests.nvidia.com/gpu": "256"}}, "__inputs": 1}
    new = {"metadata": {"name": "gpu-quota"}, "spec": {"hard": {"requests.nvidia.com/gpu": "192"}}, "__inputs": 2}
    named = change_from_step(QUOTA, "update", None, None, old, new)
    assert named is not None and named.properties == ("spec",)
    assert "192" not in str(named.to_dict()) and "256" not in str(named.to_dict())

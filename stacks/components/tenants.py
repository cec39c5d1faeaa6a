"""Tenants: a namespace per agency or university, its GPU quota, defaults, admins and isolation.

Each tenant's namespace `tenant-<name>` carries a ResourceQuota on `requests.nvidia.com/gpu`
(the API server rejects a pod that would exceed it), a LimitRange (so a pod without requests
still counts against CPU and memory), RoleBindings giving its admins and its group
(`sovereign.io:tenant:<name>`) the built-in `admin` role there only, and NetworkPolicies that
deny all traffic except within the namespace and to the cluster's DNS.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from stacks.design.admission import TENANT_GROUP_PREFIX, TENANT_LABEL
from stacks.design.partnership import Tenant


def tenant_namespace(tenant: str) -> str:
    return f"tenant-{tenant}"


@dataclass
class TenantsArgs:
    tenants: list[Tenant]


class Tenants(pulumi.ComponentResource):
    summary: pulumi.Output[dict]

    def __init__(self, name: str, args: TenantsArgs, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:platform:Tenants", name, None, opts)
        meta = k8s.meta.v1.ObjectMetaArgs
        for tenant in args.tenants:
            ns_name = tenant_namespace(tenant.name)
            labels = {"app.kubernetes.io/managed-by": "sovereign", TENANT_LABEL: tenant.name}
            child = pulumi.ResourceOptions(parent=self, provider=provider)
            ns = k8s.core.v1.Namespace(
                f"{name}-{tenant.name}",
                metadata=meta(name=ns_name, labels={**labels, "pod-security.kubernetes.io/enforce": "baseline"},
                              annotations={"sovereign.io/title": tenant.title, "sovereign.io/kind": tenant.kind.value}),
                opts=child,
            )
            inside = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[ns])
            k8s.core.v1.ResourceQuota(
                f"{name}-{tenant.name}-gpu-quota",
                metadata=meta(name="gpu-quota", namespace=ns_name, labels=labels),
                spec=k8s.core.v1.ResourceQuotaSpecArgs(hard={"requests.nvidia.com/gpu": str(tenant.gpu_quota)}),
                opts=inside,
            )
            k8s.core.v1.LimitRange(
                f"{name}-{tenant.name}-defaults",
                metadata=meta(name="defaults", namespace=ns_name, labels=labels),
                spec=k8s.core.v1.LimitRangeSpecArgs(limits=[k8s.core.v1.LimitRangeItemArgs(
                    type="Container",
                    default_request={"cpu": "1", "memory": "4Gi"},
                    default={"cpu": "4", "memory": "16Gi"},
                )]),
                opts=inside,
            )
            subjects = [k8s.rbac.v1.SubjectArgs(kind="Group", name=f"{TENANT_GROUP_PREFIX}{tenant.name}",
                                                api_group="rbac.authorization.k8s.io")]
            subjects += [k8s.rbac.v1.SubjectArgs(kind="User", name=admin, api_group="rbac.authorization.k8s.io")
                         for admin in tenant.admins]
            k8s.rbac.v1.RoleBinding(
                f"{name}-{tenant.name}-admins",
                metadata=meta(name="tenant-admins", namespace=ns_name, labels=labels),
                role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="admin"),
                subjects=subjects,
                opts=inside,
            )
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{tenant.name}-default-deny",
                metadata=meta(name="default-deny", namespace=ns_name, labels=labels),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                                                         policy_types=["Ingress", "Egress"]),
                opts=inside,
            )
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{tenant.name}-same-namespace-and-dns",
                metadata=meta(name="same-namespace-and-dns", namespace=ns_name, labels=labels),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                    policy_types=["Ingress", "Egress"],
                    ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())])],
                    egress=[
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())]),
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=[k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                match_labels={"kubernetes.io/metadata.name": "kube-system"}))],
                            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")]),
                    ],
                ),
                opts=inside,
            )
        self.summary = pulumi.Output.from_input({
            t.name: {"namespace": tenant_namespace(t.name), "title": t.title, "kind": t.kind.value,
                     "gpu_quota": t.gpu_quota, "admins": len(t.admins)}
            for t in args.tenants
        })
        self.register_outputs({"summary": self.summary})

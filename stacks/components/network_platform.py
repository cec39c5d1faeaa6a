"""NetworkPlatform: the NVIDIA Network Operator and the NicClusterPolicy derived from the fabric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.components.chart_release import chart, namespace
from stacks.design.charts import NETWORK_OPERATOR, ChartSource
from stacks.design.platform_values import NETWORK_NAMESPACE


@dataclass
class NetworkPlatformArgs:
    site: str
    source: ChartSource
    values: dict[str, Any]
    policy: dict[str, Any]  # NicClusterPolicy spec
    fabric: str
    rails: int
    depends_on: list[pulumi.Resource]


class NetworkPlatform(pulumi.ComponentResource):
    summary: pulumi.Output[dict]

    def __init__(self, name: str, args: NetworkPlatformArgs, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:platform:NetworkPlatform", name, None, opts)
        ns = namespace(NETWORK_NAMESPACE, f"{name}-ns", provider, self, privileged=True,
                       labels={"sovereign.io/site": args.site})
        release = chart(f"{name}-network-operator", NETWORK_OPERATOR, args.source, ns, args.values, provider, self,
                        args.depends_on)
        k8s.apiextensions.CustomResource(
            f"{name}-nic-cluster-policy",
            api_version="mellanox.com/v1alpha1",
            kind="NicClusterPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="nic-cluster-policy",
                                                labels={"app.kubernetes.io/managed-by": "sovereign"}),
            spec=args.policy,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[release]),
        )
        self.summary = pulumi.Output.from_input({
            "chart": f"{NETWORK_OPERATOR.name} {NETWORK_OPERATOR.version}",
            "namespace": NETWORK_NAMESPACE,
            "fabric": args.fabric,
            "rails": args.rails,
            "ofed": "container" if "ofedDriver" in args.policy else "inbox",
        })
        self.register_outputs({"summary": self.summary})

"""Cluster: the site's Kubernetes API as a provider, its system namespace and the plan of record.

The plan of record (the site's design summary and its digest) is a ConfigMap in
`sovereign-system`, so anyone with cluster access can see what the cluster was built to be.
Nodes are deliberately not Pulumi resources: a 100k-GPU site has 25k nodes, and the stack must
stay fast at that size. Their topology labels come from the design (stacks/design/node_labels.py)
and are set at join (real nodes) or creation (the lab's simulated nodes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

SYSTEM_NAMESPACE = "sovereign-system"
PLAN_CONFIGMAP = "plan-of-record"


def plan_digest(summary: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of the site's design summary."""
    canonical = json.dumps(summary, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class ClusterArgs:
    site: str
    kubeconfig: pulumi.Input[str]  # a secret: it holds the credentials
    summary: dict[str, Any]  # the site's design summary (stacks/design/summary.py)


class Cluster(pulumi.ComponentResource):
    provider: k8s.Provider
    namespace: pulumi.Output[str]
    summary: pulumi.Output[dict]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:cluster:Cluster", name, None, opts)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(args.kubeconfig),
            # One field manager for every object the stack owns, so a rerun is a no-op.
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        children = pulumi.ResourceOptions(parent=self, provider=self.provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-system",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SYSTEM_NAMESPACE,
                labels={"app.kubernetes.io/managed-by": "sovereign", "sovereign.io/site": args.site},
            ),
            opts=children,
        )
        digest = plan_digest(args.summary)
        k8s.core.v1.ConfigMap(
            f"{name}-plan-of-record",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=PLAN_CONFIGMAP,
                namespace=namespace.metadata.name,
                labels={"app.kubernetes.io/managed-by": "sovereign"},
                annotations={"sovereign.io/plan-digest": digest},
            ),
            data={
                "site": args.site,
                "digest": digest,
                "summary.json": json.dumps(args.summary, indent=2, sort_keys=True, default=str),
            },
            opts=children,
        )
        self.namespace = namespace.metadata.name
        self.summary = pulumi.Output.from_input(
            {"site": args.site, "namespace": SYSTEM_NAMESPACE, "plan_configmap": PLAN_CONFIGMAP, "plan_digest": digest}
        )
        self.register_outputs({"summary": self.summary})

"""SovereigntyPolicy: the partnership's sovereignty rules enforced by the API server itself, as
native ValidatingAdmissionPolicies (no extra chart, nothing to keep running)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.design.admission import EXEMPT_NAMESPACES


@dataclass
class SovereigntyPolicyArgs:
    policies: dict[str, dict[str, Any]]  # name -> ValidatingAdmissionPolicy spec
    sovereignty: dict[str, Any]  # residency, egress, export controls, mirrors: reported as outputs


class SovereigntyPolicy(pulumi.ComponentResource):
    summary: pulumi.Output[dict]
    resources: list[pulumi.Resource]

    def __init__(self, name: str, args: SovereigntyPolicyArgs, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:platform:SovereigntyPolicy", name, None, opts)
        arv1 = k8s.admissionregistration.v1
        self.resources = []
        for policy_name, spec in args.policies.items():
            labels = {"app.kubernetes.io/managed-by": "sovereign"}
            policy = arv1.ValidatingAdmissionPolicy(
                f"{name}-{policy_name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, labels=labels),
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            binding = arv1.ValidatingAdmissionPolicyBinding(
                f"{name}-{policy_name}-binding",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, labels=labels),
                spec={
                    "policyName": policy_name,
                    "validationActions": ["Deny"],
                    "matchResources": {"namespaceSelector": {"matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": EXEMPT_NAMESPACES}]}},
                },
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[policy]),
            )
            self.resources += [policy, binding]
        self.summary = pulumi.Output.from_input({"admission_policies": sorted(args.policies), **args.sovereignty})
        self.register_outputs({"summary": self.summary})

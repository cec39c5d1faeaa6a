"""The sovereignty rules as ValidatingAdmissionPolicy specs (CEL), enforced by the API server.

Pure data built from the partnership; stacks/components/sovereignty_policy.py applies them, and
the policy pack (policy/) checks the same rules before anything is created.
"""

from __future__ import annotations

import json
from typing import Any

PUBLIC_ENDPOINT_LABEL = "sovereign.io/public-endpoint"  # value "approved": a reviewed exception
TENANT_LABEL = "sovereign.io/tenant"
TENANT_GROUP_PREFIX = "sovereign.io:tenant:"
WORKLOADS = ["pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs"]
# The control plane's own images come from the cluster's bootstrap, not from workloads the stack runs.
EXEMPT_NAMESPACES = ["kube-system"]


def _cel_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def allowed_registries_policy(prefixes: list[str]) -> dict[str, Any]:
    allowed = _cel_list(prefixes)
    pod_spec = ("object.kind == 'Pod' ? object.spec : "
                "(object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)")
    images = ("variables.spec.containers.map(c, c.image) + "
              "(has(variables.spec.initContainers) ? variables.spec.initContainers.map(c, c.image) : []) + "
              "(has(variables.spec.ephemeralContainers) ? variables.spec.ephemeralContainers.map(c, c.image) : [])")
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [
            {"apiGroups": ["", "apps", "batch"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
             "resources": WORKLOADS},
        ]},
        "variables": [
            {"name": "spec", "expression": pod_spec},
            {"name": "images", "expression": images},
            {"name": "foreign", "expression": f"variables.images.filter(i, !{allowed}.exists(p, i.startsWith(p)))"},
        ],
        "validations": [{
            "expression": "size(variables.foreign) == 0",
            "messageExpression": ("'images must come from the country\\'s registry mirrors (" + ", ".join(prefixes)
                                  + "); not: ' + variables.foreign.join(', ')"),
            "reason": "Forbidden",
        }],
    }


def public_endpoints_policy() -> dict[str, Any]:
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services"]},
        ]},
        "validations": [{
            "expression": (f"!(object.spec.type in ['LoadBalancer', 'NodePort']) || "
                           f"(has(object.metadata.labels) && '{PUBLIC_ENDPOINT_LABEL}' in object.metadata.labels && "
                           f"object.metadata.labels['{PUBLIC_ENDPOINT_LABEL}'] == 'approved')"),
            "message": (f"a LoadBalancer or NodePort service is a public endpoint: it needs the label "
                        f"{PUBLIC_ENDPOINT_LABEL}=approved, set after review"),
            "reason": "Forbidden",
        }],
    }


def tenant_namespace_policy() -> dict[str, Any]:
    in_tenant = f"request.userInfo.groups.exists(g, g.startsWith('{TENANT_GROUP_PREFIX}'))"
    own = (f"namespaceObject != null && has(namespaceObject.metadata.labels) && "
           f"'{TENANT_LABEL}' in namespaceObject.metadata.labels && "
           f"request.userInfo.groups.exists(g, g == '{TENANT_GROUP_PREFIX}' + namespaceObject.metadata.labels['{TENANT_LABEL}'])")
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [
            {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE", "DELETE"],
             "resources": ["*"], "scope": "Namespaced"},
        ]},
        "validations": [{
            "expression": f"!({in_tenant}) || ({own})",
            "message": "a tenant's users may change objects only in their own tenant's namespace",
            "reason": "Forbidden",
        }],
    }


def policies(prefixes: list[str]) -> dict[str, dict[str, Any]]:
    """name -> ValidatingAdmissionPolicy spec, every rule of the partnership's sovereignty block."""
    return {
        "sovereign-allowed-registries": allowed_registries_policy(prefixes),
        "sovereign-no-public-endpoints": public_endpoints_policy(),
        "sovereign-tenant-namespace": tenant_namespace_policy(),
    }

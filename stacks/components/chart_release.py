"""One pinned chart from the stack's chart repository, in its own namespace (shared by the platform
components, so each installs its chart the same way)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.design.charts import ChartPin, ChartSource


def namespace(name: str, resource: str, provider: k8s.Provider, parent: pulumi.Resource, *,
              privileged: bool = False, labels: dict[str, str] | None = None) -> k8s.core.v1.Namespace:
    extra = {"pod-security.kubernetes.io/enforce": "privileged"} if privileged else {}
    return k8s.core.v1.Namespace(
        resource,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name, labels={"app.kubernetes.io/managed-by": "sovereign", **extra, **(labels or {})}),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )


CHART_RECORD_LABEL = "sovereign.io/record"  # value "chart": where an installed chart came from


def chart(resource: str, pin: ChartPin, source: ChartSource, ns: k8s.core.v1.Namespace, values: dict[str, Any],
          provider: k8s.Provider, parent: pulumi.Resource, depends_on: list[pulumi.Resource] | None = None,
          ) -> k8s.helm.v4.Chart:
    """The chart, and beside it a ConfigMap recording which chart, version and repository it came
    from: readable by anyone with cluster access, and what the policy pack checks (a chart is a
    component whose inputs policy packs do not see)."""
    k8s.core.v1.ConfigMap(
        f"{resource}-source",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"chart-{pin.name}", namespace=ns.metadata.name,
            labels={"app.kubernetes.io/managed-by": "sovereign", CHART_RECORD_LABEL: "chart"}),
        data={"chart": pin.name, "version": pin.version, "repository": source.repo, "upstream": pin.upstream},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
    return k8s.helm.v4.Chart(
        resource,
        chart=pin.name,
        version=pin.version,
        namespace=ns.metadata.name,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(
            repo=source.repo, ca_file=pulumi.FileAsset(source.ca_file) if source.ca_file else None),
        values=values,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[ns, *(depends_on or [])]),
    )

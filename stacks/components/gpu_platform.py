"""GpuPlatform: the NVIDIA GPU Operator (with its Node Feature Discovery) from the pinned chart.

The operator's ClusterPolicy carries the partnership's choices (stacks/design/platform_values.py);
the operands it creates at run time (driver, toolkit, device plugin, DCGM exporter daemonsets)
are the operator's, not the stack's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.components.chart_release import chart, namespace
from stacks.design.charts import GPU_OPERATOR, ChartSource
from stacks.design.platform_values import GPU_NAMESPACE


@dataclass
class GpuPlatformArgs:
    site: str
    source: ChartSource
    values: dict[str, Any]
    depends_on: list[pulumi.Resource]


class GpuPlatform(pulumi.ComponentResource):
    summary: pulumi.Output[dict]

    def __init__(self, name: str, args: GpuPlatformArgs, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:platform:GpuPlatform", name, None, opts)
        # The driver and toolkit daemonsets run privileged: the namespace must admit them.
        ns = namespace(GPU_NAMESPACE, f"{name}-ns", provider, self, privileged=True,
                       labels={"sovereign.io/site": args.site})
        self.chart = chart(f"{name}-gpu-operator", GPU_OPERATOR, args.source, ns, args.values, provider, self,
                           args.depends_on)
        driver = args.values["driver"]
        self.summary = pulumi.Output.from_input({
            "chart": f"{GPU_OPERATOR.name} {GPU_OPERATOR.version}",
            "repository": args.source.repo,
            "namespace": GPU_NAMESPACE,
            "driver": "operator" if driver["enabled"] else "host",
            "driver_version": driver.get("version") or "chart default",
            "mig_strategy": args.values["mig"]["strategy"],
            "gpudirect_rdma": driver["rdma"]["enabled"],
        })
        self.register_outputs({"summary": self.summary})

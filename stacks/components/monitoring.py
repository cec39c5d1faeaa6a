"""Monitoring: kube-prometheus-stack from the pinned chart, with the project's GPU and fabric
alert rules (stacks/design/alert_rules.py).

Helm refuses to render a chart whose Chart.yaml names dependencies its package lacks, even
disabled ones. When the mirrored kube-prometheus-stack is such a package, the stack still
installs the monitoring CRDs it needs (ServiceMonitor, PodMonitor, PrometheusRule, taken from the
package's own `crds` subchart) and its rules, warns, and reports the Prometheus stack as not
installed with the missing charts named: the site then seeds them and reruns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.components.chart_release import chart, namespace
from stacks.design.charts import KUBE_PROMETHEUS_STACK, ChartSource
from stacks.design.platform_values import MONITORING_NAMESPACE

NEEDED_CRDS = ("crd-servicemonitors.yaml", "crd-podmonitors.yaml", "crd-prometheusrules.yaml")


@dataclass
class MonitoringArgs:
    site: str
    source: ChartSource
    values: dict[str, Any]
    rules: dict[str, Any]  # PrometheusRule spec
    missing: tuple[str, ...]  # dependencies absent from the package: Helm cannot render it
    crds: dict[str, str]  # the package's CRD files, path -> YAML


class Monitoring(pulumi.ComponentResource):
    summary: pulumi.Output[dict]
    ready: pulumi.Resource  # what objects of the monitoring CRDs must wait for

    def __init__(self, name: str, args: MonitoringArgs, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovereign:platform:Monitoring", name, None, opts)
        # node-exporter mounts the host's /proc and /sys: privileged namespace.
        ns = namespace(MONITORING_NAMESPACE, f"{name}-ns", provider, self, privileged=True,
                       labels={"sovereign.io/site": args.site})
        if args.missing:
            pulumi.log.warn(
                f"{KUBE_PROMETHEUS_STACK.name} {KUBE_PROMETHEUS_STACK.version} in the {args.source.describe()} lacks "
                f"the charts it depends on ({', '.join(args.missing)}), so Helm cannot render it: Prometheus, "
                "Alertmanager and Grafana are NOT installed; the monitoring CRDs and alert rules are. Seed those "
                "charts into the package's charts/ folder (`helm dependency build`) and run `up` again.",
                resource=self,
            )
            needed = [text for path, text in sorted(args.crds.items()) if path.rsplit("/", 1)[-1] in NEEDED_CRDS]
            self.ready = k8s.yaml.v2.ConfigGroup(f"{name}-crds", yaml="\n---\n".join(needed),
                                                 opts=pulumi.ResourceOptions(parent=self, provider=provider))
        else:
            self.ready = chart(f"{name}-kube-prometheus-stack", KUBE_PROMETHEUS_STACK, args.source, ns, args.values,
                               provider, self)
        k8s.apiextensions.CustomResource(
            f"{name}-gpu-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="sovereign-gpu-fabric", namespace=MONITORING_NAMESPACE,
                                                labels={"app.kubernetes.io/managed-by": "sovereign"}),
            spec=args.rules,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.ready]),
        )
        enabled = [key for key in ("kubeStateMetrics", "nodeExporter", "grafana") if args.values[key]["enabled"]]
        self.summary = pulumi.Output.from_input({
            "chart": f"{KUBE_PROMETHEUS_STACK.name} {KUBE_PROMETHEUS_STACK.version}",
            "namespace": MONITORING_NAMESPACE,
            "installed": not args.missing,
            "missing_charts": list(args.missing),
            "subcharts": enabled if not args.missing else [],
            "alert_rules": sum(len(g["rules"]) for g in args.rules["groups"]),
        })
        self.register_outputs({"summary": self.summary})

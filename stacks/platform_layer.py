"""The platform layer of one site's cluster, in dependency order: sovereignty policy first (so
the API server checks every workload the charts create), monitoring (its CRDs carry the GPU
Operator's ServiceMonitor), the GPU Operator (its NFD carries the Network Operator's feature
rules), the Network Operator, the tenants."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from stacks import chart_index
from stacks.components.gpu_platform import GpuPlatform, GpuPlatformArgs
from stacks.components.monitoring import Monitoring, MonitoringArgs
from stacks.components.network_platform import NetworkPlatform, NetworkPlatformArgs
from stacks.components.sovereignty_policy import SovereigntyPolicy, SovereigntyPolicyArgs
from stacks.components.tenants import Tenants, TenantsArgs
from stacks.design import admission, platform_values
from stacks.design.alert_rules import gpu_alert_rules
from stacks.design.catalog import PLATFORMS
from stacks.design.charts import (
    GPU_OPERATOR,
    KUBE_PROMETHEUS_STACK,
    NETWORK_OPERATOR,
    ChartPin,
    ChartSource,
    allowed_image_prefixes,
    chart_source,
    registry_mirrors,
)
from stacks.design.partnership import Partnership, Site
from stacks.design.sizing import SiteDesign

MIRROR_ENV = "SOVEREIGN_CHART_MIRROR"  # set by `--lab`: the lab's mirror stands in for the site's
MIRROR_CA_ENV = "SOVEREIGN_CHART_MIRROR_CA"


@dataclass(frozen=True)
class ChartSettings:
    mirror_override: str | None
    ca_file: str | None

    @classmethod
    def from_environment(cls, config: pulumi.Config) -> ChartSettings:
        return cls(os.environ.get(MIRROR_ENV) or None,
                   os.environ.get(MIRROR_CA_ENV) or config.get("chartMirrorCa") or None)

    def source(self, pin: ChartPin, partnership: Partnership) -> ChartSource:
        return chart_source(pin, partnership.sovereignty, mirror_override=self.mirror_override, ca_file=self.ca_file)


def sovereignty_outputs(partnership: Partnership) -> dict[str, object]:
    sov = partnership.sovereignty
    return {
        "data_residency": sov.data_residency,
        "registries": registry_mirrors(sov),
        "chart_mirror": sov.chart_mirror,
        "egress": {"default": sov.egress.default, "allowed": sov.egress.allowed},
        "export_controls": sov.export_controls,
    }


def build_platform(name: str, partnership: Partnership, site: Site, design: SiteDesign, provider: k8s.Provider,
                   charts: ChartSettings, parent: pulumi.Resource) -> dict[str, pulumi.Output]:
    sov = partnership.sovereignty
    mirrors = registry_mirrors(sov)
    sources = {pin.name: charts.source(pin, partnership) for pin in (GPU_OPERATOR, NETWORK_OPERATOR, KUBE_PROMETHEUS_STACK)}
    infos = {pin.name: chart_index.read_chart(pin, sources[pin.name])
             for pin in (GPU_OPERATOR, NETWORK_OPERATOR, KUBE_PROMETHEUS_STACK)}
    defaults = {name: info.values for name, info in infos.items()}
    opts = pulumi.ResourceOptions(parent=parent)

    policy = SovereigntyPolicy(
        f"{name}-sovereignty",
        SovereigntyPolicyArgs(admission.policies(allowed_image_prefixes(sov)), sovereignty_outputs(partnership)),
        provider, opts,
    )
    monitoring = Monitoring(
        f"{name}-monitoring",
        MonitoringArgs(site.name, sources[KUBE_PROMETHEUS_STACK.name],
                       platform_values.monitoring_values(defaults[KUBE_PROMETHEUS_STACK.name], mirrors,
                                                         set(infos[KUBE_PROMETHEUS_STACK.name].subcharts)),
                       gpu_alert_rules(PLATFORMS[design.platform].gpus_per_node),
                       infos[KUBE_PROMETHEUS_STACK.name].missing, infos[KUBE_PROMETHEUS_STACK.name].files),
        provider, pulumi.ResourceOptions(parent=parent, depends_on=policy.resources),
    )
    gpu = GpuPlatform(
        f"{name}-gpu",
        GpuPlatformArgs(site.name, sources[GPU_OPERATOR.name],
                        platform_values.gpu_operator_values(design, site.gpu_driver, defaults[GPU_OPERATOR.name], mirrors,
                                                            monitoring=True),
                        [*policy.resources, monitoring.ready]),
        provider, opts,
    )
    network = NetworkPlatform(
        f"{name}-network",
        NetworkPlatformArgs(site.name, sources[NETWORK_OPERATOR.name],
                            platform_values.network_operator_values(defaults[NETWORK_OPERATOR.name], mirrors),
                            platform_values.nic_cluster_policy(design, mirrors),
                            design.fabric.kind, design.fabric.rails, [*policy.resources, gpu.chart]),
        provider, opts,
    )
    tenants = Tenants(f"{name}-tenants", TenantsArgs(list(partnership.tenants)), provider,
                      pulumi.ResourceOptions(parent=parent, depends_on=policy.resources))
    return {"gpu": gpu.summary, "network": network.summary, "monitoring": monitoring.summary,
            "tenants": tenants.summary, "sovereignty": policy.summary}


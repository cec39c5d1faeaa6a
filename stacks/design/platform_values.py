"""Helm values and custom resources of the platform layer, derived from the partnership and design.

Pure: the chart's default values come in as data (read from the chart repository by the
program), so every rule here is tested without an engine or a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stacks.design.charts import deep_merge, mirror_image, mirror_values
from stacks.design.hcas import HCA_LAYOUTS
from stacks.design.partnership import DriverMode, GpuDriver
from stacks.design.sizing import SiteDesign

GPU_NAMESPACE = "gpu-operator"
NETWORK_NAMESPACE = "nvidia-network-operator"
MONITORING_NAMESPACE = "monitoring"

# NicClusterPolicy operands of Network Operator 26.4.1, as its full CR example lists them
# (docs.nvidia.com/networking/display/kubernetes2641/customizations/cr-full-example.html).
DOCA_DRIVER = ("nvcr.io/nvidia/mellanox", "doca-driver", "doca3.4.1-26.04-1.1.0.0-1")
RDMA_SHARED_DEVICE_PLUGIN = ("nvcr.io/nvidia/mellanox", "k8s-rdma-shared-dev-plugin", "network-operator-v26.4.1")
MELLANOX_VENDOR = "15b3"


def gpu_operator_values(site: SiteDesign, driver: GpuDriver, defaults: Mapping[str, Any],
                        mirrors: Mapping[str, str], *, monitoring: bool) -> dict[str, Any]:
    """ClusterPolicy settings: who owns the driver (must match the nvidia_host role's
    `nvidia_host_driver_mode`), its version, MIG, GPUDirect RDMA over the site's fabric, DCGM
    metrics scraped by the site's Prometheus, rolling driver upgrades, images from the mirrors."""
    operator_driver = driver.mode is DriverMode.OPERATOR
    driver_values: dict[str, Any] = {
        "enabled": operator_driver,
        # GPUDirect RDMA: the fabric's NICs and the GPUs exchange memory directly (nvidia-peermem).
        "rdma": {"enabled": True, "useHostMofed": False},
        # One node at a time, drained first: a driver upgrade restarts every GPU workload on it.
        "upgradePolicy": {"autoUpgrade": True, "maxParallelUpgrades": 1, "maxUnavailable": "25%",
                          "drain": {"enable": True, "force": False, "timeoutSeconds": 300, "deleteEmptyDir": True}},
    }
    if driver.version:
        driver_values["version"] = driver.version
    values = {
        "operator": {"upgradeCRD": False, "cleanupCRD": False},  # CRDs are the stack's resources
        "driver": driver_values,
        # The host mode installs nvidia-container-toolkit with the driver (roles/nvidia_host).
        "toolkit": {"enabled": operator_driver},
        "mig": {"strategy": driver.mig_strategy if driver.mig_strategy != "none" else "single"},
        "migManager": {"enabled": driver.mig_strategy != "none"},
        "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": monitoring, "interval": "15s"}},
        "nfd": {"enabled": True},
        "node-feature-discovery": {"enableNodeFeatureApi": True},
        "daemonsets": {"labels": {"sovereign.io/site": site.site}},
    }
    return deep_merge(mirror_values(defaults, mirrors), values)


def network_operator_values(defaults: Mapping[str, Any], mirrors: Mapping[str, str]) -> dict[str, Any]:
    values = {
        # One NFD per cluster: the GPU Operator's. The NIC feature rules still come from here.
        "nfd": {"enabled": False, "deployNodeFeatureRules": True},
        "upgradeCRDs": False,  # CRDs are the stack's resources
        "sriovNetworkOperator": {"enabled": False},
        "maintenanceOperator": {"enabled": False},
    }
    return deep_merge(mirror_values(defaults, mirrors), values)


def nic_cluster_policy(site: SiteDesign, mirrors: Mapping[str, str], *, ofed: str = "container") -> dict[str, Any]:
    """The NicClusterPolicy spec from the fabric design: one RDMA resource per rail, selected by
    the interface name the platform's port table gives that rail (stacks/design/hcas.py), so a job
    asks for `rdma/rail-N` and lands on the NIC beside its GPU; platforms without a published
    table get one shared resource for all their fabric ports. The DOCA driver container unless the
    hosts carry inbox drivers."""
    link = "infiniband" if site.fabric.kind == "infiniband" else "ether"
    selectors = {"vendors": [MELLANOX_VENDOR], "linkTypes": [link]}
    layout = HCA_LAYOUTS.get(site.platform)
    if layout is not None and layout.compute():
        resources = [{"resourceName": f"rail-{port.rail}", "rdmaHcaMax": 63,
                      "selectors": {**selectors, "ifNames": [port.interface]}} for port in layout.compute()]
    else:
        resources = [{"resourceName": "rdma-shared", "rdmaHcaMax": 63, "selectors": selectors}]
    spec: dict[str, Any] = {"rdmaSharedDevicePlugin": _component(RDMA_SHARED_DEVICE_PLUGIN, mirrors)}
    spec["rdmaSharedDevicePlugin"]["config"] = json.dumps({"configList": resources}, indent=2, sort_keys=True)
    if ofed == "container":
        spec["ofedDriver"] = {
            **_component(DOCA_DRIVER, mirrors),
            "upgradePolicy": {"autoUpgrade": True, "maxParallelUpgrades": 1,
                              "drain": {"enable": True, "force": True, "deleteEmptyDir": True, "timeoutSeconds": 300}},
        }
    return spec


def _component(image: tuple[str, str, str], mirrors: Mapping[str, str]) -> dict[str, Any]:
    repository, name, version = image
    moved = mirror_image(f"{repository}/{name}", mirrors)
    return {"repository": moved.rsplit("/", 1)[0], "image": name, "version": version}


def monitoring_values(defaults: Mapping[str, Any], mirrors: Mapping[str, str], present: set[str]) -> dict[str, Any]:
    """kube-prometheus-stack: the operator, Prometheus and Alertmanager, plus whichever of its
    subcharts (kube-state-metrics, node-exporter, grafana) the mirror's package carries."""
    values = {
        "kubeStateMetrics": {"enabled": "kube-state-metrics" in present},
        "nodeExporter": {"enabled": "prometheus-node-exporter" in present},
        "grafana": {"enabled": "grafana" in present, "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard"}}},
        "windowsMonitoring": {"enabled": False},
        # The operator's validating webhook needs its certificate job to have run in a real pod.
        "prometheusOperator": {"admissionWebhooks": {"enabled": False}, "tls": {"enabled": False}},
        "crds": {"upgradeJob": {"enabled": False}},
        # Pick up every ServiceMonitor and rule in the cluster, not only this release's.
        "prometheus": {"prometheusSpec": {"serviceMonitorSelectorNilUsesHelmValues": False,
                                          "ruleSelectorNilUsesHelmValues": False,
                                          "podMonitorSelectorNilUsesHelmValues": False,
                                          "retention": "30d"}},
    }
    return deep_merge(mirror_values(defaults, mirrors), values)

"""Alert rules for GPU and fabric faults, as a PrometheusRule spec (pure data).

Metric names are those of NVIDIA's dcgm-exporter default counters and node-exporter's infiniband
collector. Thresholds are conservative defaults a site tunes, each with the reason it exists.
"""

from __future__ import annotations

from typing import Any


def _rule(alert: str, expr: str, severity: str, summary: str, for_: str = "0m") -> dict[str, Any]:
    return {"alert": alert, "expr": expr, "for": for_,
            "labels": {"severity": severity, "team": "platform"},
            "annotations": {"summary": summary}}


def gpu_alert_rules(gpus_per_node: int) -> dict[str, Any]:
    return {"groups": [
        {"name": "sovereign.gpu", "rules": [
            # XID 79: the GPU fell off the bus; 48/63/64/94/95: memory errors; 13/31/43: usually the job's fault.
            _rule("GpuXidError", "DCGM_FI_DEV_XID_ERRORS > 0 and DCGM_FI_DEV_XID_ERRORS != 13 "
                  "and DCGM_FI_DEV_XID_ERRORS != 31 and DCGM_FI_DEV_XID_ERRORS != 43",
                  "critical", "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}"),
            _rule("GpuFellOffTheBus", "DCGM_FI_DEV_XID_ERRORS == 79", "critical",
                  "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} fell off the bus (XID 79): drain and reseat"),
            _rule("GpuMissing", f"count by (Hostname) (DCGM_FI_DEV_GPU_TEMP) < {gpus_per_node}", "critical",
                  "{{ $labels.Hostname }} reports {{ $value }} GPUs, the design has " + str(gpus_per_node), "10m"),
            _rule("GpuUncorrectableEcc", "increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[10m]) > 0", "critical",
                  "GPU {{ $labels.gpu }} on {{ $labels.Hostname }}: uncorrectable ECC errors"),
            _rule("GpuRowRemapFailure", "DCGM_FI_DEV_ROW_REMAP_FAILURE > 0", "critical",
                  "GPU {{ $labels.gpu }} on {{ $labels.Hostname }}: row remapping failed, RMA the GPU"),
            _rule("GpuRowRemapPending", "DCGM_FI_DEV_ROW_REMAP_PENDING > 0", "warning",
                  "GPU {{ $labels.gpu }} on {{ $labels.Hostname }}: row remap pending, reset the GPU when idle", "30m"),
            _rule("GpuTooHot", "DCGM_FI_DEV_GPU_TEMP > 87", "warning",
                  "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} at {{ $value }} °C", "5m"),
            _rule("GpuThermalViolation", "rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m]) > 0", "warning",
                  "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is thermally throttled", "10m"),
            _rule("NvlinkErrors", "increase(DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL[10m]) > 100", "warning",
                  "NVLink CRC errors on GPU {{ $labels.gpu }} of {{ $labels.Hostname }}"),
            _rule("NvlinkDown", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL == 0 and on (Hostname, gpu) "
                  "DCGM_FI_DEV_GPU_UTIL > 0", "warning",
                  "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is busy with no NVLink traffic", "15m"),
        ]},
        {"name": "sovereign.fabric", "rules": [
            _rule("InfinibandLinkDown", "node_infiniband_state_id != 4", "critical",
                  "{{ $labels.instance }} {{ $labels.device }} port {{ $labels.port }} is not ACTIVE", "2m"),
            _rule("InfinibandLinkFlapping", "increase(node_infiniband_link_downed_total[30m]) > 2", "warning",
                  "{{ $labels.instance }} {{ $labels.device }} went down {{ $value }} times in 30 min"),
            _rule("InfinibandErrors", "increase(node_infiniband_port_receive_errors_total[10m]) > 10 or "
                  "increase(node_infiniband_symbol_error_total[10m]) > 10", "warning",
                  "{{ $labels.instance }} {{ $labels.device }}: link errors; check the cable"),
        ]},
    ]}

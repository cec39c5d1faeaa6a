"""The GPU and fabric alert rules evaluated by Prometheus' own rule engine (`promtool test rules`,
built from the pinned Prometheus module by the toolchain) against recorded-style series: each
fault fires its alert with the expected labels and text, and a harmless signal does not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from stacks.design.alert_rules import gpu_alert_rules
from toolchain import pins
from toolchain.build import install

LABELS = {"severity": "critical", "team": "platform"}


def _alert(alertname: str, at: str, expected: list[dict]) -> dict:
    return {"eval_time": at, "alertname": alertname, "exp_alerts": expected}


CASES = {
    "xid_79_fires_both_xid_alerts": (
        [{"series": 'DCGM_FI_DEV_XID_ERRORS{Hostname="n1", gpu="3"}', "values": "0 0 79 79"}],
        [_alert("GpuFellOffTheBus", "3m", [{"exp_labels": {**LABELS, "Hostname": "n1", "gpu": "3"}, "exp_annotations": {
            "summary": "GPU 3 on n1 fell off the bus (XID 79): drain and reseat"}}]),
         _alert("GpuXidError", "3m", [{"exp_labels": {**LABELS, "Hostname": "n1", "gpu": "3"}, "exp_annotations": {
             "summary": "GPU 3 on n1 reported XID 79"}}])],
    ),
    "xid_13_is_the_jobs_fault": (
        [{"series": 'DCGM_FI_DEV_XID_ERRORS{Hostname="n1", gpu="0"}', "values": "13 13 13"}],
        [_alert("GpuXidError", "2m", [])],
    ),
    "a_missing_gpu_fires_after_10_minutes": (
        [{"series": f'DCGM_FI_DEV_GPU_TEMP{{Hostname="n2", gpu="{g}"}}', "values": "40x15"} for g in range(7)],
        [_alert("GpuMissing", "5m", []),
         _alert("GpuMissing", "12m", [{"exp_labels": {**LABELS, "Hostname": "n2"}, "exp_annotations": {
             "summary": "n2 reports 7 GPUs, the design has 8"}}])],
    ),
    "uncorrectable_ecc": (
        [{"series": 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{Hostname="n3", gpu="1"}', "values": "0 0 0 2 2"}],
        [_alert("GpuUncorrectableEcc", "4m", [{"exp_labels": {**LABELS, "Hostname": "n3", "gpu": "1"}, "exp_annotations": {
            "summary": "GPU 1 on n3: uncorrectable ECC errors"}}])],
    ),
    "too_hot_only_when_it_lasts": (
        [{"series": 'DCGM_FI_DEV_GPU_TEMP{Hostname="n4", gpu="0"}', "values": "90x10"},
         {"series": 'DCGM_FI_DEV_GPU_TEMP{Hostname="n4", gpu="1"}', "values": "60 95 60 60 60 60 60 60 60"}],
        [_alert("GpuTooHot", "8m", [{"exp_labels": {"severity": "warning", "team": "platform", "Hostname": "n4", "gpu": "0"},
                                     "exp_annotations": {"summary": "GPU 0 on n4 at 90 °C"}}])],
    ),
    "infiniband_port_down": (
        [{"series": 'node_infiniband_state_id{instance="n5", device="mlx5_0", port="1"}', "values": "4 4 1 1 1 1"}],
        [_alert("InfinibandLinkDown", "5m", [{"exp_labels": {**LABELS, "instance": "n5", "device": "mlx5_0", "port": "1"},
                                              "exp_annotations": {"summary": "n5 mlx5_0 port 1 is not ACTIVE"}}])],
    ),
    "a_healthy_port_is_quiet": (
        [{"series": 'node_infiniband_state_id{instance="n6", device="mlx5_0", port="1"}', "values": "4x10"},
         {"series": 'node_infiniband_port_receive_errors_total{instance="n6", device="mlx5_0", port="1"}', "values": "0x10"}],
        [_alert("InfinibandLinkDown", "8m", []), _alert("InfinibandErrors", "8m", [])],
    ),
}


@pytest.fixture(scope="module")
def promtool() -> Path:
    install(only=("promtool",))  # built if missing (cached); a build failure fails this test, never a skip
    return pins.tools_dir() / "bin" / "promtool"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_alert_rules_fire_as_written(promtool: Path, tmp_path: Path, case: str):
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(gpu_alert_rules(gpus_per_node=8), allow_unicode=True))
    series, alerts = CASES[case]
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, allow_unicode=True))
    result = subprocess.run([str(promtool), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_file_is_valid_prometheus(promtool: Path, tmp_path: Path):
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(gpu_alert_rules(gpus_per_node=4), allow_unicode=True))
    result = subprocess.run([str(promtool), "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout

"""nvidia_host: the GPUs the design puts in this node are visible to the driver, are the right
model, run the pinned driver branch with ECC and persistence mode on, and NVSwitch systems run
Fabric Manager. A node whose design has no GPU passes with "no GPUs expected"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodeconfig.acceptance.expectations import Vars, gpu_expectations
from nodeconfig.acceptance.findings import Finding, select
from nodeconfig.acceptance.gpu_checks import GPU_PROBES, gpu_findings
from nodeconfig.acceptance.probes import collect

Conclude = Callable[[list[Finding]], None]


@pytest.fixture(scope="module")
def gpu(host: Any, node_vars: Vars) -> list[Finding]:
    return gpu_findings(collect(host, GPU_PROBES), gpu_expectations(node_vars))


def test_gpu_count(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "gpu_count"))


def test_gpu_model(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "gpu_model"))


def test_driver(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "driver"))


def test_ecc(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "ecc"))


def test_persistence(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "persistence"))


def test_fabric_manager(gpu: list[Finding], conclude: Conclude) -> None:
    conclude(select(gpu, "fabric_manager"))

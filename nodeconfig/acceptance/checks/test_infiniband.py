"""infiniband: the node has the fabric ports its design gives it, each ACTIVE/LinkUp at the
design's rate. A node whose design has no fabric port passes with "no ports expected"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodeconfig.acceptance.expectations import Vars, ib_expectations
from nodeconfig.acceptance.findings import Finding, select
from nodeconfig.acceptance.ib_checks import IB_PROBES, ib_findings
from nodeconfig.acceptance.probes import collect

Conclude = Callable[[list[Finding]], None]


@pytest.fixture(scope="module")
def ib(host: Any, node_vars: Vars) -> list[Finding]:
    return ib_findings(collect(host, IB_PROBES), ib_expectations(node_vars))


def test_ib_port_count(ib: list[Finding], conclude: Conclude) -> None:
    conclude(select(ib, "ib_port_count"))


def test_ib_port_state(ib: list[Finding], conclude: Conclude) -> None:
    conclude(select(ib, "ib_port_state"))


def test_ib_port_rate(ib: list[Finding], conclude: Conclude) -> None:
    conclude(select(ib, "ib_port_rate"))

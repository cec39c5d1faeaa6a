"""time_sync: chrony runs with the design's time sources and the clock is synchronised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeconfig.acceptance import os_checks as oc
from nodeconfig.acceptance.expectations import Vars
from nodeconfig.acceptance.findings import Finding, failed, passed

Conclude = Callable[[list[Finding]], None]


def test_service(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    name = node_vars.get_str("__time_sync_service", "chrony")
    service = host.service(name)
    if service.is_running and service.is_enabled:
        conclude([passed("service", f"{name} running and enabled")])
    else:
        conclude([failed("service", f"{name} running={service.is_running} enabled={service.is_enabled}")])


def test_sources(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    # The servers chronyd actually uses (names as configured, -N), not what a file says.
    servers = [str(s) for s in node_vars.get_list("time_sync_servers")]
    out = host.run("chronyc -N -c sources")
    used = {line.split(",")[2] for line in out.stdout.splitlines() if line.count(",") >= 2}
    conclude(oc.missing_findings("sources", "time sources", sorted(set(servers) - used), len(servers)))


def test_synchronised(host: Any, conclude: Conclude) -> None:
    out = host.run("chronyc -c tracking")
    fields = out.stdout.strip().split(",")
    # CSV tracking: ref id, ref name, stratum, ..., leap status is the last field.
    leap = fields[-1] if len(fields) > 10 else f"unknown ({out.stderr.strip() or out.stdout.strip()})"
    if leap == "Normal":
        conclude([passed("synchronised", f"synchronised to {fields[1]} (stratum {fields[2]})")])
    else:
        conclude([failed("synchronised", f"clock not synchronised: leap status {leap}")])

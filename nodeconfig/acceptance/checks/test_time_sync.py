"""time_sync: chronyd, the only time daemon, runs with the site's own servers and keeps the
clock synchronised."""

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
    want_enabled = node_vars.get_bool("time_sync_service_enabled", True)
    if service.is_running and service.is_enabled == want_enabled:
        conclude([passed("service", f"{name} running" + (" and enabled" if want_enabled else ""))])
    else:
        conclude([failed("service", f"{name} running={service.is_running} enabled={service.is_enabled}")])


def test_single_time_daemon(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    # CIS 2.3.1.1: two daemons disciplining one clock fight each other.
    others = [p for p in node_vars.get_list("__time_sync_conflicting_packages", []) if host.package(p).is_installed]
    if others:
        conclude([failed("single_time_daemon", f"other time daemons installed: {', '.join(others)}")])
    else:
        conclude([passed("single_time_daemon", "chrony is the only time daemon")])


def test_sources(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    """chronyd's configuration names exactly the site's servers and pools. (Which of them answer
    is test_synchronised's question.)"""
    path = node_vars.get_str("__time_sync_config_file")
    options = node_vars.get_str("time_sync_server_options")
    wanted = [f"server {s} {options}" for s in node_vars.get_list("time_sync_servers")]
    wanted += [f"pool {p} {options}" for p in node_vars.get_list("time_sync_pools")]
    f = host.file(path)
    findings = oc.lines_findings("sources", path, f.content_string if f.exists else None, wanted)
    if f.exists:
        extra = [
            line for line in oc.config_lines(f.content_string)
            if line.split()[0] in ("server", "pool") and line not in {" ".join(w.split()) for w in wanted}
        ]  # fmt: skip
        if extra:
            findings.append(failed("sources", f"{path} has sources outside the design: {'; '.join(extra)}"))
    conclude(findings)


def test_synchronised(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    out = host.run("chronyc -c tracking")
    fields = out.stdout.strip().split(",")
    # CSV tracking: reference id, reference name, stratum, ..., leap status last.
    leap = fields[-1] if len(fields) > 10 else f"unknown ({out.stderr.strip() or out.stdout.strip()})"
    if leap == "Normal":
        conclude([passed("synchronised", f"synchronised to {fields[1]} (stratum {fields[2]})")])
    elif not node_vars.get_bool("time_sync_expect_synchronised", True):
        # e.g. the lab, whose nodes reach no NTP server by construction
        conclude([passed("synchronised", f"not required (time_sync_expect_synchronised is false); leap status {leap}")])
    else:
        conclude([failed("synchronised", f"clock not synchronised: leap status {leap}")])

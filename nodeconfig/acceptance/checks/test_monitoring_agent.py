"""monitoring_agent: the node exporter runs and serves metrics on the design's port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeconfig.acceptance.expectations import Vars
from nodeconfig.acceptance.findings import Finding, failed, passed

Conclude = Callable[[list[Finding]], None]


def test_service(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    name = node_vars.get_str("__monitoring_agent_service", "prometheus-node-exporter")
    service = host.service(name)
    if service.is_running and service.is_enabled:
        conclude([passed("service", f"{name} running and enabled")])
    else:
        conclude([failed("service", f"{name} running={service.is_running} enabled={service.is_enabled}")])


def test_metrics_served(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    port = node_vars.get_int("monitoring_agent_port")
    # From the node itself: reachability from Prometheus is the platform's check, not this role's.
    # python3 is on every node Ansible manages; curl is another role's package.
    fetch = (
        f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())"
    )
    out = host.run(f'python3 -c "{fetch}" | grep -m1 "^node_exporter_build_info"')
    if out.rc == 0 and "node_exporter_build_info" in out.stdout:
        conclude([passed("metrics", f"metrics served on port {port}")])
    else:
        why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no node_exporter_build_info"
        conclude([failed("metrics", f"no node exporter metrics on 127.0.0.1:{port}: {why}")])

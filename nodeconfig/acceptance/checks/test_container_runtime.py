"""container_runtime: containerd runs with the systemd cgroup driver, and pulls through the
sovereign registry mirrors the design lists."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

from nodeconfig.acceptance.expectations import Vars
from nodeconfig.acceptance.findings import Finding, failed, passed

Conclude = Callable[[list[Finding]], None]

# containerd 1.x and 2.x keep the runc options under different CRI plugin ids.
_CRI_RUNC = (
    ("io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc", "options"),
    ("io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options"),
)


def test_service(host: Any, conclude: Conclude) -> None:
    service = host.service("containerd")
    if service.is_running and service.is_enabled:
        conclude([passed("service", "containerd running and enabled")])
    else:
        conclude([failed("service", f"containerd running={service.is_running} enabled={service.is_enabled}")])


def test_systemd_cgroup(host: Any, conclude: Conclude) -> None:
    # The effective configuration (file merged over containerd's defaults), not the file alone.
    out = host.run("containerd config dump")
    if out.rc != 0:
        conclude([failed("systemd_cgroup", f"containerd config dump failed: {out.stderr.strip()}")])
        return
    plugins = tomllib.loads(out.stdout).get("plugins", {})
    for path in _CRI_RUNC:
        node: Any = plugins
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if node:
            ok = node.get("SystemdCgroup") is True
            conclude([(passed if ok else failed)("systemd_cgroup", f"runc SystemdCgroup = {node.get('SystemdCgroup')}")])
            return
    conclude([failed("systemd_cgroup", "no runc runtime in the CRI plugin configuration")])


def test_registry_mirrors(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    mirrors = node_vars.get_map("container_runtime_registry_mirrors")  # upstream -> mirror URL
    wrong = []
    for upstream, mirror in sorted(mirrors.items()):
        f = host.file(f"/etc/containerd/certs.d/{upstream}/hosts.toml")
        if not f.exists:
            wrong.append(f"{upstream}: no hosts.toml")
            continue
        hosts = tomllib.loads(f.content_string).get("host", {})
        if str(mirror).rstrip("/") not in {h.rstrip("/") for h in hosts}:
            wrong.append(f"{upstream}: mirror {mirror} not configured")
    if wrong:
        conclude([failed("registry_mirrors", "; ".join(wrong))])
    else:
        conclude([passed("registry_mirrors", f"{len(mirrors)} registry mirror(s) configured")])

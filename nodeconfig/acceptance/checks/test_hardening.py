"""hardening: the SSH daemon's effective settings and the kernel's security settings are those
the design asks for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeconfig.acceptance import os_checks as oc
from nodeconfig.acceptance.expectations import Vars
from nodeconfig.acceptance.findings import Finding

Conclude = Callable[[list[Finding]], None]


def test_sshd_effective_config(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    # `sshd -T` prints the configuration sshd would run with, after includes and defaults.
    expected = {k.lower(): v for k, v in node_vars.get_map("hardening_sshd_settings").items()}
    out = host.run("sshd -T")
    observed = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        observed[key] = value
    expected = {k: ("yes" if v is True else "no" if v is False else v) for k, v in expected.items()}
    conclude(oc.properties_findings("sshd", observed, expected))


def test_sysctls(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    expected = node_vars.get_map("hardening_sysctls")
    out = host.run("sysctl " + " ".join(sorted(expected)))
    conclude(oc.sysctl_findings("sysctls", oc.parse_sysctl(out.stdout), expected))

"""container_runtime: containerd runs with the systemd cgroup driver, reads its registry hosts
from certs.d, and pulls through the country's mirrors — only through them unless the design allows
falling back to the upstream registry."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from nodeconfig.acceptance import os_checks as oc
from nodeconfig.acceptance.expectations import Vars
from nodeconfig.acceptance.findings import Finding, failed, passed

Conclude = Callable[[list[Finding]], None]
CRI = "io.containerd.grpc.v1.cri"  # containerd 1.x (Debian 12); 2.x splits CRI across new ids


def _dig(tree: Any, *keys: str) -> Any:
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


@pytest.fixture(scope="module")
def effective_config(host: Any) -> dict[str, Any] | str:
    """`containerd config dump`: the file merged over containerd's defaults; or why it failed."""
    out = host.run("containerd config dump")
    if out.rc != 0:
        return f"containerd config dump failed: {out.stderr.strip() or out.rc}"
    return tomllib.loads(out.stdout)


def test_service(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    name = node_vars.get_str("__container_runtime_service", "containerd")
    service = host.service(name)
    if service.is_running and service.is_enabled:
        conclude([passed("service", f"{name} running and enabled")])
    else:
        conclude([failed("service", f"{name} running={service.is_running} enabled={service.is_enabled}")])


def test_cri_config(effective_config: dict[str, Any] | str, node_vars: Vars, conclude: Conclude) -> None:
    if isinstance(effective_config, str):
        conclude([failed("cri_config", effective_config)])
        return
    cri = _dig(effective_config, "plugins", CRI) or {}
    runtimes = _dig(cri, "containerd", "runtimes") or {}
    wanted_default = "runc"
    if node_vars.get_bool("container_runtime_nvidia_runtime_enabled") and node_vars.get_bool(
        "container_runtime_nvidia_runtime_default"
    ):
        wanted_default = "nvidia"
    problems = []
    for name in ("runc", "nvidia") if node_vars.get_bool("container_runtime_nvidia_runtime_enabled") else ("runc",):
        if _dig(runtimes, name, "options", "SystemdCgroup") is not True:
            problems.append(f"runtime {name}: SystemdCgroup is not true")
    default = _dig(cri, "containerd", "default_runtime_name")
    # Operator mode: the GPU Operator's toolkit adds the nvidia runtime, as the default, in a drop-in
    # that config.toml imports; the role leaves it there.
    operator_dropin = wanted_default == "runc" and default == "nvidia" and "nvidia" in runtimes
    if default != wanted_default and not operator_dropin:
        problems.append(f"default runtime {default}, want {wanted_default}")
    certs = node_vars.get_str("__container_runtime_certs_dir")
    if _dig(cri, "registry", "config_path") != certs:
        # without it containerd ignores every hosts.toml, so the mirrors below would be dead files
        problems.append(f"registry config_path is {_dig(cri, 'registry', 'config_path')!r}, want {certs}")
    if problems:
        conclude([failed("cri_config", "; ".join(problems))])
    else:
        conclude([passed("cri_config", f"systemd cgroups, default runtime {default}, registry hosts from {certs}")])


def test_registry_mirrors(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    """Each upstream registry resolves to the country's mirrors, in order; with no upstream
    fallback, `server` is the first mirror, so no pull leaves the country."""
    mirrors = node_vars.get_map("container_runtime_registry_mirrors")  # upstream -> [mirror URL]
    fallback = node_vars.get_bool("container_runtime_registry_fallback_to_upstream")
    certs = node_vars.get_str("__container_runtime_certs_dir")
    wrong = []
    for upstream, wanted in sorted(mirrors.items()):
        wanted = wanted if isinstance(wanted, list) else [wanted]
        f = host.file(f"{certs}/{upstream}/hosts.toml")
        if not f.exists:
            wrong.append(f"{upstream}: no {f.path}")
            continue
        hosts = tomllib.loads(f.content_string)
        configured = [h.rstrip("/") for h in hosts.get("host", {})]
        if configured != [str(m).rstrip("/") for m in wanted]:
            wrong.append(f"{upstream}: mirrors {configured}, want {wanted}")
        server = str(hosts.get("server", "")).rstrip("/")
        if upstream != "_default" and not fallback and server != str(wanted[0]).rstrip("/"):
            wrong.append(f"{upstream}: server {server or 'unset'} would pull from outside the mirrors")
    if wrong:
        conclude([failed("registry_mirrors", "; ".join(wrong))])
    else:
        how = "upstream fallback allowed" if fallback else "no upstream fallback"
        conclude([passed("registry_mirrors", f"{len(mirrors)} registries through in-country mirrors ({how})")])


def test_sysctls(host: Any, node_vars: Vars, container: str | None, conclude: Conclude) -> None:
    expected = node_vars.get_map("container_runtime_sysctls")
    if container:
        path = node_vars.get_str("__container_runtime_sysctl_file")
        f = host.file(path)
        conclude(
            oc.sysctl_config_findings("sysctls", path, f.content_string if f.exists else None, expected, container)
        )
        return
    out = host.run("sysctl " + " ".join(sorted(expected)))
    conclude(oc.sysctl_findings("sysctls", oc.parse_sysctl(out.stdout), expected))


def test_swap(host: Any, node_vars: Vars, container: str | None, conclude: Conclude) -> None:
    if not node_vars.get_bool("container_runtime_swap_off"):
        conclude([passed("swap", "swap allowed by the design (container_runtime_swap_off is false)")])
        return
    fstab = host.file("/etc/fstab")
    target = host.run("systemctl is-enabled swap.target").stdout
    swaps = host.file(node_vars.get_str("__container_runtime_swaps_file")).content_string
    conclude(oc.swap_findings("swap", swaps, fstab.content_string if fstab.exists else "", target, container))

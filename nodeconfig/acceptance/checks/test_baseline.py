"""baseline: packages, kernel tunables and limits for GPU/RDMA work, a persistent journal, admin
accounts with exactly their keys, and the site's /etc/hosts entries — as roles/baseline promises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeconfig.acceptance import os_checks as oc
from nodeconfig.acceptance.expectations import Vars
from nodeconfig.acceptance.findings import Finding, failed, passed

Conclude = Callable[[list[Finding]], None]


def _read(host: Any, path: str) -> str | None:
    f = host.file(path)
    return f.content_string if f.exists else None


def test_packages(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    names = [*node_vars.get_list("baseline_packages"), *node_vars.get_list("baseline_extra_packages")]
    missing = [n for n in names if not host.package(n).is_installed]
    conclude(oc.missing_findings("packages", "packages", missing, len(names)))


def test_sysctls(host: Any, node_vars: Vars, container: str | None, conclude: Conclude) -> None:
    expected = node_vars.get_map("__baseline_all_sysctls")
    if container:  # systemd-sysctl skips itself in a container: the kernel is the host's
        path = node_vars.get_str("__baseline_sysctl_file")
        conclude(oc.sysctl_config_findings("sysctls", path, _read(host, path), expected, container))
        return
    # One round trip: unknown keys go to stderr and show up as "unreadable".
    out = host.run("sysctl " + " ".join(sorted(expected)))
    conclude(oc.sysctl_findings("sysctls", oc.parse_sysctl(out.stdout), expected))


def test_pam_limits(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    path = node_vars.get_str("__baseline_limits_file")
    wanted = [f"{lim['domain']} {lim['type']} {lim['item']} {lim['value']}" for lim in node_vars.get_list("baseline_limits")]
    conclude(oc.lines_findings("pam_limits", path, _read(host, path), wanted))


def test_systemd_default_limits(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    # The manager's live values, not the drop-in: a drop-in without daemon-reexec does nothing.
    expected = node_vars.get_map("baseline_systemd_default_limits")
    out = host.run("systemctl show " + " ".join(f"-p {k}" for k in sorted(expected)))
    conclude(oc.properties_findings("systemd_default_limits", oc.parse_properties(out.stdout), expected))


def test_journald(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    path = node_vars.get_str("__baseline_journald_file")
    storage = node_vars.get_str("baseline_journald_storage")
    wanted = [f"Storage={storage}", f"SystemMaxUse={node_vars.get_str('baseline_journald_system_max_use')}"]
    findings = oc.lines_findings("journald", path, _read(host, path), wanted)
    service = host.service(node_vars.get_str("__baseline_journald_service", "systemd-journald"))
    if not service.is_running:
        findings.append(failed("journald", "systemd-journald is not running"))
    if storage == "persistent" and not host.file("/var/log/journal").is_directory:
        findings.append(failed("journald", "persistent storage but /var/log/journal does not exist"))
    conclude(findings)


def test_admin_users(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    group = node_vars.get_str("baseline_admin_group")
    findings: list[Finding] = []
    if not host.group(group).exists:
        findings.append(failed("admin_users", f"admin group {group} does not exist"))
    admins = node_vars.get_list("baseline_admin_users")
    for admin in admins:
        name = admin["name"]
        user = host.user(name)
        if admin.get("state", "present") == "absent":
            if user.exists:
                findings.append(failed("admin_users", f"{name} should have been removed"))
            continue
        if not user.exists:
            findings.append(failed("admin_users", f"{name} does not exist"))
            continue
        if group not in user.groups:
            findings.append(failed("admin_users", f"{name} is not in {group}"))
        keys = _read(host, f"{user.home}/.ssh/authorized_keys") or ""
        have = set(oc.config_lines(keys))
        want = {" ".join(k.split()) for k in admin.get("ssh_keys", [])}
        if have != want:
            findings.append(
                failed("admin_users", f"{name}: {len(want - have)} key(s) missing, {len(have - want)} unexpected")
            )
    sudoers = node_vars.get_str("__baseline_sudoers_file")
    if not host.file(sudoers).exists or host.file(sudoers).mode != 0o440:
        findings.append(failed("admin_users", f"{sudoers} missing or not mode 0440"))
    if not findings:
        findings.append(passed("admin_users", f"group {group}, {len(admins)} admin account(s) as designed"))
    conclude(findings)


def test_site_hosts(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    entries = node_vars.get_list("baseline_hosts")
    wrong = []
    for entry in entries:
        out = host.run(f"getent hosts {entry['name']}")
        ips = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
        if entry["ip"] not in ips:
            wrong.append(f"{entry['name']} resolves to {', '.join(sorted(ips)) or 'nothing'} (want {entry['ip']})")
    if wrong:
        conclude([failed("site_hosts", "; ".join(wrong))])
    else:
        conclude([passed("site_hosts", f"{len(entries)} site host name(s) resolve as designed")])

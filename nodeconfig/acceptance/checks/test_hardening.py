"""hardening: the CIS Debian 12 subset roles/hardening applies — login banners, the SSH daemon's
effective settings, sudo logging, auditd, disabled kernel modules, network kernel parameters,
unused services and insecure clients, and system file permissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeconfig.acceptance import os_checks as oc
from nodeconfig.acceptance.expectations import Vars
from nodeconfig.acceptance.findings import Finding, failed, passed

Conclude = Callable[[list[Finding]], None]

# sshd -T prints canonical spellings; the design may use the newer synonym.
_SSHD_SYNONYMS = {"prohibit-password": "without-password"}


def _read(host: Any, path: str) -> str | None:
    f = host.file(path)
    return f.content_string if f.exists else None


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def expected_sshd(v: Vars) -> dict[str, str]:
    """sshd -T keyword (lower case) -> value, as the role's drop-in sets them."""
    root = v.get_str("hardening_sshd_permit_root_login")
    want = {
        "banner": "/etc/issue.net",
        "permitrootlogin": _SSHD_SYNONYMS.get(root, root),
        "passwordauthentication": _yes_no(v.get_bool("hardening_sshd_password_authentication")),
        "kbdinteractiveauthentication": "no",
        "permitemptypasswords": "no",
        "hostbasedauthentication": "no",
        "ignorerhosts": "yes",
        "gssapiauthentication": "no",
        "permituserenvironment": "no",
        "usepam": "yes",
        "ciphers": ",".join(v.get_list("hardening_sshd_ciphers")),
        "macs": ",".join(v.get_list("hardening_sshd_macs")),
        "kexalgorithms": ",".join(v.get_list("hardening_sshd_kex_algorithms")),
        "maxauthtries": str(v.get_int("hardening_sshd_max_auth_tries")),
        "maxsessions": str(v.get_int("hardening_sshd_max_sessions")),
        "maxstartups": v.get_str("hardening_sshd_max_startups"),
        "logingracetime": str(v.get_int("hardening_sshd_login_grace_time")),
        "clientaliveinterval": str(v.get_int("hardening_sshd_client_alive_interval")),
        "clientalivecountmax": str(v.get_int("hardening_sshd_client_alive_count_max")),
        "loglevel": v.get_str("hardening_sshd_log_level").upper(),
    }
    if v.get_bool("hardening_sshd_disable_forwarding"):
        want |= {"disableforwarding": "yes", "x11forwarding": "no"}
    groups = v.get_list("hardening_sshd_allow_groups")
    if groups:
        want["allowgroups"] = " ".join(groups)
    for key, value in v.get_map("hardening_sshd_extra_options").items():
        want[key.lower()] = _yes_no(value) if isinstance(value, bool) else str(value)
    return want


def test_banners(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    text = node_vars.get_str("hardening_banner_text").strip()
    wrong = [p for p in ("/etc/issue", "/etc/issue.net") if (_read(host, p) or "").strip() != text]
    if wrong:
        conclude([failed("banners", f"{', '.join(wrong)} differ from hardening_banner_text")])
    else:
        conclude([passed("banners", f"login banners name {node_vars.get_str('hardening_banner_authority')}")])


def test_sshd(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    # `sshd -T`: the settings sshd runs with after includes and built-in defaults.
    out = host.run(f"{node_vars.get_str('__hardening_sshd_binary', '/usr/sbin/sshd')} -T")
    if out.rc != 0:
        conclude([failed("sshd", f"sshd -T failed: {out.stderr.strip()}")])
        return
    observed = dict(line.partition(" ")[::2] for line in out.stdout.splitlines())
    findings = oc.properties_findings("sshd", observed, expected_sshd(node_vars))
    if not host.service(node_vars.get_str("__hardening_sshd_service", "ssh")).is_running:
        findings.append(failed("sshd", "the SSH service is not running"))
    conclude(findings)


def test_sudo_logging(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    path = node_vars.get_str("__hardening_sudoers_file")
    logfile = node_vars.get_str("hardening_sudo_logfile")
    findings = oc.lines_findings(
        "sudo_logging", path, _read(host, path), ["Defaults use_pty", f'Defaults logfile="{logfile}"']
    )
    if host.file(path).exists and host.file(path).mode != 0o440:
        findings.append(failed("sudo_logging", f"{path} is mode {host.file(path).mode:o}, want 440"))
    conclude(findings)


def test_auditd(host: Any, node_vars: Vars, container: str | None, conclude: Conclude) -> None:
    if not node_vars.get_bool("hardening_auditd_enabled"):
        conclude([passed("auditd", "auditd not required (hardening_auditd_enabled is false)")])
        return
    findings: list[Finding] = []
    if not host.package(node_vars.get_str("__hardening_auditd_package", "auditd")).is_installed:
        findings.append(failed("auditd", "auditd is not installed"))
    rules = node_vars.get_str("__hardening_audit_rules_file")
    if not host.file(rules).exists:
        findings.append(failed("auditd", f"{rules} is missing"))
    state = node_vars.get_str("hardening_auditd_service_state")
    service = host.service(node_vars.get_str("__hardening_auditd_service", "auditd"))
    if state == "stopped":
        want_running = False
    elif state == "auto" and container:
        want_running = False  # kernel auditing is the host's; the unit's condition keeps it inactive
    else:
        want_running = True
    if service.is_running != want_running:
        findings.append(failed("auditd", f"auditd running={service.is_running}, want {want_running} (state {state})"))
    if state != "stopped" and not service.is_enabled:
        findings.append(failed("auditd", "auditd is not enabled"))
    where = f"inactive in this {container} container" if container and not want_running else f"running={want_running}"
    conclude(findings or [passed("auditd", f"auditd installed, CIS rules in place, {where}")])


def test_kernel_modules(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    modules = node_vars.get_list("hardening_disabled_kernel_modules")
    path = node_vars.get_str("__hardening_modprobe_file")
    wanted = [line for m in modules for line in (f"install {m} /bin/false", f"blacklist {m}")]
    conclude(oc.lines_findings("kernel_modules", path, _read(host, path), wanted))


def test_sysctls(host: Any, node_vars: Vars, container: str | None, conclude: Conclude) -> None:
    expected = node_vars.get_map("hardening_sysctls")
    if container:
        path = node_vars.get_str("__hardening_sysctl_file")
        conclude(oc.sysctl_config_findings("sysctls", path, _read(host, path), expected, container))
        return
    out = host.run("sysctl " + " ".join(sorted(expected)))
    conclude(oc.sysctl_findings("sysctls", oc.parse_sysctl(out.stdout), expected))


def test_disabled_services(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    mask = node_vars.get_bool("hardening_disabled_services_mask")
    wrong = []
    for name in node_vars.get_list("hardening_disabled_services"):
        service = host.service(name)
        if not service.exists:
            continue  # the role touches only installed services; absent is as good as disabled
        if service.is_running or service.is_enabled or (mask and not service.is_masked):
            wrong.append(
                f"{name} (running={service.is_running}, enabled={service.is_enabled}, masked={service.is_masked})"
            )
    if wrong:
        conclude([failed("disabled_services", "not disabled: " + "; ".join(wrong))])
    else:
        conclude([passed("disabled_services", "no unused service runs")])


def test_removed_packages(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    present = [p for p in node_vars.get_list("hardening_removed_packages") if host.package(p).is_installed]
    if present:
        conclude([failed("removed_packages", f"insecure clients installed: {', '.join(present)}")])
    else:
        conclude([passed("removed_packages", "no insecure client installed")])


def test_file_permissions(host: Any, node_vars: Vars, conclude: Conclude) -> None:
    wrong, checked = [], 0
    for entry in node_vars.get_list("hardening_file_permissions"):
        f = host.file(entry["path"])
        if not f.exists:
            continue  # the role sets only paths present on the node (no cron on a minimal node)
        checked += 1
        want = (int(str(entry["mode"]), 8), entry["owner"], entry["group"])
        have = (f.mode, f.user, f.group)
        if have != want:
            wrong.append(f"{entry['path']} is {have[0]:o} {have[1]}:{have[2]} (want {want[0]:o} {want[1]}:{want[2]})")
    if wrong:
        conclude([failed("file_permissions", "; ".join(wrong))])
    else:
        conclude([passed("file_permissions", f"{checked} system files with the designed owner and mode")])

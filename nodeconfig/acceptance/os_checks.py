"""Small pure comparisons shared by the OS-level role checks (baseline, hardening, ...).

Each takes what a command printed or a file contained, and what the role variables promise, and
returns findings. The check modules do the reading; these do the judging, so they are testable
with literal text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nodeconfig.acceptance.findings import Finding, failed, passed


def _words(value: Any) -> list[str]:
    # sysctl prints multi-value keys tab-separated ("4096\t87380\t134217728"); roles write spaces.
    return str(value).split()


def parse_sysctl(text: str) -> dict[str, str]:
    """`sysctl key1 key2 ...` prints `key = value` per readable key."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.strip()] = value.strip()
    return values


def sysctl_findings(check: str, observed: Mapping[str, str], expected: Mapping[str, Any]) -> list[Finding]:
    wrong = []
    for key, want in sorted(expected.items()):
        have = observed.get(key)
        if have is None:
            wrong.append(f"{key} unreadable (want {want})")
        elif _words(have) != _words(want):
            wrong.append(f"{key} = {have} (want {want})")
    if wrong:
        return [failed(check, "; ".join(wrong))]
    return [passed(check, f"{len(expected)} kernel settings as designed")]


def sysctl_config_findings(
    check: str, path: str, text: str | None, expected: Mapping[str, Any], container: str
) -> list[Finding]:
    """Inside a container the kernel's settings are the host's to apply (systemd-sysctl skips
    itself there), so what the node owns is the file that applies them at boot on a host."""
    findings = lines_findings(check, path, text, [f"{k} = {v}" for k, v in sorted(expected.items())])
    if findings[0].ok:
        return [passed(check, f"{len(expected)} kernel settings in {path} (not applied: {container} container)")]
    return findings


def config_lines(text: str, comment: str = "#") -> list[str]:
    """Non-comment lines of a config file, whitespace-normalised."""
    return [
        " ".join(line.split()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith(comment)
    ]


def lines_findings(check: str, path: str, text: str | None, wanted: Iterable[str]) -> list[Finding]:
    """Every wanted line (whitespace-normalised) is present in the file."""
    want = [" ".join(w.split()) for w in wanted]
    if text is None:
        return [failed(check, f"{path} is missing")]
    have = set(config_lines(text))
    absent = [w for w in want if w not in have]
    if absent:
        return [failed(check, f"{path} lacks: " + "; ".join(absent))]
    return [passed(check, f"{path}: {len(want)} settings as designed")]


def properties_findings(check: str, observed: Mapping[str, str], expected: Mapping[str, Any]) -> list[Finding]:
    """`systemctl show -p A,B` style key=value output against expected values."""
    wrong = [
        f"{key}={observed.get(key, '<unset>')} (want {want})"
        for key, want in sorted(expected.items())
        if _words(observed.get(key, "")) != _words(want)
    ]
    if wrong:
        return [failed(check, "; ".join(wrong))]
    if len(expected) > 3:  # a long list of values that match says nothing a count does not
        return [passed(check, f"{len(expected)} settings as designed")]
    return [passed(check, ", ".join(f"{k}={v}" for k, v in sorted(expected.items())))]


def parse_properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def missing_findings(check: str, what: str, missing: list[str], total: int) -> list[Finding]:
    if missing:
        return [failed(check, f"{what} missing: {', '.join(missing)}")]
    return [passed(check, f"all {total} {what} present")]


def swap_findings(check: str, proc_swaps: str, fstab: str, swap_target: str, container: str | None) -> list[Finding]:
    """kubelet needs swap off now (/proc/swaps lists nothing after its header) and at boot (no
    active fstab swap line, swap.target masked). In a container /proc/swaps is the host's: only the
    node's own boot configuration is judged there."""
    problems = []
    active = [line.split()[0] for line in proc_swaps.splitlines()[1:] if line.strip()]
    if active and not container:
        problems.append(f"swap is on: {', '.join(active)}")
    in_fstab = [line.split()[0] for line in fstab.splitlines()
                if not line.lstrip().startswith("#") and line.split()[2:3] == ["swap"]]
    if in_fstab:
        problems.append(f"/etc/fstab swaps on at boot: {', '.join(in_fstab)}")
    if swap_target.strip() != "masked":
        problems.append(f"swap.target is {swap_target.strip() or 'unknown'} (want masked)")
    if problems:
        return [failed(check, "; ".join(problems))]
    now = f"host's swap not judged in a {container} container" if container else "no swap in use"
    return [passed(check, f"{now}; none at boot (no fstab swap, swap.target masked)")]

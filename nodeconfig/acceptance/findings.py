"""One observation about a node: what was checked, whether it met the design, and why.

Checks compute a list of findings from raw command output and the node's expectations, so the
logic is a pure function that tests can drive with recorded output; the pytest layer only turns
the list into a pass or a failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    check: str  # short name of the property, e.g. "gpu_count", "ecc"; a test selects on it
    ok: bool
    message: str  # says what was found and, when not ok, what was expected
    # Not failed, not passed: the property cannot be checked yet, by design (operator mode before
    # the GPU Operator has installed its driver). Reported as "pending".
    pending: bool = False


def passed(check: str, message: str) -> Finding:
    return Finding(check, True, message)


def failed(check: str, message: str) -> Finding:
    return Finding(check, False, message)


def pending(check: str, message: str) -> Finding:
    return Finding(check, True, message, pending=True)


def select(findings: Iterable[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def summarize(findings: Iterable[Finding]) -> tuple[bool, str]:
    """(ok, message): failures first, because those are what a reader must act on."""
    items = list(findings)
    bad = [f.message for f in items if not f.ok]
    if bad:
        return False, "; ".join(bad)
    return True, "; ".join(f.message for f in items)

"""Run a fixed set of read-only commands on a node and keep their raw results.

Checks parse these results with pure functions (gpu_facts, ib_facts), so recorded fixtures and a
real node go through exactly the same code; only `collect` touches the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class ParseError(ValueError):
    """Output did not have the documented shape; the message quotes the offending line."""


@dataclass(frozen=True)
class ProbeResult:
    rc: int
    stdout: str
    stderr: str = ""

    @property
    def missing(self) -> bool:
        # 127: the shell found no such command — the tool is not installed, which a check must
        # report as such rather than as "zero devices".
        return self.rc == 127


class _CommandResult(Protocol):
    rc: int
    stdout: str
    stderr: str


class RunsCommands(Protocol):
    """The part of testinfra's `host` that probes need; a fake host implements only this."""

    def run(self, command: str, *args: str) -> _CommandResult: ...


def collect(host: RunsCommands, probes: Mapping[str, str]) -> dict[str, ProbeResult]:
    """Run each probe command once; name -> result."""
    results: dict[str, ProbeResult] = {}
    for name, command in probes.items():
        out = host.run(command)
        results[name] = ProbeResult(out.rc, out.stdout, out.stderr)
    return results


def split_grep_h(text: str, prefix: str, names: tuple[str, ...]) -> dict[str, list[str]]:
    """Parse `grep -H . <files>` output into path -> lines.

    Probes read many small sysfs/procfs files in one round trip with `grep -H .`, which prints
    `path:line` for every non-empty line. Paths can contain ':' (PCI addresses) and values can
    contain '/' ("400 Gb/sec"), so the path is the shortest one that starts with `prefix` and
    ends in one of the expected file `names`.
    """
    pattern = re.compile(rf"^({re.escape(prefix)}.*?/(?:{'|'.join(map(re.escape, names))})):(.*)$")
    files: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            files.setdefault(match.group(1), []).append(match.group(2))
    return files

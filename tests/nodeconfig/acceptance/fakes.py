"""A stand-in for testinfra's `host` that answers probe commands with recorded output.

A fixture directory holds, per probe name, `<probe>.out` (stdout), and optionally `<probe>.rc`
(exit status, default 0) and `<probe>.err` (stderr). No `.out` file means the command does not
exist on that node: exit status 127, as the shell reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nodeconfig.acceptance.probes import ProbeResult, collect

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


class FixtureHost:
    def __init__(self, directory: Path, probes: Mapping[str, str]):
        self.directory = directory
        self.names = {command: name for name, command in probes.items()}
        self.commands: list[str] = []

    def run(self, command: str, *args: str) -> Result:
        self.commands.append(command)
        name = self.names[command]  # a KeyError here means a check ran an unrecorded command
        out = self.directory / f"{name}.out"
        if not out.exists():
            return Result(127, "", f"sh: 1: {command.split()[0]}: not found\n")
        rc_file = self.directory / f"{name}.rc"
        err_file = self.directory / f"{name}.err"
        return Result(
            int(rc_file.read_text()) if rc_file.exists() else 0,
            out.read_text(),
            err_file.read_text() if err_file.exists() else "",
        )


def recorded(kind: str, name: str, probes: Mapping[str, str]) -> dict[str, ProbeResult]:
    """Probe results for fixture `tests/fixtures/<kind>/<name>`, collected as on a real host."""
    directory = FIXTURES / kind / name
    assert directory.is_dir(), directory
    return collect(FixtureHost(directory, probes), probes)

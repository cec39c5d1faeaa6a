"""The result of `sovereign verify`: one row per host, role and check.

Rows come from the pytest plugin (plugin.py) as JSON, so the same format is what `--json`
prints and what the runner reads back from each pytest process.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rich.table import Table
from rich.text import Text

# pending: not checkable yet by design (operator mode before the GPU Operator's driver); not a
# failure, not a pass either: the report says so, and `ok` allows it.
Status = Literal["passed", "pending", "failed", "error", "skipped"]
STATUSES: tuple[Status, ...] = ("passed", "pending", "failed", "error", "skipped")
_STYLE = {"passed": "green", "pending": "cyan", "failed": "bold red", "error": "bold magenta", "skipped": "yellow"}


@dataclass(frozen=True)
class ReportRow:
    host: str
    role: str
    check: str
    status: Status  # failed: the node is not as designed; error: the check could not run
    message: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportRow:
        status = data["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r} in report row {data!r}")
        return cls(data["host"], data["role"], data["check"], status, data.get("message", ""))


@dataclass(frozen=True)
class VerifyReport:
    rows: tuple[ReportRow, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        # Nothing checked is not a pass: an empty report means the suite did not run.
        return bool(self.rows) and all(r.status in ("passed", "pending") for r in self.rows)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.status for r in self.rows)
        return {s: counted.get(s, 0) for s in STATUSES}

    @property
    def hosts(self) -> list[str]:
        return sorted({r.host for r in self.rows})

    def sorted(self) -> VerifyReport:
        """By host and role; checks keep the order they are defined in (a stable sort)."""
        return VerifyReport(tuple(sorted(self.rows, key=lambda r: (r.host, r.role))))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts, "rows": [asdict(r) for r in self.rows]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifyReport:
        return cls(tuple(ReportRow.from_dict(r) for r in data.get("rows", [])))

    def table(self, *, failures_only: bool = False) -> Table:
        table = Table(title="Node acceptance", show_lines=False)
        for column in ("Host", "Role", "Check", "Status", "Message"):
            table.add_column(column, overflow="fold")
        for r in self.rows:
            if failures_only and r.status == "passed":
                continue
            table.add_row(r.host, r.role, r.check, Text(r.status, style=_STYLE[r.status]), r.message)
        counts = self.counts
        table.caption = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks ran"
        return table

    def __rich__(self) -> Table:
        return self.table()

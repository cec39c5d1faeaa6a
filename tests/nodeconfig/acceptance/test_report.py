from __future__ import annotations

import json

from rich.console import Console

from nodeconfig.acceptance.report import ReportRow, VerifyReport

ROWS = (
    ReportRow("node2", "nvidia_host", "ecc", "failed", "ECC not enabled on GPU 3 (0000:5d:00.0) (disabled)"),
    ReportRow("node1", "baseline", "packages", "passed", "all 11 packages present"),
    ReportRow("node1", "baseline", "journald", "passed", "ok"),
    ReportRow("node3", "-", "run", "error", "checks did not finish within 900 s"),
)


def test_ok_only_when_every_row_passed() -> None:
    assert VerifyReport(ROWS[1:3]).ok
    assert not VerifyReport(ROWS).ok
    assert not VerifyReport(()).ok  # nothing checked is not a pass


def test_pending_is_neither_a_pass_nor_a_failure() -> None:
    waiting = ReportRow("gpu1", "nvidia_host", "ecc", "pending", "no driver loaded yet: the GPU Operator provides it")
    report = VerifyReport((*ROWS[1:3], waiting))
    assert report.ok and report.counts["pending"] == 1 and report.counts["passed"] == 2
    assert VerifyReport.from_dict(json.loads(report.to_json())).rows[-1].status == "pending"


def test_json_round_trip() -> None:
    report = VerifyReport(ROWS)
    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert data["counts"] == {"passed": 2, "pending": 0, "failed": 1, "error": 1, "skipped": 0}
    assert data["rows"][0] == {
        "host": "node2", "role": "nvidia_host", "check": "ecc", "status": "failed",
        "message": "ECC not enabled on GPU 3 (0000:5d:00.0) (disabled)",
    }  # fmt: skip
    assert VerifyReport.from_dict(data) == report


def test_sorted_by_host_and_role_keeping_check_order() -> None:
    rows = VerifyReport(ROWS).sorted().rows
    assert [(r.host, r.check) for r in rows] == [
        ("node1", "packages"), ("node1", "journald"), ("node2", "ecc"), ("node3", "run"),
    ]  # fmt: skip


def test_rich_table_shows_every_row_and_a_summary() -> None:
    console = Console(width=160, record=True)
    console.print(VerifyReport(ROWS))
    text = console.export_text()
    assert "ECC not enabled on GPU 3" in text and "node3" in text
    assert "2 passed, 1 failed, 1 error" in text


def test_failures_only_table() -> None:
    table = VerifyReport(ROWS).table(failures_only=True)
    assert table.row_count == 2

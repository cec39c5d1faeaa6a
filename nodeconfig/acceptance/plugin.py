"""pytest plugin (`-p nodeconfig.acceptance.plugin`) that writes one report row per host, role and
check to the JSON file named by --sovereign-report. The runner reads those files back.

Status: `failed` when a check's assertion failed (the node differs from the design), `error` when
the check could not run (unreachable host, unreadable expectation, a bug), `passed` otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from nodeconfig.acceptance.report import ReportRow, Status, VerifyReport
from stacks.design import atomic


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("sovereign").addoption(
        "--sovereign-report", help="write the acceptance report rows to this JSON file"
    )


def _host_name(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    return host.backend.get_hostname() if host is not None else "-"


def _check_name(item: pytest.Item) -> str:
    # "test_gpu_count[ansible://node1]" -> "gpu_count"; other parameters stay, the host goes.
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        params = [str(v) for k, v in callspec.params.items() if k != "_testinfra_host"]
        if params:
            name += f"[{'-'.join(params)}]"
    return name


def _message(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if call.excinfo is not None:
        exc = call.excinfo.value
        text = str(getattr(exc, "msg", None) or exc) or call.excinfo.typename
        return text if isinstance(exc, (AssertionError, pytest.fail.Exception)) else f"{call.excinfo.typename}: {text}"
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    return ""


class _Recorder:
    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, ReportRow] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if item.nodeid in self.rows and self.rows[item.nodeid].status != "passed":
            return  # the first problem (usually setup) explains the rest
        status: Status | None = None
        if report.skipped:
            status = "skipped"
        elif report.failed:
            exc = call.excinfo.value if call.excinfo else None
            assertion = isinstance(exc, (AssertionError, pytest.fail.Exception))
            status = "failed" if report.when == "call" and assertion else "error"
        elif report.when == "call":
            status = "passed"
        if status is None:
            return
        message = _message(report, call)
        if status == "passed":
            props = dict(item.user_properties)
            message = str(props.get("message", ""))
            status = "pending" if props.get("status") == "pending" else "passed"
        role = Path(str(item.path)).stem.removeprefix("test_")
        self.rows[item.nodeid] = ReportRow(_host_name(item), role, _check_name(item), status, message)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            role = Path(report.nodeid.split("::")[0]).stem.removeprefix("test_")
            text = str(report.longrepr).strip().splitlines()
            self.rows[report.nodeid] = ReportRow("-", role, "collect", "error", text[-1] if text else "")

    def pytest_sessionfinish(self) -> None:
        atomic.write_file(self.path, VerifyReport(tuple(self.rows.values())).to_json())


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("sovereign_report")
    if path:
        config.pluginmanager.register(_Recorder(Path(path)), "sovereign-recorder")


def read_rows(path: Path) -> list[ReportRow]:
    return list(VerifyReport.from_dict(json.loads(path.read_text())).rows)

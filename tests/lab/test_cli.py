"""Fast tier: `sovereign lab nodes` parses, renders and maps errors to exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from lab.nodes import NodeLab


def lab(*args: str) -> list[str]:
    # Through the root group: it owns the exit codes, the JSON error documents and "no traceback".
    return ["lab", *args]


@pytest.fixture()
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("SOVEREIGN_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("SOVEREIGN_LAB", raising=False)
    return CliRunner()


def test_status_of_a_lab_that_does_not_exist(runner: CliRunner) -> None:
    result = runner.invoke(cli, lab("nodes", "status", "--name", "nope", "--json"))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"name": "nope", "exists": False, "nodes": []}
    human = runner.invoke(cli, lab("nodes", "status", "--name", "nope"))
    assert "no nodes" in human.stdout


def test_invalid_name_exits_2_with_one_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, lab("nodes", "status", "--name", "Bad_Name", "--json"))
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["exit_code"] == 2
    assert document["problems"][0]["message"].startswith("invalid lab name")
    assert "Traceback" not in result.output


def test_lab_name_comes_from_the_environment(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOVEREIGN_LAB", "from-env")
    result = runner.invoke(cli, lab("nodes", "status", "--json"))
    assert json.loads(result.stdout)["name"] == "from-env"


def test_not_root_exits_3(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for verb in ("up", "down"):
        result = runner.invoke(cli, lab("nodes", verb, "--name", "x"))
        assert result.exit_code == 3, result.output
        assert "needs root" in result.output and "Traceback" not in result.output


def test_count_out_of_range_is_a_usage_error(runner: CliRunner) -> None:
    assert runner.invoke(cli, lab("nodes", "up", "--count", "0")).exit_code == 2


def test_unexpected_errors_exit_1_without_traceback(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: NodeLab) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(NodeLab, "status", boom)
    result = runner.invoke(cli, lab("nodes", "status"))
    assert result.exit_code == 1
    assert "disk on fire" in result.output and "Traceback" not in result.output

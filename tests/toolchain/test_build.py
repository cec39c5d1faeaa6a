"""Fast tier: the toolchain's bookkeeping — what is missing, resuming, and failures with the log tail."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from toolchain import build, pins
from toolchain.env import LAB_PASSPHRASE, engine_env, shell_exports


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOVEREIGN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_go(tmp_path: Path, script: str) -> Path:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text("#!/bin/sh\n" + script)
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_a_failed_build_names_the_step_and_shows_the_log_tail(empty_cache, tmp_path, monkeypatch):
    fake = _fake_go(tmp_path, 'echo "module lookup disabled: proxy refused example.com/x" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(build.ToolchainError) as caught:
        build.install()
    message = str(caught.value)
    assert message.startswith("pulumi: `go mod download` failed (exit 1)")
    assert "proxy refused example.com/x" in message
    assert (pins.tools_dir() / "log" / "pulumi.log").is_file()
    assert not (pins.tools_dir() / "bin" / "pulumi").exists()  # nothing half-installed


def test_built_steps_are_skipped(empty_cache, tmp_path, monkeypatch):
    root = pins.tools_dir()
    for step in build.STEPS:
        for output in step.outputs:
            (root / output).parent.mkdir(parents=True, exist_ok=True)
            (root / output).write_text("built")
    # A `go` that fails if called at all: nothing may be rebuilt.
    fake = _fake_go(tmp_path, "exit 99\n")
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert build.install() == {}


def test_missing_go_is_an_environment_error(empty_cache, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(build.ToolchainError, match="Go is not installed"):
        build.install()


def test_status_exit_3_and_json_when_tools_are_missing(empty_cache):
    result = CliRunner().invoke(cli, ["tools", "status", "--json"])
    assert result.exit_code == 3
    import json

    data = json.loads(result.stdout)
    assert data["ok"] is False and {t["name"] for t in data["tools"]} == {s.name for s in build.STEPS}


def test_engine_env_is_offline_and_the_lab_passphrase_is_for_lab_runs_only(tmp_path, monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    env = engine_env(tmp_path / "backend", lab=False)
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["PULUMI_BACKEND_URL"] == (tmp_path / "backend").as_uri()
    assert "PULUMI_CONFIG_PASSPHRASE" not in env
    assert engine_env(tmp_path / "backend", lab=True)["PULUMI_CONFIG_PASSPHRASE"] == LAB_PASSPHRASE
    assert "export PULUMI_HOME='" in shell_exports(env)


def test_a_production_stack_without_a_passphrase_is_refused(monkeypatch):
    from stacks.automation import EngineError, engine_environment

    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    with pytest.raises(EngineError, match="PULUMI_CONFIG_PASSPHRASE"):
        engine_environment("ke-production", None)


def test_an_installed_pulumi_of_the_pinned_version_is_used_instead_of_building(empty_cache, tmp_path, monkeypatch):
    fake = _fake_go(tmp_path, "exit 99\n")  # building anything would fail
    install_dir = tmp_path / "pulumi-install"
    install_dir.mkdir()
    for name in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python"):
        tool = install_dir / name
        tool.write_text(f"#!/bin/sh\necho v{pins.PULUMI}\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{install_dir}{os.pathsep}{fake}{os.pathsep}{os.environ['PATH']}")
    root = pins.tools_dir()
    for step in build.STEPS[2:]:
        for output in step.outputs:
            (root / output).parent.mkdir(parents=True, exist_ok=True)
            (root / output).write_text("built")
    assert build.install() == {}
    assert (root / "bin" / "pulumi").resolve() == install_dir / "pulumi"


def test_an_installed_pulumi_of_another_version_is_not_used(empty_cache, tmp_path, monkeypatch):
    install_dir = tmp_path / "pulumi-install"
    install_dir.mkdir()
    tool = install_dir / "pulumi"
    tool.write_text("#!/bin/sh\necho v3.100.0\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{install_dir}{os.pathsep}{os.environ['PATH']}")
    assert build.adopt_installed_pulumi(pins.tools_dir()) is False


def test_builds_link_stripped_and_keep_their_version_stamp(tmp_path):
    """A real `go build` through the Builder: -s -w joins the step's own -ldflags (the -X version
    stamp still lands) and the binary has no symbol table (`go tool nm` finds none)."""
    work = tmp_path / "hello"
    work.mkdir()
    (work / "go.mod").write_text("module local/hello\ngo 1.24\n")
    (work / "main.go").write_text('package main\nimport "fmt"\nvar Version = "unset"\nfunc main() { fmt.Print(Version) }\n')
    log = tmp_path / "build.log"
    builder = build.Builder(tmp_path, log)
    builder.go("build", "-ldflags", "-X main.Version=v9", "-o", str(tmp_path / "hello-bin"), ".", cwd=work)
    assert "-ldflags -s -w -X main.Version=v9" in log.read_text()
    assert subprocess.run([str(tmp_path / "hello-bin")], capture_output=True, text=True, check=True).stdout == "v9"
    nm = subprocess.run(["go", "tool", "nm", str(tmp_path / "hello-bin")], capture_output=True, text=True, check=False)
    assert "no symbols" in nm.stderr + nm.stdout

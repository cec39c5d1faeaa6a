"""Every outcome through the root group: one JSON document with --json, documented exit codes,
no traceback — for usage errors, bad input, Ctrl-C (also while the commands load) and crashes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli import output
from cli.main import Sovereign, cli

REPO = Path(__file__).resolve().parents[2]

def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def error_document(result, code: int) -> dict:
    assert result.exit_code == code, result.output
    document = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing data
    assert document["ok"] is False and document["exit_code"] == code and document["problems"]
    for problem in document["problems"]:
        assert set(problem) == {"file", "line", "field", "message"} and problem["message"]
    return document


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("plan", "--json", "--bogus"), ""),
        (("plan", "--json"), "STACK|FILE"),
        (("validate", "--json"), "STACK|FILE..."),
        (("new", "--json"), "COUNTRY"),
        (("new", "KE", "--template", "nope", "--json"), "--template"),
        (("new", "ZZ", "--template", "expand", "--json"), "COUNTRY"),
        (("new", "KE", "--template", "expand", "--env", "Bad Env", "--json"), "--env"),
        (("verify", "--json"), ""),
        (("lab", "nodes", "up", "--count", "0", "--json"), "--count"),
        (("configure", "ke-staging", "--forks", "0", "--json"), "--forks"),
        (("--json",), ""),
        (("nosuchcommand", "--json"), ""),
    ],
)
def test_usage_errors_are_one_json_document(args, field):
    document = error_document(invoke(*args), 2)
    assert document["problems"][0]["field"] == field


def test_usage_errors_without_json_read_as_click_usage(tmp_path):
    result = invoke("new", "KE", "--template", "nope")
    assert result.exit_code == 2 and "Usage:" in result.output and "'nope' is not one of" in result.output


def test_new_refusing_to_overwrite_is_json(tmp_path):
    out = ("--out", str(tmp_path))
    assert invoke("new", "KE", "--template", "expand", *out, "--json").exit_code == 0
    document = error_document(invoke("new", "KE", "--template", "expand", *out, "--json"), 2)
    assert document["problems"][0]["field"] == "--force"


def test_verify_bad_local_vars_is_json(tmp_path):
    error_document(invoke("verify", "--local", str(tmp_path / "none.yaml"), "--json"), 2)


def test_lab_errors_carry_their_code_in_the_same_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("SOVEREIGN_STATE", str(tmp_path))
    document = error_document(invoke("lab", "nodes", "status", "--name", "Bad_Name", "--json"), 2)
    assert "invalid lab name" in document["problems"][0]["message"]


@pytest.mark.parametrize("as_json", [True, False])
def test_ctrl_c_in_a_command_exits_130(monkeypatch, as_json):
    def interrupted(ref):
        raise KeyboardInterrupt

    monkeypatch.setattr("cli.commands.validate.load_and_design", interrupted)
    # What the test process inherited: a background job of a non-interactive shell starts with
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all.
    before = signal.getsignal(signal.SIGINT)
    result = invoke("validate", "ke-staging", *(["--json"] if as_json else []))
    if as_json:
        assert error_document(result, 130)["problems"][0]["message"] == "interrupted"
    else:
        assert result.exit_code == 130 and "interrupted" in result.output and "Aborted" not in result.output
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works again afterwards, as it did before


def test_ctrl_c_while_the_commands_load_exits_130(monkeypatch, capsys):
    # Ctrl-C lands while `cli.main` (pydantic, rich, the model) is being imported.
    class Interrupting:
        def find_spec(self, name, path=None, target=None):
            if name == "cli.main":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "cli.main")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["sovereign", "plan", "ke-staging", "--json"])
    from cli.__main__ import main

    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 130
    document = json.loads(capsys.readouterr().out)
    assert document == {"ok": False, "exit_code": 130, "problems": [
        {"file": "", "line": None, "field": "", "message": "interrupted"}]}


@pytest.mark.parametrize("delay", [0.05, 0.3, 1.0])
def test_sigint_to_a_real_process_never_prints_a_traceback(delay):
    # Whenever SIGINT lands (loading the commands, planning, or done), the process ends with 0 or
    # 130 and stdout is one JSON document. The clock starts once the interpreter has imported the
    # `cli` package (-X importtime reports it): Python's own start-up is not ours to guard.
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "cli", "plan", "ke-staging", "--json"], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.rstrip().endswith("| cli"):
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = "".join(seen) + err
    assert proc.returncode in (0, 130), err[-2000:]
    assert "Traceback" not in err
    assert json.loads(out)["ok" if proc.returncode else "country"] in (False, "KE")


@pytest.mark.parametrize("as_json", [True, False])
def test_a_crash_is_one_line_and_exit_1(monkeypatch, as_json):
    def crash(ref):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("cli.commands.plan.load_and_design", crash)
    result = invoke("plan", "ke-staging", *(["--json"] if as_json else []))
    if as_json:
        assert "disk on fire" in error_document(result, 1)["problems"][0]["message"]
    else:
        assert result.exit_code == 1 and "disk on fire" in result.output


def test_a_command_that_emitted_its_document_keeps_it_as_the_only_one():
    @click.group(cls=Sovereign)
    def group() -> None:
        pass

    @group.command()
    @output.json_option
    def run(as_json: bool) -> None:
        output.emit_json({"ok": False, "hosts": 2})
        raise output.OperationFailed("2 hosts failed")

    result = CliRunner().invoke(group, ["run", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout) == {"ok": False, "hosts": 2}


def test_names_with_square_brackets_are_text_not_markup(write_stack, partnership_dict, tmp_path):
    partnership_dict["name"] = "Kenya [/] AI"
    partnership_dict["funding"][0]["party"] = "Gov [/bold]"
    partnership_dict["sites"][0]["city"] = "[red]Nairobi"
    path = write_stack(partnership_dict, name="Pulumi.tl-[x].yaml")
    for command in ("plan", "validate"):
        result = invoke(command, str(path))
        assert result.exit_code == 0, result.output
    assert "Kenya [/] AI" in result.output or "Kenya [/] AI" in invoke("plan", str(path)).output
    assert "Gov [/bold]" in invoke("plan", str(path)).output
    assert "tl-[x]" in invoke("validate", str(path)).output


def test_plan_out_into_a_path_under_a_file_is_exit_3(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    document = error_document(invoke("plan", "ke-staging", "--json", "--out", str(blocker / "sub")), 3)
    assert str(blocker) in document["problems"][0]["file"]
    assert error_document(invoke("plan", "ke-staging", "--json", "--out", str(blocker)), 2)


def test_help_with_json_is_one_document_too():
    document = json.loads(invoke("plan", "--help", "--json").stdout)
    assert document["ok"] is True and "Usage: " in document["text"]


def test_exit_codes_are_documented_in_help():
    text = invoke("--help").output
    assert "130 interrupted" in text and "one JSON document" in text


def test_every_registered_command_runs_through_the_root_group():
    # New commands (up, preview, destroy, ...) get the guarantees by being registered here.
    assert isinstance(cli, Sovereign) and cli.commands
    for name in cli.commands:
        result = CliRunner().invoke(cli, [name, "--json", "--no-such-option"])
        assert result.exit_code == 2 and json.loads(result.stdout)["ok"] is False, name


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("SOVEREIGN_DEBUG", "1")
    monkeypatch.setattr("cli.commands.plan.load_and_design", lambda ref: 1 / 0)
    result = CliRunner().invoke(cli, ["plan", "ke-staging"])
    assert isinstance(result.exception, ZeroDivisionError)  # re-raised for the traceback, not rendered


def test_json_given_as_the_value_of_an_option_is_not_the_flag(tmp_path, monkeypatch):
    # click reads `--out --json` as the folder "--json"; the error path must read it the same way.
    monkeypatch.chdir(tmp_path)
    result = invoke("plan", str(REPO / "countries" / "Pulumi.ke-staging.yaml"), "--out", "--json")
    assert result.exit_code == 0, result.output
    assert not result.stdout.lstrip().startswith("{") and "Kenya" in result.stdout
    assert (tmp_path / "--json" / "ke-staging" / "plan.json").is_file()
    failed = invoke("plan", str(tmp_path / "missing.yaml"), "--out", "--json")
    assert failed.exit_code == 2 and failed.stdout == "" and "missing.yaml" in failed.stderr
    missing_argument = invoke("plan", "--out", "--json")
    assert missing_argument.exit_code == 2 and missing_argument.stdout == ""


def test_json_after_an_option_value_is_the_flag(tmp_path):
    document = error_document(invoke("plan", str(tmp_path / "missing.yaml"), "--out", str(tmp_path), "--json"), 2)
    assert "missing.yaml" in document["problems"][0]["file"]


def test_help_as_an_option_value_is_not_help():
    assert output._asks_for_text(["plan", "x", "--out", "--help", "--json"], cli) is False
    assert output.json_requested(["plan", "x", "--out", "--help", "--json"], cli) is True
    assert output._asks_for_text(["plan", "--help", "--json"], cli) is True


def test_engine_progress_drops_the_programs_traceback_when_a_resource_failed():
    from cli.engine_view import program_message

    shutdown = ("Program failed with an unhandled exception:\nTraceback (most recent call last):\n"
                '  File "x.py"\nException: resource monitor shut down\n')
    assert program_message(shutdown) == ""
    other = "Program failed:\nTraceback (most recent call last):\n  File \"p.py\", line 3\nValueError: bad partnership\n"
    assert program_message(other) == "ValueError: bad partnership"
    assert program_message("  a resource failed: conflict  ") == "a resource failed: conflict"

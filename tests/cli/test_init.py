"""init and the commands around it, as a new user meets them in an empty directory:
commands that need a project say so (exit 3); commands given files keep working anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from nodeconfig.configure import plan_target
from stacks.design.project import PROJECT_ENV, find_project

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty(tmp_path, monkeypatch):
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_project(tmp_path) is None
    return tmp_path


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_the_flow_from_an_empty_directory(empty, monkeypatch):
    result = run("init", "--country", "ng", "--template", "greenfield")
    assert result.exit_code == 0, result.output
    assert "wrote countries/Pulumi.ng-staging.yaml" in result.output
    assert files_under(empty) == {
        "Pulumi.yaml", "program/__main__.py", "requirements.txt", ".gitignore", "README.md",
        "countries/Pulumi.ng-staging.yaml",
    }  # fmt: skip
    assert run("new", "ke", "--template", "expand").exit_code == 0
    assert (empty / "countries" / "Pulumi.ke-staging.yaml").is_file()

    # From a subdirectory, as pulumi finds its project.
    (empty / "docs").mkdir()
    monkeypatch.chdir(empty / "docs")
    assert run("validate", "ng-staging", "ke-staging").exit_code == 0
    plan = run("plan", "ng-staging", "--json")
    assert plan.exit_code == 0 and json.loads(plan.output)["country"] == "NG"
    fleet = json.loads(run("fleet", "--json").output)
    assert sorted(r["stack"] for r in fleet["stacks"]) == ["ke-staging", "ng-staging"]
    # configure's runs belong to the project, never to the tool's install location.
    assert plan_target("ke-staging").state_dir.is_relative_to(empty / ".sovereign")


def test_init_twice_is_safe_and_keeps_edits(empty):
    assert run("init", "--country", "ke", "--template", "expand").exit_code == 0
    stack = empty / "countries" / "Pulumi.ke-staging.yaml"
    stack.write_text(stack.read_text(encoding="utf-8").replace("TBD", "Nairobi"), encoding="utf-8")
    before = {p: p.read_bytes() for p in empty.rglob("*") if p.is_file()}
    again = run("init", "--country", "ke", "--template", "expand", "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    assert report["written"] == [] and len(report["kept"]) == 6 and report["stack"] == "ke-staging"
    assert {p: p.read_bytes() for p in empty.rglob("*") if p.is_file()} == before


def test_init_into_a_directory_and_work_there_with_project(empty):
    result = run("init", "nat/ke", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["project"] == str(empty / "nat" / "ke") and report["name"] == "ke"
    assert report["state_dir"] == str(empty / "nat" / "ke" / ".sovereign")
    assert run("--project", "nat/ke", "new", "br", "--template", "greenfield").exit_code == 0
    assert (empty / "nat" / "ke" / "countries" / "Pulumi.br-staging.yaml").is_file()
    assert run("--project", "nat/ke", "validate", "br-staging").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "ke-staging"),
        ("plan", "ke-staging"),
        ("new", "ke", "--template", "greenfield"),
        ("fleet",),
        ("configure", "ke-staging", "--check"),
        ("verify", "ke-staging"),
    ],
)
def test_outside_a_project_commands_that_need_one_say_so(empty, args):
    result = run(*args)
    assert result.exit_code == 3, result.output
    assert "not in a Sovereign project" in result.output and "sovereign init" in result.output
    assert "Traceback" not in result.output
    assert files_under(empty) == set()  # nothing written anywhere near


def test_outside_a_project_json_is_one_document(empty):
    result = run("validate", "ke-staging", "--json")
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["exit_code"] == 3
    assert "sovereign init" in document["problems"][0]["message"]


def test_files_work_outside_any_project(empty):
    stack = empty / "Pulumi.ke-staging.yaml"
    shutil.copy(REPO / "countries" / "Pulumi.ke-staging.yaml", stack)
    assert run("validate", str(stack)).exit_code == 0
    assert run("plan", str(stack), "--out", "plans").exit_code == 0
    assert (empty / "plans" / "ke-staging" / "plan.json").is_file()
    assert run("fleet", str(empty)).exit_code == 0


def test_a_project_that_is_not_one(empty):
    result = run("--project", str(empty), "validate", "ke-staging")
    assert result.exit_code == 3 and f"--project {empty}: no Pulumi.yaml there" in result.output
    (empty / "Pulumi.yaml").write_text("name: [\n", encoding="utf-8")
    broken = run("validate", "ke-staging", "--json")
    assert broken.exit_code == 2, broken.output
    problem = json.loads(broken.stdout)["problems"][0]
    assert problem["file"] == str(empty / "Pulumi.yaml") and "malformed YAML" in problem["message"]


def test_bad_init_arguments_are_input_errors(empty):
    assert run("init", "--country", "xx", "--template", "expand").exit_code == 2
    assert run("init", "--country", "ke").exit_code == 2
    assert run("init", "--name", "no spaces please").exit_code == 2
    assert files_under(empty) == set()

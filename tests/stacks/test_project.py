"""Project discovery (nearest Pulumi.yaml, --project via $SOVEREIGN_PROJECT) and `init_project`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from nodeconfig.settings import PLAYBOOKS, ROLES_PATH, roles_path
from stacks.design.project import (
    PROJECT_ENV,
    ProjectInvalid,
    ProjectNotFound,
    current_project,
    current_project_or_none,
    find_project,
    init_project,
    load_project,
)
from stacks.design.starter import TEMPLATES_DIR

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory in no project, with no --project chosen."""
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_project(tmp_path) is None, "a Pulumi.yaml above the temporary directory"
    return tmp_path


def write_project(root: Path, text: str = "name: demo\nruntime: python\nstackConfigDir: countries\n", file="Pulumi.yaml") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / file).write_text(text, encoding="utf-8")
    return root


def test_the_nearest_pulumi_yaml_from_a_subdirectory_up(elsewhere):
    outer = write_project(elsewhere / "outer", "name: outer\n")
    inner = write_project(outer / "a" / "inner", "name: inner\nstackConfigDir: stacks/cfg\n")
    (inner / "b" / "c").mkdir(parents=True)
    found = find_project(inner / "b" / "c")
    assert found is not None
    assert (found.name, found.root, found.stack_config_dir) == ("inner", inner, inner / "stacks" / "cfg")
    assert found.state_dir == inner / ".sovereign"
    # Without stackConfigDir, Pulumi keeps the stack configs beside Pulumi.yaml.
    assert find_project(outer / "a") == load_project(outer)
    assert load_project(outer).stack_config_dir == outer


def test_pulumi_yml_counts_too(elsewhere):
    root = write_project(elsewhere / "p", "name: yml\n", file="Pulumi.yml")
    assert find_project(root).name == "yml"


def test_the_current_directory_decides_unless_project_is_given(elsewhere, monkeypatch):
    here = write_project(elsewhere / "here", "name: here\n")
    there = write_project(elsewhere / "there", "name: there\n")
    monkeypatch.chdir(here)
    assert current_project().name == "here"
    monkeypatch.setenv(PROJECT_ENV, str(there))
    assert current_project().name == "there"


def test_outside_any_project_the_error_says_how_to_make_one(elsewhere, monkeypatch):
    assert current_project_or_none() is None
    with pytest.raises(ProjectNotFound, match=r"no Pulumi.yaml in .* `sovereign init"):
        current_project()
    # A --project that is not a project is an error even where a project is optional.
    monkeypatch.setenv(PROJECT_ENV, str(elsewhere))
    with pytest.raises(ProjectNotFound, match=rf"--project {elsewhere}: no Pulumi.yaml there"):
        current_project_or_none()


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("name: [unclosed\n", "", "malformed YAML (line 2)"),
        ("- a list\n", "", "expected a mapping"),
        ("runtime: python\n", "name", "expected the project's name"),
        ("name: x\nstackConfigDir: [a]\n", "stackConfigDir", "expected a directory"),
    ],
)
def test_a_broken_pulumi_yaml_names_the_file_and_field(elsewhere, text, field, message):
    root = write_project(elsewhere / "bad", text)
    with pytest.raises(ProjectInvalid) as caught:
        find_project(root)
    assert caught.value.file == root / "Pulumi.yaml" and caught.value.field == field
    assert message in caught.value.message


def test_this_checkout_is_the_example_project():
    project = find_project(REPO / "stacks" / "design")
    assert project is not None
    assert (project.root, project.stack_config_dir) == (REPO, REPO / "countries")
    assert sorted(p.name for p in project.stack_config_dir.glob("Pulumi.*.yaml")) == [
        "Pulumi.br-staging.yaml", "Pulumi.de-staging.yaml", "Pulumi.in-staging.yaml", "Pulumi.ke-staging.yaml",
    ]  # fmt: skip


def test_init_writes_a_minimal_project_and_a_second_run_keeps_every_file(elsewhere):
    root = elsewhere / "ng"
    first = init_project(root, name="sovereign-ng", country_name="Nigeria")
    names = sorted(str(p.relative_to(root)) for p in first.written)
    assert names == [".gitignore", "Pulumi.yaml", "README.md", "program/__main__.py", "requirements.txt"]
    assert first.kept == ()
    project = find_project(root)
    assert project == first.project
    assert (project.name, project.stack_config_dir) == ("sovereign-ng", root / "countries")
    assert (root / "countries").is_dir()
    # The program is Sovereign's, a few lines: the country's repository holds no copy of the code.
    main = (root / "program" / "__main__.py").read_text(encoding="utf-8")
    code = [line for line in main.splitlines() if line and not line.startswith((" ", '"""'))]
    assert code == ["from stacks.program import main", "main()"]
    assert ".sovereign/" in (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "Nigeria" in (root / "README.md").read_text(encoding="utf-8")

    (root / "README.md").write_text("ours now\n", encoding="utf-8")
    second = init_project(root, name="other-name")
    assert second.written == () and sorted(second.kept) == sorted(first.written)
    assert (root / "README.md").read_text(encoding="utf-8") == "ours now\n"
    assert second.project.name == "sovereign-ng"


def test_package_data_is_found_inside_the_packages():
    # Not relative to a checkout: the same lookups work from an installed wheel (tests/test_wheel.py).
    assert ROLES_PATH == Path(str(resources.files("sovereign_roles")))
    assert (ROLES_PATH / "baseline" / "tasks" / "main.yml").is_file()
    assert (PLAYBOOKS / "site.yml").is_file()
    assert (TEMPLATES_DIR / "greenfield" / "stack.yaml.j2").is_file()
    assert (TEMPLATES_DIR / "project" / "Pulumi.yaml.j2").is_file()


def test_a_projects_own_roles_come_first(elsewhere, monkeypatch):
    root = write_project(elsewhere / "p")
    monkeypatch.chdir(root)
    assert roles_path() == str(ROLES_PATH)  # no roles/ of its own
    (root / "roles" / "baseline").mkdir(parents=True)
    assert roles_path().split(":") == [str(root / "roles"), str(ROLES_PATH)]

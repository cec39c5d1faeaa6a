"""new: writes a starter stack config that validates; refuses to overwrite; exit 2 on bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from stacks.design.loader import load_and_design
from stacks.design.project import PROJECT_ENV


@pytest.fixture
def countries(tmp_path, monkeypatch):
    """A project of its own in tmp_path, chosen as --project would: `new` writes into its countries/."""
    (tmp_path / "Pulumi.yaml").write_text("name: test\nruntime: python\nstackConfigDir: countries\n", encoding="utf-8")
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path))
    return tmp_path / "countries"


def run(*args):
    result = CliRunner().invoke(cli, ["new", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_writes_the_stack_config_and_prints_next_steps(countries):
    result = run("KE", "--template", "greenfield", "--site", "konza-1")
    assert result.exit_code == 0, result.output
    path = countries / "Pulumi.ke-staging.yaml"
    assert path.is_file()
    assert "FILL IN" in path.read_text(encoding="utf-8")
    assert "sovereign validate ke-staging" in result.output


@pytest.mark.parametrize("template", ["greenfield", "expand"])
def test_the_written_file_validates_as_is(countries, template):
    assert run("de", "--template", template, "--site", "a-1", "--site", "b-2").exit_code == 0
    partnership, design = load_and_design("de-staging")
    assert partnership.country == "DE" and partnership.mode.value == template
    assert [s.site for s in design.sites] == ["a-1", "b-2"] and design.gpus > 0
    validate = CliRunner().invoke(cli, ["validate", "de-staging"])
    assert validate.exit_code == 0, validate.output


def test_expand_asks_for_the_existing_cluster(countries):
    result = run("IN", "--template", "expand", "--env", "prod")
    assert result.exit_code == 0, result.output
    text = (countries / "Pulumi.in-prod.yaml").read_text(encoding="utf-8")
    assert "existing cluster's API endpoint" in text and "kubeconfig_secret:" in text
    assert "pulumi config set --secret -s in-prod kubeconfig" in result.output


def test_json_output(countries):
    result = run("BR", "--template", "greenfield", "--env", "dev", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "path": str(countries / "Pulumi.br-dev.yaml"),
        "stack": "br-dev",
        "replaced": False,
    }


def test_refuses_to_overwrite_without_force(countries):
    assert run("KE", "--template", "greenfield").exit_code == 0
    path = countries / "Pulumi.ke-staging.yaml"
    path.write_text("# reviewed by hand\n", encoding="utf-8")
    result = run("KE", "--template", "expand")
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert path.read_text(encoding="utf-8") == "# reviewed by hand\n"


def test_force_overwrites(countries):
    assert run("KE", "--template", "greenfield").exit_code == 0
    result = run("KE", "--template", "expand", "--force")
    assert result.exit_code == 0, result.output
    assert "Replaced" in result.output
    assert "mode: expand" in (countries / "Pulumi.ke-staging.yaml").read_text(encoding="utf-8")


def test_out_directory(tmp_path, countries):
    out = tmp_path / "elsewhere"
    result = run("KE", "--template", "greenfield", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert (out / "Pulumi.ke-staging.yaml").is_file()
    assert not countries.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["XX", "--template", "greenfield"], ["'COUNTRY'", "'XX'", "ISO 3166-1 alpha-2"]),
        (["Kenya", "--template", "greenfield"], ["'COUNTRY'", "'Kenya'", "KE"]),
        (["KE", "--template", "brownfield"], ["'--template'", "brownfield"]),
        (["KE"], ["--template"]),
        (["KE", "--template", "expand", "--env", "Prod"], ["'--env'", "'Prod'"]),
        (["KE", "--template", "expand", "--site", "Konza 1"], ["'--site'", "'Konza 1'"]),
        (["KE", "--template", "expand", "--site", "a1", "--site", "a1"], ["'--site'", "unique"]),
    ],
)
def test_invalid_input_exits_2_naming_the_argument(countries, args, words):
    result = run(*args)
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.output
    assert not countries.exists()

"""validate: every problem at once, each naming file, line and field; exit 2; never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_valid_file(write_stack, partnership_dict):
    path = write_stack(partnership_dict)
    result = run("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_every_example_stack_is_valid():
    result = run("validate", "ke-staging", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d["sites"][0].pop("power_budget_mw"), "sites[0].power_budget_mw", "required"),
        (lambda d: d["sites"][0]["networks"].update(data="10.10.0.0/33"), "sites[0].networks.data", "CIDR"),
        (lambda d: d["sites"][0]["networks"].update(data="10.10.0.1/16"), "sites[0].networks.data", "CIDR"),
        (lambda d: d["funding"][1].update(share=0.3), "funding", "sum to 1"),
        (lambda d: d["sites"][0]["capacity"].update(platform="hgx-a100"), "sites[0].capacity.platform", "unknown GPU platform"),
        (lambda d: d.update(country="XX"), "country", "ISO 3166"),
        (lambda d: d.update(languages=["english"]), "languages", "ISO 639"),
        (lambda d: d.update(currency="KSH"), "currency", "ISO 4217"),
        (lambda d: d["sites"][0]["networks"].update(oob="10.11.128.0/17"), "sites[0].networks", "overlap"),
        (lambda d: d["sites"][0]["capacity"].update(scalable_units=2), "sites[0].capacity", "exactly one"),
        (lambda d: d["sites"][0].update(colour="blue"), "sites[0].colour", "unknown field"),
        (lambda d: d.update(mode="expand"), "config.sovereign:partnership", "existing"),
        (lambda d: d.update(schema_version=7), "schema_version", "expected 1"),
        (lambda d: d["sites"][0]["capacity"].update(gpus=20_000), "sites[0].capacity", "power budget"),
        (lambda d: d["sites"][0]["capacity"].update(platform="gb200-nvl72"), "sites[0].capacity", "liquid cooling"),
        (lambda d: d["sites"][0]["networks"].update(data="10.10.0.0/25"), "sites[0].capacity", "pool data"),
        (lambda d: d["sites"][0].update(power_budget_mw=5000) or d["sites"][0]["capacity"].update(gpus=200_000),
         "sites[0].capacity", "fat tree"),
    ],
)
def test_bad_input_is_named(write_stack, partnership_dict, mutate, field, words):
    mutate(partnership_dict)
    path = write_stack(partnership_dict)
    result = run("validate", str(path))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(path) in result.output
    assert field in result.output
    assert words in result.output


def test_errors_carry_line_numbers(write_stack, partnership_dict):
    partnership_dict["sites"][0]["networks"]["data"] = "not-a-cidr"
    path = write_stack(partnership_dict)
    result = run("validate", str(path), "--json")
    assert result.exit_code == 2
    problems = json.loads(result.output)["problems"]
    (problem,) = problems
    line = path.read_text().splitlines()[problem["line"] - 1]
    assert "not-a-cidr" in line


def test_all_problems_reported_at_once(write_stack, partnership_dict):
    partnership_dict["country"] = "XX"
    partnership_dict["currency"] = "???"
    partnership_dict["sites"][0].pop("pue")
    result = run("validate", str(write_stack(partnership_dict)), "--json")
    assert result.exit_code == 2
    fields = {p["field"] for p in json.loads(result.output)["problems"]}
    assert {"config.sovereign:partnership.country", "config.sovereign:partnership.currency",
            "config.sovereign:partnership.sites[0].pue"} <= fields


@pytest.mark.parametrize(
    "raw",
    ["config: [unclosed", "config:\n  sovereign:partnership: 3\n", "- a\n- b\n", "", "config: {}\n", "\t:"],
)
def test_malformed_yaml(write_stack, raw):
    path = write_stack({}, raw=raw)
    result = run("validate", str(path))
    assert result.exit_code == 2, result.output
    assert str(path) in result.output


def test_missing_file_and_unknown_stack():
    assert run("validate", "no/such/file.yaml").exit_code == 2
    result = run("validate", "zz-nowhere")
    assert result.exit_code == 2 and "zz-nowhere" in result.output


def test_bare_partnership_file(tmp_path, partnership_dict):
    import yaml

    path = tmp_path / "partnership.yaml"
    path.write_text(yaml.safe_dump(partnership_dict))
    assert run("validate", str(path)).exit_code == 0

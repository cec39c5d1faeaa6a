"""plan and fleet through the CLI: text for people, JSON for machines, files with --out."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from cli.main import cli
from stacks.design.loader import countries_dir


def test_plan_text_names_sites_and_funding():
    result = CliRunner().invoke(cli, ["plan", "de-staging"])
    assert result.exit_code == 0, result.output
    for words in ("Sites", "Fabric", "Funding split", "US$"):
        assert words in result.output


def test_plan_json_and_out_dir(tmp_path):
    result = CliRunner().invoke(cli, ["plan", "ke-staging", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0
    plan = json.loads(result.output)
    assert plan["country"] == "KE" and plan["totals"]["new_gpus"] > 0
    assert abs(sum(f["share"] for f in plan["funding"]) - 1) < 1e-9
    assert sum(f["usd"] for f in plan["funding"]) == plan["totals"]["capex_usd"]
    assert plan.pop("written") == {"folder": str(tmp_path / "ke-staging"), "files": ["plan.json", "plan.txt"], "replaced": []}
    written = json.loads((tmp_path / "ke-staging" / "plan.json").read_text())
    assert written == plan
    assert "Kenya" in (tmp_path / "ke-staging" / "plan.txt").read_text()


def test_plan_bad_input_exit_2(write_stack, partnership_dict):
    partnership_dict["funding"][0]["share"] = 0.9
    result = CliRunner().invoke(cli, ["plan", str(write_stack(partnership_dict)), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["problems"][0]["field"].endswith("funding")


def test_fleet_sums_every_country():
    result = CliRunner().invoke(cli, ["fleet", "--json"])
    assert result.exit_code == 0, result.output
    stacks = {row["stack"] for row in json.loads(result.output)["stacks"]}
    assert {"ke-staging", "br-staging", "de-staging", "in-staging"} <= stacks


def test_fleet_lists_valid_stacks_and_fails_on_an_invalid_one(tmp_path):
    shutil.copy(countries_dir() / "Pulumi.ke-staging.yaml", tmp_path)
    (tmp_path / "Pulumi.zz-staging.yaml").write_text("config: {sovereign:partnership: {schema_version: 1}}\n")
    result = CliRunner().invoke(cli, ["fleet", str(tmp_path)])
    assert result.exit_code == 2
    assert "ke-staging" in result.output and "Pulumi.zz-staging.yaml" in result.output


def test_fleet_empty_folder(tmp_path):
    assert CliRunner().invoke(cli, ["fleet", str(tmp_path)]).exit_code == 2


def test_fleet_json_keeps_the_valid_rows_beside_the_problems(tmp_path):
    shutil.copy(countries_dir() / "Pulumi.ke-staging.yaml", tmp_path)
    (tmp_path / "Pulumi.zz-staging.yaml").write_text("config: {sovereign:partnership: {schema_version: 1}}\n")
    result = CliRunner().invoke(cli, ["fleet", str(tmp_path), "--json"])
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)  # one document: json.loads refuses a second one
    assert document["ok"] is False and document["exit_code"] == 2
    assert [row["stack"] for row in document["stacks"]] == ["ke-staging"]
    assert document["stacks"][0]["new_gpus"] > 0
    assert document["problems"] and all("Pulumi.zz-staging.yaml" in p["file"] for p in document["problems"])


def test_fleet_text_shows_the_table_and_the_problems(tmp_path):
    shutil.copy(countries_dir() / "Pulumi.ke-staging.yaml", tmp_path)
    (tmp_path / "Pulumi.zz-staging.yaml").write_text("config: {sovereign:partnership: {schema_version: 1}}\n")
    result = CliRunner().invoke(cli, ["fleet", str(tmp_path)])
    assert result.exit_code == 2
    assert "ke-staging" in result.stdout and "Pulumi.zz-staging.yaml" not in result.stdout
    assert "Pulumi.zz-staging.yaml" in result.stderr

"""approve and report through the CLI: exit codes, one JSON document, files where documented."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli.main import cli
from stacks.design.signing import public_line


def _key(folder, name):
    key = Ed25519PrivateKey.generate()
    path = folder / f"{name}.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path, public_line(key.public_key())


@pytest.fixture
def stack(tmp_path, write_stack, partnership_dict, monkeypatch):
    monkeypatch.setenv("SOVEREIGN_APPROVALS_DIR", str(tmp_path / "approvals"))
    keys = {name: _key(tmp_path, name) for name in ("gov", "partner", "stranger")}
    partnership_dict["approval"] = {"reviewers": [
        {"name": "Permanent Secretary", "kind": "government", "public_key": keys["gov"][1]},
        {"name": "Partner CTO", "kind": "partner", "public_key": keys["partner"][1]},
    ]}
    return write_stack(partnership_dict), keys, partnership_dict


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_approve_by_each_required_party(stack, tmp_path):
    path, keys, _ = stack
    first = _run("approve", path, "--key", keys["gov"][0], "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["approved"] is False and data["missing"] == ["partner"]
    assert data["signer"]["fingerprint"].startswith("SHA256:")
    second = json.loads(_run("approve", path, "--key", keys["partner"][0], "--json").output)
    assert second["approved"] is True and second["digest"] == data["digest"]
    folder = tmp_path / "approvals" / "tl-staging"
    assert (folder / f"{data['digest']}.plan.json").is_file()
    assert len(list(folder.glob(f"{data['digest']}.*.sig"))) == 2
    assert (folder / "plan.json").is_file() and (folder / "plan.txt").is_file()


def test_approve_refuses_an_unlisted_key(stack):
    path, keys, _ = stack
    result = _run("approve", path, "--key", keys["stranger"][0], "--json")
    assert result.exit_code == 2
    problem = json.loads(result.output)["problems"][0]
    assert problem["field"] == "--key" and "not one of the reviewers" in problem["message"]
    missing = _run("approve", path, "--key", "/nonexistent/key")
    assert missing.exit_code == 2 and "cannot read the key" in missing.output


def test_report_since_the_approved_plan(stack, tmp_path, write_stack):
    path, keys, data = stack
    for who in ("gov", "partner"):
        assert _run("approve", path, "--key", keys[who][0]).exit_code == 0
    data["sites"][0]["capacity"]["gpus"] = 2048
    write_stack(data)
    out = tmp_path / "out"
    result = _run("report", path, "--format", "html", "--since", "approved", "--lang", "de", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["files"] == [str(out / "tl-staging" / "report.de.html")] and report["since"]
    html = (out / "tl-staging" / "report.de.html").read_text()
    assert "Was sich seit der genehmigten Fassung geändert hat" in html
    assert "sites[0].capacity.gpus" in html and "2.048" in html


def test_report_default_languages_are_the_partnerships(stack, tmp_path):
    path, _, _ = stack
    result = _run("report", path, "--format", "html", "--out", tmp_path, "--json")
    assert json.loads(result.output)["languages"] == ["sw", "en"]


def test_report_bad_since_and_language(stack, tmp_path):
    path, _, _ = stack
    bogus = tmp_path / "bogus.json"
    bogus.write_text("{}")
    result = _run("report", path, "--format", "html", "--since", bogus, "--json")
    assert result.exit_code == 2
    assert json.loads(result.output)["problems"][0]["field"] == "--since"
    assert _run("report", path, "--since", "approved", "--format", "html").exit_code == 2
    assert _run("report", path, "--lang", "xx").exit_code == 2


def test_report_pdf_without_chromium_is_an_environment_error(stack, tmp_path, monkeypatch):
    path, _, _ = stack
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("SOVEREIGN_CHROMIUM", raising=False)
    result = _run("report", path, "--out", tmp_path)
    assert result.exit_code == 3 and "chromium" in result.output
    as_json = _run("report", path, "--out", tmp_path, "--json")
    assert as_json.exit_code == 3 and "chromium" in json.loads(as_json.output)["error"]


def test_report_says_when_the_engines_preview_is_unavailable_and_still_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("SOVEREIGN_STATE", str(tmp_path / "state"))
    lab = f"absent{os.getpid()}"
    result = _run("report", "ke-staging", "--lab", lab, "--format", "html", "--lang", "fr", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    preview = json.loads(result.stdout)["preview"]
    assert preview["status"] == "unavailable" and preview["digest"] is None and preview["target"] == lab
    assert f"lab '{lab}' has no Kubernetes" in preview["reason"]
    html = (tmp_path / "ke-staging" / "report.fr.html").read_text()
    assert "L'aperçu du moteur n'a pas pu être établi" in html and "has no Kubernetes" in html


def test_report_of_a_stack_outside_the_project_has_no_engine_view(stack, tmp_path):
    path, _, _ = stack
    result = _run("report", path, "--preview", "--format", "html", "--lang", "en", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    preview = json.loads(result.stdout)["preview"]
    assert preview["status"] == "unavailable" and "tl-staging" in preview["reason"]
    assert "Traceback" not in preview["reason"]


def test_report_with_the_engines_changes_keeps_the_plans_digest(tmp_path, monkeypatch):
    from stacks import automation
    from stacks.design.preview import change_from_step

    urn = "urn:pulumi:ke-staging::sovereign::sovereign:site:Site$sovereign:cluster:Cluster$sovereign:platform:Tenants$"
    seen = []

    def fake_preview(stack, *, lab=None):  # the engine's real run is tests/engine/test_report_preview.py
        seen.append((stack, lab))
        return [change_from_step(urn + "kubernetes:core/v1:Namespace::tenant-kra", "create", None)]

    monkeypatch.setattr(automation, "preview_changes", fake_preview)
    plain = json.loads(_run("report", "ke-staging", "--format", "html", "--lang", "en", "--out", tmp_path, "--json").stdout)
    assert plain["preview"]["status"] == "not_requested"
    result = _run("report", "countries/Pulumi.ke-staging.yaml", "--preview", "--format", "html", "--lang", "en",
                  "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert seen == [("ke-staging", None)]
    assert report["preview"]["status"] == "included" and report["preview"]["changes"] == {"create": 1}
    assert report["digest"] == plain["digest"]  # the approval covers partnership and design only
    html = (tmp_path / "ke-staging" / "report.en.html").read_text()
    assert "Namespace</bdi><br><bdi><code class=\"object\">tenant-kra</code>" in html and report["preview"]["digest"][:12] in html

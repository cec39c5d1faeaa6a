"""Real tier: the ministry's report with the real engine's preview. The stack is applied to the
lab, its partnership then changes (a tenant added, one removed, a GPU quota lowered), and the report
made against the lab lists the objects the engine would create, change and delete — in the HTML and
in the PDF's text, in English and in Arabic — with no secret in it.

Named to run after the other engine tests of this package (same lab): it leaves the stack applied,
which the lab's teardown removes with everything else.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.design.approval import digest, plan_document
from stacks.design.loader import load_and_design
from tests.engine.test_stack_on_lab import STACK, sovereign, up_json

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
# (operation, name) of the objects the test's change touches, in the report's objects table
OBJECT = (r'<td>([^<]+)</td><td><bdi>(?:Namespace|ResourceQuota)</bdi><br><bdi>'
          r'<code class="object">([\w-]+-tenants-(?:kra|kemri|uon-gpu-quota))</code>')


def _pdf_text(path: Path) -> str:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"[\u00a0\u202f ]+", " ", text.replace("\u200f", "").replace("\u200e", ""))


def _changed_project(kube_lab, folder: Path) -> Path:
    """A copy of the project whose ke-staging partnership a reviewer has been asked to approve anew."""
    # The same Pulumi project name: the file backend keeps stacks per project, and this is the same stack.
    made = sovereign("init", str(folder), "--name", "sovereign", "--json", env=kube_lab.env)
    assert made.returncode == 0, made.stdout + made.stderr
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1])  # the project's virtualenv: this one
    text = (ROOT / "countries" / f"Pulumi.{STACK}.yaml").read_text()
    kemri = "      - {name: kemri, title: Kenya Medical Research Institute, kind: research, gpu_quota: 128, admins: []}\n"
    assert kemri in text and "gpu_quota: 256" in text
    text = text.replace(kemri, "      - {name: kra, title: Kenya Revenue Authority, kind: agency, gpu_quota: 32, admins: []}\n")
    text = text.replace("gpu_quota: 256", "gpu_quota: 192")
    (folder / "countries" / f"Pulumi.{STACK}.yaml").write_text(text)
    return folder


def test_the_report_lists_the_engines_changes_since_the_approved_plan(kube_lab, tmp_path):
    up_json(kube_lab)  # what runs: the plan as approved
    partnership, design = load_and_design(STACK)
    approved = tmp_path / "approved.plan.json"
    approved.write_text(json.dumps(plan_document(STACK, partnership, design)))
    project = _changed_project(kube_lab, tmp_path / "country")
    out = tmp_path / "reports"

    made = sovereign("--project", str(project), "report", STACK, "--lab", kube_lab.name, "--since", str(approved),
                     "--lang", "en", "--lang", "ar", "--out", str(out), "--json", env=kube_lab.env)
    kube_lab.transcript.append(made.stdout + made.stderr)
    assert made.returncode == 0, made.stdout + made.stderr
    result = json.loads(made.stdout)
    preview = result["preview"]
    assert preview["status"] == "included" and preview["target"] == kube_lab.name, preview
    # kra: namespace, quota, limit range, role binding, network policy; kemri: the same, gone; uon: its quota
    assert preview["changes"].get("create", 0) >= 4 and preview["changes"].get("delete", 0) >= 4, preview
    assert preview["changes"].get("update", 0) >= 1, preview
    assert result["digest"] != digest(json.loads(approved.read_text()))  # the design/partnership diff is there too

    pages = {lang: (out / STACK / f"report.{lang}.html").read_text() for lang in ("en", "ar")}
    texts = {lang: _pdf_text(out / STACK / f"report.{lang}.pdf") for lang in ("en", "ar")}
    for lang in ("en", "ar"):
        section = pages[lang].split('<section id="engine"', 1)[1].split("</section>", 1)[0]
        assert 'data-status="included"' in section and preview["digest"][:12] in section
        objects = {name: op for op, name in re.findall(OBJECT, section)}
        assert len(objects) == 3, section
        quota = next(name for name in objects if name.endswith("uon-gpu-quota"))
        # the changed property by name, never its value (192 or 256)
        changed = re.search(rf'{quota}</code></bdi></td><td><bdi><code>([^<]*)</code>', section)
        assert changed and changed.group(1).startswith("spec") and "192" not in changed.group(1), section
        text = texts[lang]
        assert preview["digest"][:12] in text
        # pdftotext joins a name wrapped at a hyphen without the hyphen: compare without them
        flat = re.sub(r"[\s-]", "", text)
        for name in objects:
            assert name.replace("-", "") in flat, f"{name} not in the {lang} PDF"
        assert "spec.hard" in text
    words = {"en": ("new", "changed", "removed"), "ar": ("جديد", "معدّل", "محذوف")}
    for lang, (new, changed, removed) in words.items():
        ops = {name.rsplit("-tenants-", 1)[1]: op for op, name in re.findall(OBJECT, pages[lang])}
        assert ops == {"kra": new, "kemri": removed, "uon-gpu-quota": changed}, ops
    assert "Resource changes: the engine's preview" in pages["en"] and "Tenants" in texts["en"]
    assert "تغييرات الموارد: معاينة المحرك" in pages["ar"] and 'dir="rtl"' in pages["ar"]
    assert "المستأجرون" in pages["ar"]

    key = json.loads(kube_lab.lab.kubeconfig.read_text())["users"][0]["user"]["client-key-data"]
    for text in [*pages.values(), *texts.values(), made.stdout, made.stderr]:
        assert key[:40] not in text

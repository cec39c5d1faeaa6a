"""The report as a reader sees it, in headless Chromium (Debian's chromium, set up by `make test`).

One browser session renders every language: a screenshot per language is not blank, no text
overflows its box, the Arabic page is right-to-left with right-aligned tables, and the PDF printed
from the page has its pages and the key figures in the reader's number format.
"""

from __future__ import annotations

import copy
import io
import re
import subprocess

import pytest
from PIL import Image

from report.browser import Chromium
from report.i18n import LANGUAGES, Formats
from report.publish import write_reports
from stacks.design.preview import EnginePreview, change_from_step

CASES = [("ke-staging", lang) for lang in LANGUAGES] + [("br-staging", "pt"), ("in-staging", "hi")]

OVERFLOW = """(() => {
  const bad = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) bad.push('page is wider than the window: ' + root.scrollWidth);
  for (const el of document.querySelectorAll('h1,h2,h3,p,th,td,dt,dd,.card,.card > div,figure')) {
    if (el.scrollWidth > el.clientWidth + 1) bad.push('overflows: ' + el.tagName + ' ' + el.textContent.slice(0, 60));
    const box = el.getBoundingClientRect(), outer = el.parentElement.getBoundingClientRect();
    if (box.left < outer.left - 1 || box.right > outer.right + 1) bad.push('outside its box: ' + el.textContent.slice(0, 60));
  }
  for (const svg of document.querySelectorAll('figure svg')) {
    const width = svg.viewBox.baseVal.width;
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBBox();
      if (b.x < -1 || b.x + b.width > width + 1) bad.push('picture label outside the picture: ' + t.textContent);
    }
  }
  return bad;
})()"""

ALIGNMENT = """(() => [...document.querySelectorAll('table.funding tr, table.checklist tr')].map(row => {
  const cells = [...row.children];
  const first = cells[0].getBoundingClientRect(), last = cells[cells.length - 1].getBoundingClientRect();
  const range = document.createRange(); range.selectNodeContents(cells[0]);
  const text = range.getBoundingClientRect();
  const pad = parseFloat(getComputedStyle(cells[0]).paddingRight);
  return {firstLeft: first.left, lastLeft: last.left, textRight: text.right, innerRight: first.right - pad};
}))()"""


def _older(document: dict) -> dict:
    """An 'approved' revision with fewer GPUs and another egress rule, so the changes page has rows."""
    older = copy.deepcopy(document)
    older["design"]["totals"]["new_gpus"] -= 1152
    older["design"]["totals"]["capex_usd"] -= 123_456_789
    older["partnership"]["sovereignty"]["egress"]["allowed"] = ["registry.example.org", "a-much-longer-host.example.org"]
    return older


def _engine() -> EnginePreview:
    """An engine preview with long object names and property paths, so its tables are measured too."""
    owner = "urn:pulumi:ke-staging::sovereign::sovereign:site:Site$sovereign:cluster:Cluster$sovereign:platform:"
    steps = [("Tenants$kubernetes:networking.k8s.io/v1:NetworkPolicy::konza-1-tenants-kra-same-namespace-and-dns",
              "create", None),
             ("Tenants$kubernetes:core/v1:ResourceQuota::konza-1-tenants-uon-gpu-quota", "update",
              ['spec.hard["requests.nvidia.com/gpu"]', "metadata.labels"]),
             ("GpuPlatform$kubernetes:helm.sh/v3:Release::gpu-operator", "replace", ["values", "version"]),
             ("Monitoring$kubernetes:monitoring.coreos.com/v1:PrometheusRule::sovereign-gpu-fabric", "delete", None)]
    return EnginePreview("included", [c for urn, op, paths in steps
                                      if (c := change_from_step(owner + urn, op, None, paths)) is not None], "k0")


@pytest.fixture(scope="module")
def rendered(documents, tmp_path_factory):
    """Every case rendered and measured in one Chromium session (test time stays modest)."""
    out = tmp_path_factory.mktemp("reports")
    results = {}
    with Chromium() as browser:
        for stack, lang in CASES:
            [written] = write_reports(documents[stack], [lang], out / stack, pdf=False, since=_older(documents[stack]),
                                      engine=_engine())
            browser.open(written.html)
            results[(stack, lang)] = {
                "png": browser.screenshot(),
                "overflow": browser.evaluate(OVERFLOW),
                "dir": browser.evaluate("document.documentElement.dir"),
                "change_rows": browser.evaluate("document.querySelectorAll('#changes table.changes tr').length"),
                "engine_rows": browser.evaluate("document.querySelectorAll('#engine table.changes tr').length"),
                "alignment": browser.evaluate(ALIGNMENT),
                "pdf_path": written.html.with_suffix(".pdf"),
            }
            results[(stack, lang)]["pdf_path"].write_bytes(browser.pdf())
        # Negative control: the same measurement on a page that does overflow must say so.
        control = out / "control.html"
        control.write_text('<html><body style="width:400px"><div class="card" style="width:120px">'
                           '<div>KES&nbsp;105,218,170,815,000,000,000</div></div></body></html>')
        browser.open(control)
        results["control"] = browser.evaluate(OVERFLOW)
    return results


def test_the_overflow_check_sees_an_overflow(rendered):
    assert any("overflows: DIV KES" in line for line in rendered["control"])


@pytest.mark.parametrize(("stack", "lang"), CASES)
def test_screenshot_is_not_blank(rendered, stack, lang):
    image = Image.open(io.BytesIO(rendered[(stack, lang)]["png"])).convert("L")
    assert image.size == (1100, 1400)
    inked = sum(count for level, count in enumerate(image.histogram()) if level < 200)
    assert inked / (image.width * image.height) > 0.02, "the page is (nearly) blank"
    assert len(image.getcolors(maxcolors=256) or []) > 20  # text, tables and pictures, not one flat colour


@pytest.mark.parametrize(("stack", "lang"), CASES)
def test_no_text_overflows_its_box(rendered, stack, lang):
    assert rendered[(stack, lang)]["change_rows"] > 3  # the changes page is measured too
    # and the engine tables: a row per component (3), then a heading row per component and a row per object (4)
    assert rendered[(stack, lang)]["engine_rows"] == (1 + 3) + (1 + 3 + 4)
    assert rendered[(stack, lang)]["overflow"] == []


def test_arabic_is_right_to_left_with_right_aligned_tables(rendered):
    arabic = rendered[("ke-staging", "ar")]
    assert arabic["dir"] == "rtl"
    rows = arabic["alignment"]
    assert rows
    for row in rows:
        assert row["firstLeft"] > row["lastLeft"], "the first column is on the right"
        assert abs(row["textRight"] - row["innerRight"]) <= 2, "text hugs the cell's right edge"
    english = rendered[("ke-staging", "en")]
    assert english["dir"] == "ltr" and all(r["firstLeft"] < r["lastLeft"] for r in english["alignment"])


def _pdf_text(path) -> str:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return _plain(text)


def _plain(text: str) -> str:
    # PDF text extraction turns (narrow) no-break spaces into spaces and drops bidi marks.
    return re.sub(r"[\u00a0\u202f ]+", " ", text.replace("\u200f", "").replace("\u200e", ""))


@pytest.mark.parametrize(("stack", "lang"), CASES)
def test_pdf_pages_and_key_figures_in_the_locale_format(rendered, documents, stack, lang):
    path = rendered[(stack, lang)]["pdf_path"]
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    sites = len(documents[stack]["design"]["sites"])
    assert pages >= 3 + sites  # summary, a page per site, sovereignty, sources
    text = _pdf_text(path)
    fmt = Formats(lang)
    totals = documents[stack]["design"]["totals"]
    assert _plain(fmt.number(totals["new_gpus"])) in text
    assert _plain(fmt.number(totals["facility_mw"], 1)) in text
    digits = _plain(fmt.number(totals["capex_local"]))
    assert digits in text, f"capital cost {digits!r} not in the PDF"

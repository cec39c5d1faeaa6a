"""The HTML report: self-contained, in the reader's language and number formats, with the diff."""

from __future__ import annotations

import copy
import re
from datetime import date

import pytest

from report.i18n import LANGUAGES, Formats
from report.render import render_html
from stacks.design.approval import digest
from stacks.design.preview import EnginePreview, change_from_step


@pytest.mark.parametrize("lang", LANGUAGES)
def test_self_contained_and_localized(documents, lang):
    document = documents["ke-staging"]
    html = render_html(document, lang, today=date(2026, 12, 1))
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in html
    # Works offline: no script, no stylesheet link, no remote image or font.
    assert not re.search(r"<script|<link|<img|@import|url\(|src=", html)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html.replace(
        "https://registry.ai.go.ke", ""))
    fmt = Formats(lang)
    totals = document["design"]["totals"]
    assert f'id="fig-gpus">{fmt.number(totals["new_gpus"])}<' in html
    assert fmt.number(totals["facility_mw"], 1) + " MW" in html
    assert fmt.money(totals["capex_local"], "KES") in html
    assert fmt.date(date(2026, 12, 1)) in html


def test_locale_formats_differ_where_the_locales_do(documents):
    totals = documents["in-staging"]["design"]["totals"]
    assert Formats("de").number(totals["capex_local"]) != Formats("en").number(totals["capex_local"])
    assert Formats("hi").number(12345678) == "1,23,45,678"  # Indian grouping
    assert Formats("fr").number(4608) == "4\u202f608"
    assert Formats("de").number(4608) == "4.608"


def test_since_lists_the_changes_in_plain_words(documents):
    old = documents["ke-staging"]
    new = copy.deepcopy(old)
    new["design"]["totals"]["new_gpus"] += 1152
    new["partnership"]["sovereignty"]["egress"]["default"] = "allow"
    new["partnership"]["sovereignty"]["egress"]["allowed"] = ["a.example", "b.example"]
    html = render_html(new, "fr", since=old)
    assert "Ce qui a changé depuis la version approuvée" in html
    assert "total national: nouveaux GPU" in html
    assert "sovereignty.egress.default" in html and "<bdi>deny</bdi>" in html and "<bdi>allow</bdi>" in html
    assert "<bdi>a.example, b.example</bdi>" in html  # a list reads as a list, not as Python
    assert 'data-status="not_requested"' in html and "L'aperçu du moteur n'est pas inclus dans ce rapport" in html
    unchanged = render_html(old, "en", since=old)
    assert "Nothing changed: this is the approved plan." in unchanged


def test_no_since_no_changes_page(documents):
    assert 'id="changes"' not in render_html(documents["de-staging"], "de")


_OWNER = "urn:pulumi:ke-staging::sovereign::sovereign:site:Site$sovereign:cluster:Cluster$"


def _engine_preview() -> EnginePreview:
    steps = [("sovereign:platform:Tenants$kubernetes:core/v1:Namespace::tenant-kra", "create", None),
             ("sovereign:platform:Tenants$kubernetes:core/v1:ResourceQuota::tenant-kra-gpus", "create", None),
             ("sovereign:platform:Tenants$kubernetes:core/v1:ResourceQuota::tenant-uon-gpus", "update", ["spec"]),
             ("sovereign:platform:GpuPlatform$kubernetes:helm.sh/v3:Release::gpu-operator", "replace", ["values"]),
             ("sovereign:platform:Tenants$kubernetes:core/v1:Namespace::tenant-kemri", "delete", None)]
    changes = [c for urn, op, diffs in steps if (c := change_from_step(_OWNER + urn, op, diffs)) is not None]
    return EnginePreview("included", changes, target="k1")


@pytest.mark.parametrize("lang, words", [
    ("en", ["Resource changes: the engine's preview", "new: 2, changed: 1, replaced: 1, removed: 1",
            "GPU platform", "Tenants", "replaced", "removed"]),
    ("ar", ["تغييرات الموارد: معاينة المحرك", f"جديدة: {Formats('ar').number(2)}،", "منصة GPU", "المستأجرون", "مستبدل"]),
])
def test_the_engines_preview_in_plain_words_by_component(documents, lang, words):
    engine = _engine_preview()
    html = render_html(documents["ke-staging"], lang, since=documents["ke-staging"], engine=engine)
    section = html.split('<section id="engine"', 1)[1].split("</section>", 1)[0]
    assert 'data-status="included"' in section and engine.digest[:12] in section
    for word in words:
        assert word in section, word
    assert ('ResourceQuota</bdi><br><bdi><code class="object">tenant-uon-gpus</code></bdi></td><td><bdi><code>spec</code>'
            in section)
    assert '<code class="object">gpu-operator</code></bdi></td><td><bdi><code>values</code>' in section
    # the approval digest is the plan's alone: the same page without the preview carries it too
    assert render_html(documents["ke-staging"], lang).count(digest(documents["ke-staging"])) == html.count(
        digest(documents["ke-staging"]))


def test_an_unavailable_engine_is_said_plainly_in_the_readers_language(documents):
    engine = EnginePreview("unavailable", target="k1", reason="lab 'k1' has no Kubernetes; start it with <lab up>")
    html = render_html(documents["ke-staging"], "de", engine=engine)
    assert 'data-status="unavailable"' in html
    assert "Die Vorschau der Engine konnte nicht erstellt werden" in html
    assert "lab &#39;k1&#39; has no Kubernetes; start it with &lt;lab up&gt;" in html  # the engine's words, escaped


def test_a_preview_with_nothing_to_change_says_so(documents):
    html = render_html(documents["ke-staging"], "pt", engine=EnginePreview("included", []))
    assert "O motor não alteraria nada" in html and "no cluster da própria stack" in html

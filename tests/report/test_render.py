"""The HTML report: self-contained, in the reader's language and number formats, with the diff."""

from __future__ import annotations

import copy
import re
from datetime import date

import pytest

from report.i18n import LANGUAGES, Formats
from report.render import render_html


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
    assert "aperçu du moteur n'est pas encore disponible" in html
    unchanged = render_html(old, "en", since=old)
    assert "Nothing changed: this is the approved plan." in unchanged


def test_no_since_no_changes_page(documents):
    assert 'id="changes"' not in render_html(documents["de-staging"], "de")

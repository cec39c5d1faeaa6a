"""Every report string is translated in every language, and no catalog keeps stale strings."""

from __future__ import annotations

import shutil

import pytest
from babel.messages.pofile import read_po, write_po

from report import catalogs
from report.i18n import LANGUAGES, RIGHT_TO_LEFT, catalog_path, translations


@pytest.fixture(scope="module")
def template():
    return catalogs.extract()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_is_complete_and_current(lang, template):
    assert catalogs.problems(lang, template) == []


def test_at_least_the_example_countries_languages_and_french_and_arabic():
    assert {"en", "fr", "de", "pt", "sw", "hi", "ar"} <= set(LANGUAGES)
    assert RIGHT_TO_LEFT == {"ar"}


def test_the_check_catches_untranslated_stale_and_broken_strings(tmp_path, monkeypatch, template):
    copy = tmp_path / "fr.po"
    shutil.copy(catalog_path("fr"), copy)
    with copy.open("rb") as po:
        catalog = read_po(po, locale="fr")
    catalog.delete("Glossary")  # a string the sources use, missing from the catalog
    catalog.add("A string nobody uses any more", "Une chaîne que plus personne n'utilise")
    catalog["Site %(name)s"].string = "Site %(nom)s"  # a translator renamed a placeholder
    catalog["Executive summary"].string = ""
    with copy.open("wb") as po:
        write_po(po, catalog)
    monkeypatch.setattr(catalogs, "catalog_path", lambda lang: copy)
    found = "\n".join(catalogs.problems("fr", template))
    assert "untranslated: 'Glossary'" in found
    assert "untranslated: 'Executive summary'" in found
    assert "stale (no longer in the sources): 'A string nobody uses any more'" in found
    assert "'Site %(name)s': unknown named placeholder 'nom'" in found


def test_translations_are_used():
    assert translations("de").gettext("Executive summary") == "Zusammenfassung"
    assert translations("ar").gettext("Glossary") == "مسرد المصطلحات"

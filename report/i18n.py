"""Languages of the report: gettext catalogs (Babel) and per-locale numbers, money and dates.

Catalogs are the `.po` files under report/locale/, compiled in memory when a report is made
(Babel's mofile writer, a few milliseconds): no compiled `.mo` is committed that could go stale
beside its source, and no build step can be forgotten before a demo or a test.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LANGUAGES = ("en", "fr", "de", "pt", "sw", "hi", "ar")
RIGHT_TO_LEFT = frozenset({"ar"})


class UnsupportedLanguage(ValueError):
    pass


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> Translations:
    if lang not in LANGUAGES:
        raise UnsupportedLanguage(f"no report catalog for {lang!r}; the report speaks {', '.join(LANGUAGES)}")
    with catalog_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@dataclass(frozen=True)
class Formats:
    """Numbers as the reader writes them: '4 608' in French, '4.608' in German, '12,34,567' in Hindi."""

    lang: str

    @property
    def direction(self) -> str:
        return "rtl" if self.lang in RIGHT_TO_LEFT else "ltr"

    def number(self, value: float, digits: int = 0) -> str:
        # Rounded first: the locale's pattern keeps up to three decimals and drops trailing zeros.
        return format_decimal(round(value, digits) if digits else round(value), locale=self.lang)

    def percent(self, share: float) -> str:
        return format_percent(share, locale=self.lang)

    def money(self, value: float, currency: str) -> str:
        # The locale's own currency pattern without cents: capital costs are estimates in millions.
        pattern = Locale.parse(self.lang).currency_formats["standard"].pattern.split(";")[0]
        whole = pattern.replace("0.00", "0")
        return format_currency(round(value), currency, format=whole, locale=self.lang, currency_digits=False)

    def date(self, day: date) -> str:
        return format_date(day, format="long", locale=self.lang)

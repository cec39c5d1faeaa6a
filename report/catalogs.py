"""Keep the report's message catalogs in step with its sources.

`python -m report.catalogs update` extracts every message from the report's code and template
and merges it into each language's .po (new messages arrive empty, removed ones become obsolete);
`check` lists what a translator still has to do. A test runs `check`, so a report cannot ship
with an untranslated or stale string.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from report.i18n import LANGUAGES, LOCALE_DIR, catalog_path
from stacks.design import atomic

SOURCE_DIR = Path(__file__).parent
METHODS = [("**.py", "python"), ("templates/**.j2", "jinja2")]
OPTIONS = {"templates/**.j2": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true",
                               "trim_blocks": "true", "lstrip_blocks": "true"}}
KEYWORDS = {"_": None, "gettext": None}


def extract() -> Catalog:
    template = Catalog(project="sovereign report", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        SOURCE_DIR, METHODS, OPTIONS, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context,
                     flags=("python-format",) if "%(" in str(message) else ())
    return template


def problems(lang: str, template: Catalog | None = None) -> list[str]:
    """Untranslated, fuzzy, stale (in the .po, gone from the sources) and mismatched strings."""
    template = template or extract()
    with catalog_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang)
    wanted = {m.id for m in template if m.id}
    have = {m.id for m in catalog if m.id}
    out = [f"{lang}: untranslated: {mid!r}" for mid in sorted(wanted - have, key=str)]
    out += [f"{lang}: stale (no longer in the sources): {mid!r}" for mid in sorted(have - wanted, key=str)]
    for message in catalog:
        if not message.id:
            continue
        if not message.string:
            out.append(f"{lang}: untranslated: {message.id!r}")
        elif message.fuzzy:
            out.append(f"{lang}: fuzzy (needs review): {message.id!r}")
    for message, errors in catalog.check():
        out += [f"{lang}: {message.id!r}: {error}" for error in errors]
    return out


def update() -> None:
    template = extract()
    LOCALE_DIR.mkdir(parents=True, exist_ok=True)
    pot = io.BytesIO()
    write_po(pot, template, omit_header=False, sort_output=True)
    atomic.write_file(LOCALE_DIR / "messages.pot", pot.getvalue())
    for lang in LANGUAGES:
        path = catalog_path(lang)
        if path.exists():
            with path.open("rb") as po:
                catalog = read_po(po, locale=lang)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()  # stale strings go: git keeps their history
        buffer = io.BytesIO()
        write_po(buffer, catalog, sort_output=True, width=120)
        atomic.write_file(path, buffer.getvalue())  # an interrupted update leaves the translators' work whole


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        update()
        return 0
    found = [p for lang in LANGUAGES for p in problems(lang)]
    print("\n".join(found) or "catalogs complete")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

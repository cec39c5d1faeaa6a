"""Write a plan's report files: one HTML per language and, when asked, the PDF printed from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from report.browser import Chromium
from report.i18n import LANGUAGES
from report.render import render_html
from stacks.design import atomic
from stacks.design.preview import NOT_REQUESTED, EnginePreview


@dataclass(frozen=True, slots=True)
class Written:
    lang: str
    html: Path
    pdf: Path | None


def languages_for(partnership: dict[str, Any]) -> list[str]:
    """The partnership's official languages the report speaks; English when it speaks none of them."""
    return [lang for lang in partnership["languages"] if lang in LANGUAGES] or ["en"]


def read_document(path: Path) -> dict[str, Any]:
    """An approved plan document (approvals/<stack>/<digest>.plan.json), for `--since`."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not {"stack", "partnership", "design"} <= document.keys():
        raise ValueError("not a plan document: expected the keys stack, partnership and design")
    return document


def write_reports(document: dict[str, Any], langs: list[str], folder: Path, *, pdf: bool,
                  since: dict[str, Any] | None = None, today: date | None = None,
                  engine: EnginePreview = NOT_REQUESTED) -> list[Written]:
    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for lang in langs:
        path = folder / f"report.{lang}.html"
        atomic.write_file(path, render_html(document, lang, since, today, engine))
        pages.append((lang, path))
    if not pdf:
        return [Written(lang, path, None) for lang, path in pages]
    written = []
    with Chromium() as browser:  # one browser for every language
        for lang, path in pages:
            browser.open(path)
            target = path.with_suffix(".pdf")
            atomic.write_file(target, browser.pdf())
            written.append(Written(lang, path, target))
    return written

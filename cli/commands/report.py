"""sovereign report: the ministry's plan as a localized, illustrated HTML file and its PDF."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape

from cli.output import EnvironmentMissing, InvalidInput, OperationFailed, console, emit_json, json_option
from report.browser import BrowserError, BrowserMissing
from report.i18n import LANGUAGES
from report.publish import languages_for, read_document, write_reports
from stacks.design.approval import approvals_dir, digest, last_approved, plan_document
from stacks.design.loader import InputError, Problem, load_and_design, stack_name
from stacks.design.preview import NOT_REQUESTED, EnginePreview


@click.command()
@click.argument("ref", metavar="STACK|FILE")
@click.option("--lang", "langs", multiple=True, type=click.Choice(LANGUAGES),
              help="Reader's language (repeatable; default: the partnership's official languages).")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="pdf", show_default=True,
              help="pdf: the HTML and the PDF printed from it (headless Chromium); html: the HTML only.")
@click.option("--since", "since_ref", metavar="PLAN|approved",
              help="An approved plan document (approvals/<stack>/<digest>.plan.json), or 'approved' for "
                   "the stack's last approved plan: adds what changed since.")
@click.option("--preview", "with_preview", is_flag=True,
              help="Include the engine's preview: the objects `up` would create, change, replace or delete "
                   "(runs the real engine; the report says so when it cannot).")
@click.option("--lab", "lab_name", metavar="NAME",
              help="Preview against the local lab NAME's Kubernetes, as `sovereign preview --lab` (implies --preview).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
              show_default=True, help="Reports go to DIR/<stack>/report.<lang>.{html,pdf}.")
@json_option
def report(ref: str, langs: tuple[str, ...], fmt: str, since_ref: str | None, with_preview: bool, lab_name: str | None,
           out_dir: Path, as_json: bool) -> None:
    """Executive summary, per-site pages with pictures, sovereignty checklist, changes, sources.

    With --preview (or --lab NAME) the engine's preview is run and its resource changes listed in
    plain words; when the engine cannot run, the report says so and why, and is still written.
    """
    try:
        partnership, design = load_and_design(ref)
    except InputError as exc:
        raise InvalidInput(exc, as_json) from None
    stack = stack_name(ref)
    document = plan_document(stack, partnership, design)
    since = _since(since_ref, stack, as_json)
    engine = _engine_preview(ref, lab_name) if with_preview or lab_name else NOT_REQUESTED
    chosen = list(langs) or languages_for(document["partnership"])
    try:
        written = write_reports(document, chosen, out_dir / stack, pdf=fmt == "pdf", since=since,
                                engine=engine)
    except BrowserMissing as exc:
        _fail(EnvironmentMissing(str(exc)), as_json)
    except BrowserError as exc:
        _fail(OperationFailed(f"printing the PDF failed: {exc}"), as_json)
    files = [str(p) for w in written for p in (w.html, w.pdf) if p is not None]
    if as_json:
        emit_json({"ok": True, "stack": stack, "digest": digest(document), "languages": chosen,
                   "since": digest(since) if since else None, "preview": engine.to_json(), "files": files})
        return
    if engine.status == "unavailable":
        console().print(f"[yellow]the engine's preview is not in the report:[/yellow] {escape(engine.reason)}")
    for path in files:
        console().print(f"wrote {path}")


def _engine_preview(ref: str, lab_name: str | None) -> EnginePreview:
    """The engine's view, or why there is none: a report is still worth having without it."""
    # Imported here: the engine's client library is slow to import, and most reports do without it.
    from cli.engine_view import stack_argument
    from stacks.automation import EngineError, preview_changes

    Console(stderr=True).print("running the engine's preview…", highlight=False)
    try:
        changes = preview_changes(stack_argument(ref), lab=lab_name)
    except (EngineError, InputError, OSError) as exc:
        return EnginePreview("unavailable", target=lab_name or "", reason=str(exc).strip() or type(exc).__name__)
    return EnginePreview("included", changes, target=lab_name or "")


def _fail(error: click.ClickException, as_json: bool) -> NoReturn:
    if as_json:  # one JSON document on every outcome, with the same exit code
        emit_json({"ok": False, "error": error.message})
        click.get_current_context().exit(error.exit_code)
    raise error


def _since(since_ref: str | None, stack: str, as_json: bool) -> dict | None:
    if since_ref is None:
        return None
    if since_ref == "approved":
        found = last_approved(approvals_dir(stack), stack)
        if found is None:
            problem = Problem(str(approvals_dir(stack)), None, "--since", "no approved plan of this stack here")
            raise InvalidInput(InputError([problem]), as_json)
        return found[0]
    try:
        return read_document(Path(since_ref))
    except (OSError, ValueError) as exc:
        raise InvalidInput(InputError([Problem(since_ref, None, "--since", f"cannot use it: {exc}")]), as_json) from None

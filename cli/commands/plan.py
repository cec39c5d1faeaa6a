"""sovereign plan: the design summary per site and for the country, as text and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from cli.output import console, emit_json, json_option
from cli.plan_view import plan_view
from stacks.design import atomic
from stacks.design.loader import InputError, Problem, load_and_design, stack_name
from stacks.design.summary import plan_summary

PLAN_FILES = ("plan.json", "plan.txt")
# The folder under DIR is named after the stack; it must stay one plain name inside DIR.
_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@click.command()
@click.argument("ref", metavar="STACK|FILE")
@json_option
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
    help="Also write plan.json and plan.txt for this stack into DIR/<stack>/ (replaced as a set).",
)
def plan(ref: str, as_json: bool, out_dir: Path | None) -> None:
    """Size every site: GPUs, nodes, racks, MW, cooling, fabric, IP plan, cost and funding split."""
    partnership, design = load_and_design(ref)
    summary = plan_summary(partnership, design)
    written = write_plan(summary, out_dir, stack_name(ref)) if out_dir is not None else None
    if as_json:
        # plan.json holds the summary alone; stdout adds where it was written.
        emit_json(summary if written is None else {**summary, "written": written})
        return
    console().print(plan_view(summary))
    if written is not None:
        replaced = ", ".join(written["replaced"])
        note = f"replaced {replaced} in" if replaced else "wrote plan.json, plan.txt to"
        click.echo(f"{note} {written['folder']}", err=True)


def write_plan(summary: dict, out_dir: Path, stack: str) -> dict:
    """plan.json and plan.txt into out_dir/<stack>/, swapped in as one set; says what it replaced."""
    if not _FOLDER.fullmatch(stack):
        raise InputError([Problem(stack, None, "--out", f"{stack!r} cannot name a folder under {out_dir}")])
    text = console()
    text.width = 160
    with text.capture() as captured:
        text.print(plan_view(summary))
    folder = out_dir / stack
    files = {"plan.json": json.dumps(summary, indent=2) + "\n", "plan.txt": captured.get()}
    try:
        replaced = atomic.replace_directory(folder, files)
    except atomic.OutputRefused as exc:
        raise InputError([Problem(str(folder), None, "--out", str(exc))]) from None
    return {"folder": str(folder), "files": list(PLAN_FILES), "replaced": replaced}

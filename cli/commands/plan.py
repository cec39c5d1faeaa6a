"""sovereign plan: the design summary per site and for the country, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.output import InvalidInput, console, emit_json, json_option
from cli.plan_view import plan_view
from stacks.design.loader import InputError, load_and_design, stack_name
from stacks.design.summary import plan_summary


@click.command()
@click.argument("ref", metavar="STACK|FILE")
@json_option
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
    help="Also write plan.json and plan.txt for this stack into DIR/<stack>/.",
)
def plan(ref: str, as_json: bool, out_dir: Path | None) -> None:
    """Size every site: GPUs, nodes, racks, MW, cooling, fabric, IP plan, cost and funding split."""
    try:
        partnership, design = load_and_design(ref)
    except InputError as exc:
        raise InvalidInput(exc, as_json) from None
    summary = plan_summary(partnership, design)
    if out_dir is not None:
        write_plan(summary, out_dir / stack_name(ref))
    if as_json:
        emit_json(summary)
    else:
        console().print(plan_view(summary))


def write_plan(summary: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    text = console()
    text.width = 160
    with text.capture() as captured:
        text.print(plan_view(summary))
    (folder / "plan.txt").write_text(captured.get(), encoding="utf-8")

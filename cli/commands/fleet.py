"""sovereign fleet: one table across every country's stack in a folder."""

from __future__ import annotations

from pathlib import Path

import click

from cli.output import EXIT_INVALID, InvalidInput, console, emit_json, json_option
from cli.plan_view import fleet_table
from stacks.design.loader import InputError, Problem, countries_dir, load_and_design, stack_name


@click.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@json_option
def fleet(folder: Path | None, as_json: bool) -> None:
    """Every stack config (Pulumi.*.yaml) in FOLDER (default: the project's, e.g. countries/), summed up.

    Exit 2 if any stack is invalid; the valid ones are still listed, beside the problems (one JSON
    document with both under --json).
    """
    folder = folder or countries_dir()
    files = sorted(folder.glob("Pulumi.*.yaml"))
    rows, problems = [], []
    for path in files:
        try:
            partnership, design = load_and_design(path)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        government = sum(f.share for f in partnership.funding if f.kind.value == "government")
        rows.append(
            {
                "stack": stack_name(path),
                "country": partnership.country,
                "mode": partnership.mode.value,
                "sites": len(design.sites),
                "new_gpus": design.gpus,
                "facility_mw": round(design.facility_mw, 3),
                "capex_usd": design.capex_usd,
                "government_share": round(government, 6),
            }
        )
    if not files:
        problems.append(Problem(str(folder), None, "", "no stack configs (Pulumi.*.yaml) here"))
    if as_json:
        # One document holds both: the valid stacks are still worth reading when one is broken.
        document: dict[str, object] = {"ok": not problems, "stacks": rows}
        if problems:
            document |= {"exit_code": EXIT_INVALID, "problems": [p.to_dict() for p in problems]}
        emit_json(document)  # the error raised below adds no second document
    else:
        console().print(fleet_table(rows))
    if problems:
        raise InvalidInput(InputError(problems), as_json)

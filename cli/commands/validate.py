"""sovereign validate: every problem in one or more partnerships, each with file, line and field."""

from __future__ import annotations

import click

from cli.output import InvalidInput, console, emit_json, escape, json_option
from stacks.design.loader import InputError, Problem, load_and_design


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="STACK|FILE...")
@json_option
def validate(refs: tuple[str, ...], as_json: bool) -> None:
    """Check partnerships: schema, codes, CIDRs, funding shares and every site budget.

    Exit 0 when all are valid, 2 when any problem is found (all are listed).
    """
    problems: list[Problem] = []
    valid: list[dict] = []
    for ref in refs:
        try:
            partnership, design = load_and_design(ref)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        valid.append(
            {"ref": ref, "country": partnership.country, "sites": len(design.sites), "new_gpus": design.gpus}
        )
    if problems:
        raise InvalidInput(InputError(problems), as_json)
    if as_json:
        emit_json({"ok": True, "valid": valid})
        return
    out = console()
    for item in valid:
        out.print(
            f"[green]valid[/] {escape(item['ref'])}: {item['country']}, {item['sites']} site(s), "
            f"{item['new_gpus']:,} new GPUs"
        )

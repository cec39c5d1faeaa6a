"""sovereign artifacts: what a country must mirror before an air-gapped install."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from cli.engine_view import allow_unapproved_option, engine_failures, stack_argument, stack_options
from cli.output import console, emit_json


@click.command()
@stack_options
@allow_unapproved_option
def artifacts(stack: str, lab_name: str | None, as_json: bool, allow_unapproved: bool) -> None:
    """List the charts, container images, OS packages and drivers STACK needs, read from the real
    engine's preview (charts rendered with the stack's values), to seed the country's mirrors."""
    from stacks.artifacts import collect

    name = stack_argument(stack)
    with engine_failures():
        found = collect(name, lab=lab_name, allow_unapproved=allow_unapproved)
    if as_json:
        emit_json({"ok": True, **found})
        return
    out = console()
    charts = Table(title=f"charts of {name}", title_justify="left")
    for column in ("chart", "version", "repository", "sha256"):
        charts.add_column(column)
    for chart in found["charts"]:
        detail = chart.get("digest") or chart.get("problem", "")
        charts.add_row(*(escape(v) for v in (chart["name"], chart["version"], chart["repository"], detail)))
    out.print(charts)
    images = Table(title=f"{len(found['images'])} container images", title_justify="left")
    images.add_column("image")
    for image in found["images"]:
        images.add_row(escape(image))
    out.print(images)
    packages = Table(title=f"{len(found['packages'])} OS packages (node roles)", title_justify="left")
    for column in ("role", "package"):
        packages.add_column(column)
    for package in found["packages"]:
        packages.add_row(escape(package["role"]), escape(package["package"]))
    out.print(packages)
    for driver in found["drivers"]:
        out.print(f"GPU driver at {driver['site']}: {driver['mode']} mode, {driver['version']}", markup=False)

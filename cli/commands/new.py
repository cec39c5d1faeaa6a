"""`sovereign new <country> --template expand|greenfield`: write a starter stack config."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from cli.output import emit_json, escape, json_option
from stacks.design import atomic
from stacks.design.loader import InputError, Problem, countries_dir
from stacks.design.partnership import Mode
from stacks.design.starter import (
    DEFAULT_ENV,
    Starter,
    StarterError,
    build_starter,
    render_stack_config,
)

# How each StarterError.param appears on the command line.
_PARAM_HINTS = {"country": "'COUNTRY'", "template": "'--template'", "env": "'--env'", "site": "'--site'"}


@click.command("new")
@click.argument("country")
@click.option(
    "--template",
    "template",
    required=True,
    type=click.Choice([m.value for m in Mode]),
    help="greenfield: an empty site; expand: an existing data centre and cluster.",
)
@click.option(
    "--env", default=DEFAULT_ENV, show_default=True, help="Environment; the stack is <country>-<env>."
)
@click.option("--site", "sites", multiple=True, metavar="NAME", help="Site name; repeat for several sites.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write to (default: the project's stack config directory, e.g. countries/).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing stack config.")
@json_option
def new(
    country: str,
    template: str,
    env: str,
    sites: tuple[str, ...],
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write a starter partnership for COUNTRY (ISO 3166-1 alpha-2, e.g. KE) as a stack config.

    The file validates as written; every value marked FILL IN is a placeholder to replace.
    """
    try:
        starter = build_starter(country, template, env, sites)
    except StarterError as exc:
        raise click.BadParameter(exc.message, param_hint=_PARAM_HINTS[exc.param]) from None
    directory = out or countries_dir()
    text = render_stack_config(starter)
    path = directory / f"Pulumi.{starter.stack}.yaml"
    try:
        # Whole or not at all: a full disk leaves the old file (or none), never a stub.
        replaced = atomic.write_file(path, text, replace=force)
    except FileExistsError:
        raise InputError([Problem(str(path), None, "--force", "already exists; pass --force to overwrite it")]) from None

    if as_json:
        emit_json({"path": str(path), "stack": starter.stack, "replaced": replaced})
    else:
        _print_next_steps(starter, path, text.count("FILL IN"), in_countries_dir=out is None, replaced=replaced)


def _print_next_steps(starter: Starter, path: Path, fill_ins: int, *, in_countries_dir: bool, replaced: bool) -> None:
    # `validate`/`plan` find a stack by name only in the countries directory; elsewhere, by path.
    ref = starter.stack if in_countries_dir else str(path)
    console = Console(soft_wrap=True)  # paths and commands stay whole, for copy and paste
    console.print(
        f"[green]{'Replaced' if replaced else 'Wrote'}[/] {escape(str(path))} (stack [bold]{starter.stack}[/]): "
        f"{escape(starter.country_name)}, {starter.mode} template."
    )
    console.print(f"It validates as written; {fill_ins} lines are marked FILL IN. Next:")
    steps = [
        "replace every FILL IN value with the agreed figure",
        f"sovereign validate {ref}",
        f"sovereign plan {ref}",
    ]
    steps += [
        f"store the kubeconfig of site {site}'s existing cluster: "
        f"pulumi config set --secret -s {starter.stack} {secret} < kubeconfig.yaml"
        for site, secret in _kubeconfig_secrets(starter)
    ]
    for number, step in enumerate(steps, 1):
        console.print(f"  {number}. {escape(step)}", highlight=False)


def _kubeconfig_secrets(starter: Starter) -> list[tuple[str, str]]:
    return [
        (site.name, site.existing.cluster.kubeconfig_secret)
        for site in starter.partnership.sites
        if site.existing is not None and site.existing.cluster is not None
    ]

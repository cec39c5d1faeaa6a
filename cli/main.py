"""Root command group: it only registers the commands, one module each under cli/commands/."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

from cli.output import EnvironmentMissing, InvalidInput
from stacks.design.loader import InputError, Problem
from stacks.design.project import PROJECT_ENV, ProjectInvalid, ProjectNotFound

# (module under cli.commands, attribute) — each module owns one verb or group.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("init", "init"),
    ("new", "new"),
    ("validate", "validate"),
    ("plan", "plan"),
    ("approve", "approve"),
    ("report", "report"),
    ("fleet", "fleet"),
    ("configure", "configure"),
    ("verify", "verify"),
    ("lab", "lab"),
    ("tools", "tools"),
    ("up", "up"),
    ("preview", "preview"),
    ("refresh", "refresh"),
    ("destroy", "destroy"),
)


class RootGroup(click.Group):
    """Wherever a command meets a missing or broken project, the documented exit code follows."""

    def invoke(self, ctx: click.Context) -> object:
        as_json = "--json" in ctx.args
        try:
            return super().invoke(ctx)
        except ProjectNotFound as exc:
            raise EnvironmentMissing(str(exc), as_json) from None
        except ProjectInvalid as exc:
            raise InvalidInput(InputError([Problem(str(exc.file), None, exc.field, exc.message)]), as_json) from None


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The project (a directory with Pulumi.yaml) to work in. Default: the nearest one from here up.",
)
@click.version_option(package_name="sovereign")
def cli(project_dir: Path | None) -> None:
    """Sovereign: plan, build and verify national AI compute sites.

    \b
    Exit codes: 0 ok, 1 operation failed (a host failed, a check failed),
    2 invalid input (the message names the file and field), 3 environment missing
    (e.g. no project here: `sovereign init` makes one).
    """
    if project_dir is not None:
        # An environment variable, so library code and subprocesses (ansible, pytest) see it too.
        os.environ[PROJECT_ENV] = str(project_dir.resolve())


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"cli.commands.{_module}"), _attr))

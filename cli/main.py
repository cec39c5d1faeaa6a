"""Root command group: registers the commands (one module each under cli/commands/) and runs
every one of them through cli.output.run, where exit codes, JSON errors and interrupts are handled."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cli import output
from stacks.design.project import PROJECT_ENV

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
    ("artifacts", "artifacts"),
)


class Sovereign(click.Group):
    """The root group: every command runs through cli.output.run, which turns whatever it raises
    (usage errors, input problems, Ctrl-C, crashes) into the documented exit code and, with
    --json, one JSON document."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        output.run(super().main, args, prog_name=prog_name, **extra)


@click.group(cls=Sovereign, context_settings={"help_option_names": ["-h", "--help"]})
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
    2 invalid input (the message names the file and field), 3 environment
    missing (e.g. no project here: `sovereign init` makes one), 130 interrupted.
    With --json, stdout is one JSON document in every outcome; errors read
    {"ok": false, "exit_code": N, "problems": [...]}.
    """
    if project_dir is not None:
        # An environment variable, so library code and subprocesses (ansible, pytest) see it too.
        os.environ[PROJECT_ENV] = str(project_dir.resolve())


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"cli.commands.{_module}"), _attr))

"""Root command group: registers the commands (one module each under cli/commands/) and runs
every one of them through cli.output.run, where exit codes, JSON errors and interrupts are handled."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import click

from cli import output

# (module under cli.commands, attribute) — each module owns one verb or group.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("new", "new"),
    ("validate", "validate"),
    ("plan", "plan"),
    ("fleet", "fleet"),
    ("configure", "configure"),
    ("verify", "verify"),
    ("lab", "lab"),
)


class Sovereign(click.Group):
    """The root group: every command runs through cli.output.run, which turns whatever it raises
    (usage errors, input problems, Ctrl-C, crashes) into the documented exit code and, with
    --json, one JSON document."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        output.run(super().main, args, prog_name=prog_name, **extra)


@click.group(cls=Sovereign, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sovereign")
def cli() -> None:
    """Sovereign: plan, build and verify national AI compute sites.

    \b
    Exit codes: 0 ok, 1 operation failed (a host failed, a check failed),
    2 invalid input (the message names the file and field), 3 environment
    missing, 130 interrupted. With --json, stdout is one JSON document in
    every outcome; errors read {"ok": false, "exit_code": N, "problems": [...]}.
    """


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"cli.commands.{_module}"), _attr))

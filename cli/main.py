"""Root command group: it only registers the commands, one module each under cli/commands/."""

from __future__ import annotations

import importlib

import click

# (module under cli.commands, attribute) — each module owns one verb or group.
COMMANDS: tuple[tuple[str, str], ...] = (
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sovereign")
def cli() -> None:
    """Sovereign: plan, build and verify national AI compute sites.

    \b
    Exit codes: 0 ok, 1 operation failed (a host failed, a check failed),
    2 invalid input (the message names the file and field), 3 environment missing.
    """


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"cli.commands.{_module}"), _attr))

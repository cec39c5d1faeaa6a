"""What every command shares: JSON or rich output, and errors that exit with the documented codes."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
from rich.console import Console

from stacks.design.loader import InputError

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_ENVIRONMENT = 0, 1, 2, 3

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


def console() -> Console:
    # Piped output (CI logs, files) has no terminal width; wide tables beat folded cells there.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))


class InvalidInput(click.ClickException):
    """Exit 2: the input is wrong; the message names every file, line and field."""

    exit_code = EXIT_INVALID

    def __init__(self, error: InputError, as_json: bool = False):
        self.error, self.as_json = error, as_json
        super().__init__(str(error))

    def show(self, file=None) -> None:
        if self.as_json:
            emit_json({"ok": False, "problems": [p.to_dict() for p in self.error.problems]})
            return
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        count = len(self.error.problems)
        err.print(f"[bold red]error:[/] {count} problem{'s' if count != 1 else ''} in the input")
        for problem in self.error.problems:
            err.print(f"  {problem}", markup=False)


class OperationFailed(click.ClickException):
    exit_code = EXIT_FAILED


class EnvironmentMissing(click.ClickException):
    exit_code = EXIT_ENVIRONMENT

    def __init__(self, message: str, as_json: bool = False):
        self.as_json = as_json
        super().__init__(message)

    def show(self, file=None) -> None:
        if self.as_json:
            emit_json({"ok": False, "error": self.message})
            return
        super().show(file)


def fail_invalid(error: InputError, as_json: bool) -> NoReturn:
    raise InvalidInput(error, as_json)


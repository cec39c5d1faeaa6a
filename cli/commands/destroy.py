"""sovereign destroy: remove everything the stack created."""

from __future__ import annotations

import click

from cli.engine_view import execute, stack_options


@click.command()
@stack_options
@click.option("--yes", is_flag=True, required=True, help="Required: destroying is not undoable.")
def destroy(stack: str, lab_name: str | None, as_json: bool, yes: bool) -> None:
    """Delete every resource of the stack (the stack's history stays in the backend)."""
    execute("destroy", stack, lab_name, as_json)

"""sovereign refresh: read what exists into the stack's state (drift shows as changes)."""

from __future__ import annotations

import click

from cli.engine_view import execute, stack_options


@click.command()
@stack_options
@click.option("--expect-no-changes", is_flag=True, help="Exit 1 if the real world drifted from the state.")
def refresh(stack: str, lab_name: str | None, as_json: bool, expect_no_changes: bool) -> None:
    """Compare the stack's state with the real resources and record what is there."""
    execute("refresh", stack, lab_name, as_json, expect_no_changes=expect_no_changes)

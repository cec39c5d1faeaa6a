"""sovereign preview: what `up` would change, computed by the real engine; changes nothing."""

from __future__ import annotations

import click

from cli.engine_view import allow_unapproved_option, execute, stack_options


@click.command()
@stack_options
@allow_unapproved_option
@click.option("--expect-no-changes", is_flag=True, help="Exit 1 if anything would change (drift check).")
def preview(stack: str, lab_name: str | None, as_json: bool, allow_unapproved: bool, expect_no_changes: bool) -> None:
    """Show the changes `up` would make. Exit 1 with --expect-no-changes when there are any."""
    execute("preview", stack, lab_name, as_json, expect_no_changes=expect_no_changes, allow_unapproved=allow_unapproved)

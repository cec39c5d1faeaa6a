"""sovereign up: apply a stack with the real Pulumi engine (the project's program, Automation API)."""

from __future__ import annotations

import click

from cli.engine_view import allow_unapproved_option, execute, stack_options


@click.command()
@stack_options
@allow_unapproved_option
def up(stack: str, lab_name: str | None, as_json: bool, allow_unapproved: bool) -> None:
    """Create or update everything the stack describes; live progress, then a summary.

    The plan must carry a valid signature from every party the partnership requires
    (`sovereign approve`); the program enforces it, so `pulumi up` by hand obeys it too.

    Exit 0 applied, 1 the engine failed (its message is shown) or another run holds the stack,
    2 bad input, 3 tools or the lab missing.
    """
    execute("up", stack, lab_name, as_json, allow_unapproved=allow_unapproved)

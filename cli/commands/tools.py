"""sovereign tools install|status|env: the pinned Pulumi engine and Kubernetes binaries."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from cli.output import EnvironmentMissing, OperationFailed, console, emit_json, json_option
from stacks.automation import EngineError, backend_dir, engine_environment
from stacks.program import ALLOW_UNAPPROVED_ENV
from toolchain import env as tool_env
from toolchain import pins
from toolchain.build import ToolchainError, install


@click.group("tools")
def tools() -> None:
    """The tools PyPI cannot provide, built from pinned Go modules into ~/.cache/sovereign/tools."""


@tools.command("install")
@json_option
def install_cmd(as_json: bool) -> None:
    """Build whatever is missing (about 17 min cold on 2 cores; seconds when cached)."""
    err = Console(stderr=True, highlight=False)
    try:
        timings = install(progress=lambda msg: err.print(msg, markup=False))
        tool_env.ensure_plugins()
    except ToolchainError as exc:
        raise (EnvironmentMissing if "not installed" in str(exc) else OperationFailed)(str(exc)) from None
    if as_json:
        emit_json({"ok": True, "dir": str(pins.tools_dir()), "built": {k: round(v, 1) for k, v in timings.items()}})
    else:
        console().print(f"tools ready in {pins.tools_dir()}" + (f" (built: {', '.join(timings)})" if timings else ""),
                        highlight=False)


@tools.command("status")
@json_option
def status_cmd(as_json: bool) -> None:
    """Which tools are built, and where. Exit 3 when any is missing."""
    found = tool_env.status()
    if as_json:
        emit_json({"ok": all(t.present for t in found), "dir": str(pins.tools_dir()),
                   "tools": [{"name": t.name, "path": str(t.path), "present": t.present} for t in found]})
    else:
        table = Table(title=f"tools ({pins.PINS_ID})", title_justify="left")
        for column in ("tool", "built", "path"):
            table.add_column(column)
        for t in found:
            table.add_row(t.name, "yes" if t.present else "[red]no[/red]", str(t.path))
        console().print(table)
    if not all(t.present for t in found):
        raise EnvironmentMissing("some tools are not built: run `sovereign tools install`")


@tools.command("env")
@click.option("--stack", default="lab-staging", show_default=True,
              help="The stack you will run (decides whether the lab passphrase applies).")
@click.option("--lab", "lab_name", metavar="NAME", help="Point the program at the lab NAME's Kubernetes.")
@click.option("--allow-unapproved", is_flag=True, help="As `sovereign up --allow-unapproved` (lab and staging stacks).")
def env_cmd(stack: str, lab_name: str | None, allow_unapproved: bool) -> None:
    """Shell exports for running `pulumi` by hand exactly as `sovereign up` does:

        eval "$(sovereign tools env --lab default)"; pulumi up -s ke-staging
    """
    try:
        tool_env.require_tools()
        variables = engine_environment(stack, lab_name)
    except (ToolchainError, EngineError) as exc:
        raise EnvironmentMissing(str(exc)) from None
    variables["PULUMI_BACKEND_URL"] = backend_dir().resolve().as_uri()
    if allow_unapproved:
        variables[ALLOW_UNAPPROVED_ENV] = "1"
    click.echo(tool_env.shell_exports(variables))

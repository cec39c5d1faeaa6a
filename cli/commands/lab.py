"""`sovereign lab ...`: the local lab. Today its SSH nodes (`lab nodes up|down|status`); the
lab-wide `lab up|down|status` (Kubernetes, BMC emulator, nodes together) will join this group.

Exit codes: 0 ok, 1 the operation failed, 2 invalid input, 3 environment missing (not root,
LXC not installable, no mirror): each LabError carries its code, and cli.output renders it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click
from rich.console import Console
from rich.table import Table

from cli.output import emit_json, json_option
from lab.network import MAX_NODES
from lab.nodes import LabStatus, NodeLab

_out = Console()
_err = Console(stderr=True)

name_option = click.option(
    "--name",
    envvar="SOVEREIGN_LAB",
    default=None,
    metavar="NAME",
    help="Lab to act on (default: $SOVEREIGN_LAB, else 'default'); labs run side by side.",
)
def _progress() -> Callable[[str], None]:
    """Progress lines on stderr (stdout stays clean for --json), driven by the library's events."""
    started = time.monotonic()
    return lambda msg: _err.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {msg}", highlight=False)


def _render_status(status: LabStatus) -> None:
    spec = status.spec
    if spec is None:
        _out.print(
            f"lab [bold]{status.name}[/bold]: no nodes (run `sovereign lab nodes up --name {status.name}`)"
        )
        return
    table = Table(title=f"lab {status.name}: {spec.bridge} {spec.subnet}", title_justify="left")
    for column in ("node", "ip", "state", "ssh"):
        table.add_column(column)
    for node in status.nodes:
        colour = "green" if node.state == "RUNNING" else "yellow"
        table.add_row(node.name, node.ip, f"[{colour}]{node.state}[/{colour}]", "yes" if node.ssh else "no")
    _out.print(table)
    first = spec.nodes[0].name if spec.nodes else ""
    _out.print(f"inventory  {spec.inventory}\nssh        ssh -F {spec.ssh_config} {first}", highlight=False)


@click.group("lab")
def lab() -> None:
    """The local lab: a digital twin of a site on this machine."""


@lab.group("nodes")
def nodes() -> None:
    """Debian 12 systemd nodes (LXC system containers) reached over real SSH."""


@nodes.command("up")
@click.option(
    "--count",
    type=click.IntRange(1, MAX_NODES),
    default=None,
    help="Nodes wanted (default: the lab's current count, or 3). Never removes nodes.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for SSH on every node.",
)
@name_option
@json_option
def up(count: int | None, timeout: float, name: str | None, as_json: bool) -> None:
    """Create or complete the lab; returns once every node answers SSH."""
    status = NodeLab(name, progress=_progress()).up(count, timeout=timeout)
    emit_json(status.to_json()) if as_json else _render_status(status)


@nodes.command("down")
@name_option
@json_option
def down(name: str | None, as_json: bool) -> None:
    """Remove the lab and everything it put on the host (safe to repeat)."""
    lab_ = NodeLab(name, progress=_progress())
    removed = lab_.down()
    if as_json:
        emit_json({"name": lab_.name, "removed": removed})
    elif removed:
        _out.print(f"lab [bold]{lab_.name}[/bold] removed: " + ", ".join(removed))
    else:
        _out.print(f"lab [bold]{lab_.name}[/bold]: nothing to remove")


@nodes.command("status")
@name_option
@json_option
def status(name: str | None, as_json: bool) -> None:
    """Show the lab's nodes, their state and whether SSH answers."""
    result = NodeLab(name).status()
    emit_json(result.to_json()) if as_json else _render_status(result)

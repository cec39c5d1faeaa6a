"""`sovereign lab ...`: the local lab: `lab up|down|status` (Kubernetes with the design's simulated
nodes, plus SSH nodes) and `lab nodes up|down|status` (the SSH nodes alone).

Exit codes: 0 ok, 1 the operation failed, 2 invalid input, 3 environment missing (not root,
LXC not installable, no mirror): each LabError carries its code, and cli.output renders it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli.output import OperationFailed, emit_json, json_option
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



# --- the whole lab: Kubernetes with the design's simulated nodes, plus SSH nodes ---


def _render_site_lab(data: dict[str, Any]) -> None:
    kube = data.get("kubernetes")
    if kube is None:
        _out.print(f"lab [bold]{data['name']}[/bold]: no Kubernetes (run `sovereign lab up --name {data['name']}`)")
    else:
        table = Table(title=f"lab {data['name']}: Kubernetes {kube['server']}", title_justify="left")
        for column in ("component", "running", "healthy"):
            table.add_column(column)
        for name, c in kube["components"].items():
            ok = "[green]yes[/green]" if c["healthy"] else "[red]no[/red]"
            table.add_row(name, "yes" if c["running"] else "no", ok)
        _out.print(table)
        sims, site = kube.get("simulated_nodes"), kube.get("site")
        if sims and site:
            _out.print(f"simulated nodes of {site['stack']} / {site['site']}: {sims['total']} "
                       f"({sims['gpu']} GPU), {sims['ready']} Ready", highlight=False)
        _out.print(f"kubeconfig {kube['kubeconfig']}", highlight=False)
    mirror = data.get("chart_mirror")
    if mirror:
        charts = ", ".join(f"{n} {v}" for n, v in sorted(mirror["charts"].items()))
        _out.print(f"chart mirror {mirror['url']} ({'healthy' if mirror['healthy'] else 'NOT answering'}): {charts}",
                   highlight=False, markup=False)
    bmcs = data.get("bmcs")
    if bmcs:
        _out.print(f"BMCs: {bmcs['servers']} servers on {bmcs['endpoint']['url']} "
                   f"({'running' if bmcs['running'] else '[red]not running[/red]'}), CA {bmcs['endpoint']['ca']}",
                   highlight=False)
    nodes = data.get("nodes")
    if nodes and nodes.get("nodes"):
        _out.print(f"SSH nodes: {len(nodes['nodes'])} "
                   f"({sum(n['state'] == 'RUNNING' for n in nodes['nodes'])} running); "
                   "`sovereign lab nodes status` for details")


@lab.command("up")
@click.option("--stack", default="ke-staging", show_default=True, help="Stack whose design the lab simulates.")
@click.option("--site", default=None, help="Site of the stack (default: the first).")
@click.option("--gpu-nodes", type=click.IntRange(0, 100_000), default=64, show_default=True,
              help="Simulated GPU nodes: the design's first N, by their design names.")
@click.option("--nodes", "ssh_nodes", type=click.IntRange(0, MAX_NODES), default=3, show_default=True,
              help="Debian SSH nodes (LXC, needs root); 0 for Kubernetes only.")
@click.option("--bmcs", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="Emulated BMCs (sushy-tools Redfish) for the design's first N GPU servers, with an artifact server.")
@click.option("--charts", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of unpacked Helm charts the lab's chart mirror serves "
                   "[default: $SOVEREIGN_CHARTS, else shared/charts beside the checkout].")
@name_option
@json_option
def site_up(stack: str, site: str | None, gpu_nodes: int, ssh_nodes: int, bmcs: int, charts: Path | None,
            name: str | None, as_json: bool) -> None:
    """Start the lab: control plane on 127.0.0.1, simulated GPU nodes, chart mirror, SSH nodes, BMCs (idempotent)."""
    from lab.site_lab import SiteLab

    data = SiteLab(name, progress=_progress()).up(stack=stack, site=site, gpu_nodes=gpu_nodes, ssh_nodes=ssh_nodes,
                                                  bmcs=bmcs, charts=charts)
    emit_json(data) if as_json else _render_site_lab(data)


@lab.command("down")
@name_option
@json_option
def site_down(name: str | None, as_json: bool) -> None:
    """Stop and remove everything of the lab: processes, files, nodes, bridge (safe to repeat)."""
    from lab.site_lab import SiteLab

    site_lab = SiteLab(name, progress=_progress())
    removed = site_lab.down()
    if as_json:
        emit_json({"name": site_lab.name, "removed": removed})
    else:
        _out.print(f"lab [bold]{site_lab.name}[/bold]: " + (", ".join(removed) if removed else "nothing to remove"))


@lab.command("status")
@name_option
@json_option
def site_status(name: str | None, as_json: bool) -> None:
    """Health of each control-plane component, simulated nodes, SSH nodes. Exit 1 if unhealthy."""
    from lab.site_lab import SiteLab

    data = SiteLab(name).status()
    emit_json(data) if as_json else _render_site_lab(data)
    kube = data.get("kubernetes")
    if kube is not None and not kube["healthy"]:
        raise OperationFailed("the lab's Kubernetes is not healthy (see `sovereign lab status`)")

"""What `up`, `preview`, `destroy` and `refresh` share: options, live progress from engine events,
the summary, and errors in the CLI's one output shape."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.output import EnvironmentMissing, OperationFailed, console, emit_json
from stacks.automation import EngineError, RunResult, StackBusy
from stacks.automation import run as run_engine
from stacks.design.loader import resolve, stack_name

_SYMBOL = {"create": "+", "update": "~", "delete": "-", "replace": "+-", "same": " ", "read": ">", "refresh": "~"}


def stack_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")(fn)
    fn = click.option("--lab", "lab_name", metavar="NAME",
                      help="Apply to the local lab NAME's Kubernetes (`sovereign lab up`).")(fn)
    return click.argument("stack", metavar="STACK")(fn)


def progress_printer(err: Console) -> Callable[[dict[str, Any]], None]:
    started = time.monotonic()

    def show(event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "resource_pre_event" and event["op"] != "same":
            name = event["urn"].rsplit("::", 1)[-1]
            err.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {_SYMBOL.get(event['op'], '?')} "
                      f"{event['op']:<8} {event['type']} {name}", markup=True, highlight=False)
        elif kind == "res_op_failed_event":
            err.print(f"[red]failed[/red] {event['urn']}", highlight=False)
        elif kind == "diagnostic" and event.get("severity") in ("error", "warning"):
            message = program_message(str(event.get("message", "")))
            if message:
                err.print(f"[yellow]{event['severity']}:[/yellow] {message}", markup=True, highlight=False)

    return show


def program_message(message: str) -> str:
    """A diagnostic as people should read it: when a resource fails, the engine stops the program,
    whose Python traceback ("resource monitor shut down") says nothing the resource's own error
    did not; any other traceback keeps only its last line."""
    message = message.strip()
    if "Traceback (most recent call last)" not in message:
        return message
    last = message.splitlines()[-1].strip()
    return "" if "resource monitor shut down" in last else last


allow_unapproved_option = click.option(
    "--allow-unapproved", is_flag=True,
    help="Lab and staging stacks only: apply a plan without the required signatures (recorded in the outputs).")


def stack_argument(stack: str) -> str:
    """The stack a STACK argument names (a name or its file); InputError if the project lacks it."""
    name = stack_name(resolve(stack)) if "/" in stack or stack.endswith((".yaml", ".yml")) else stack
    resolve(name)  # the stack's config must exist in the project: InputError naming it otherwise
    return name


@contextlib.contextmanager
def engine_failures() -> Iterator[None]:
    """An engine run's failures as the CLI's exit codes: 3 for missing tools or lab, else 1."""
    try:
        yield
    except StackBusy as exc:
        raise OperationFailed(str(exc)) from None
    except EngineError as exc:
        missing = "sovereign tools install" in str(exc) or "sovereign lab up" in str(exc)
        raise (EnvironmentMissing if missing else OperationFailed)(str(exc)) from None


def execute(operation: str, stack: str, lab_name: str | None, as_json: bool, *, expect_no_changes: bool = False,
            allow_unapproved: bool = False) -> None:
    name = stack_argument(stack)
    err = Console(stderr=True, highlight=False)
    with engine_failures():
        result = run_engine(operation, name, lab=lab_name, expect_no_changes=expect_no_changes,
                            allow_unapproved=allow_unapproved, on_event=progress_printer(err))
    if as_json:
        emit_json(result.to_json())
    else:
        render(result, console())


def render(result: RunResult, out: Console) -> None:
    for note in result.recovered:
        out.print(f"[yellow]recovered:[/yellow] {note}")
    table = Table(title=f"{result.operation} {result.stack}: {result.seconds:.1f} s", title_justify="left")
    table.add_column("change")
    table.add_column("resources", justify="right")
    for op, count in sorted(result.changes.items()):
        table.add_row(op, str(count))
    out.print(table)
    labels = result.node_labels
    if labels is not None:
        if labels["drift"]:
            out.print(f"[yellow]node labels differ from the design on {len(labels['drift'])} node(s):[/yellow]")
            for line in labels["drift"][:20]:
                out.print(f"  {escape(line)}")
        else:
            out.print(f"node labels: {labels['checked']} design nodes carry their site, SU, rack and GPU labels")
    approval = result.outputs.get("approval")
    if approval:
        if approval.get("approved"):
            state = "approved"
        elif approval.get("allow_unapproved"):
            state = "[yellow]NOT approved — applied with --allow-unapproved[/yellow]"
        else:
            state = "not approved"
        out.print(f"plan {approval['digest'][:12]}…: {state}")
    clusters = result.outputs.get("clusters") or {}
    for site, cluster in clusters.items():
        out.print(f"cluster {site}: namespace {cluster['namespace']}, plan of record "
                  f"configmap/{cluster['plan_configmap']} (digest {cluster['plan_digest'][:12]}…)", highlight=False)
    for site, platform in (result.outputs.get("platform") or {}).items():
        gpu, network, monitoring = platform["gpu"], platform["network"], platform["monitoring"]
        tenants, sovereignty = platform["tenants"], platform["sovereignty"]
        driver = f"driver: {gpu['driver']}, {escape(str(gpu['driver_version']))}"
        out.print(f"platform {escape(site)}: {escape(gpu['chart'])} ({driver}), "
                  f"{escape(network['chart'])} ({network['fabric']}, {network['rails']} rails), from {escape(gpu['repository'])}",
                  highlight=False)
        if monitoring["installed"]:
            out.print(f"  monitoring: {escape(monitoring['chart'])}, {monitoring['alert_rules']} alert rules", highlight=False)
        else:
            out.print(f"  [yellow]monitoring: {escape(monitoring['chart'])} NOT installed[/yellow] (the mirror's package lacks "
                      f"{escape(', '.join(monitoring['missing_charts']))}); CRDs and {monitoring['alert_rules']} alert rules "
                      "applied", highlight=False)
        out.print(f"  tenants: {len(tenants)} ({escape(', '.join(sorted(tenants)))}); admission policies: "
                  f"{escape(', '.join(sovereignty['admission_policies']))}", highlight=False)
    machines = result.outputs.get("machines")
    if machines:
        out.print(f"machines: {machines['servers']} servers in {machines['racks']} racks, {machines['powered_on']} "
                  f"powered on; {machines['stacks']} scalable-unit stack(s), {machines['pools']} provider pools, "
                  f"{machines['wave']} BMC sessions at once per rack", highlight=False)

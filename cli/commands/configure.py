"""sovereign configure: run the node roles on a stack's nodes (or on the lab standing in for them)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.output import EnvironmentMissing, InvalidInput, OperationFailed, console, emit_json, json_option
from lab.sockets import SocketDirError
from nodeconfig.configure import configure as run_configure
from nodeconfig.configure import plan_target
from nodeconfig.progress import RunProgress, summary_table
from nodeconfig.settings import PROFILES
from stacks.design.loader import InputError


@click.command()
@click.argument("ref", metavar="STACK|FILE")
@click.option("--site", help="Site to configure (default: the first).")
@click.option("--lab", "lab_name", metavar="NAME", help="Target the local lab NAME instead of the design's nodes.")
@click.option("--limit", help="Ansible host pattern to narrow the run.")
@click.option("--tags", help="Only these roles/tags (comma-separated).")
@click.option("--check", is_flag=True, help="Report what would change; change nothing.")
@click.option("--diff", is_flag=True, help="Show file differences.")
@click.option("--secrets", "secrets_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML with admin_password_hashes / registry_credentials (mode 0600).")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="tuned", show_default=True,
              help="Ansible settings: the project's tuned ones, or Ansible's stock defaults.")
@click.option("--forks", type=click.IntRange(1, 500), help="Total forks across all shards.")
@click.option("--accept-new-host-keys", is_flag=True,
              help="First contact with a site: record unknown nodes' host keys in the state dir "
                   "(a changed key still stops the run).")
@click.option("--cluster", is_flag=True,
              help="Greenfield stacks: also bootstrap the site's Kubernetes cluster (control plane on the "
                   "management nodes, the others joining it), signed by the site CA in the stack's secrets "
                   "(sovereign:site_ca_cert, sovereign:site_ca_key); with --lab, by the lab's CA.")
@click.option("--no-reboot", is_flag=True,
              help="Do not reboot nodes whose new NVIDIA driver needs it; report them as 'reboot required'.")
@json_option
def configure(
    ref, site, lab_name, limit, tags, check, diff, secrets_file, profile, forks, accept_new_host_keys, cluster, no_reboot,
    as_json,
) -> None:
    """Configure nodes with the project's Ansible roles; a summary per host at the end.

    Exit 0 when every host converged (nodes left for a reboot by --no-reboot included: they are
    listed as "reboot required"), 1 when any host failed or was unreachable (or a host key
    changed, which stops the run), 2 on bad input, 3 when no short SSH socket directory exists.
    """
    try:
        target = plan_target(ref, site=site, lab=lab_name, accept_new_host_keys=accept_new_host_keys, cluster=cluster)
        out = console()
        with RunProgress(out if not as_json else console_to_stderr()) as progress:
            result = run_configure(
                target, secrets_file=secrets_file, check=check, diff=diff, tags=tags, limit=limit,
                profile=PROFILES[profile], total_forks=forks, on_event=progress, reboot=not no_reboot,
            )
    except InputError as exc:
        raise InvalidInput(exc, as_json) from None
    except SocketDirError as exc:
        if as_json:
            emit_json({"ok": False, "error": str(exc)})
        raise EnvironmentMissing(str(exc)) from None
    if as_json:
        emit_json(result.to_dict())
    else:
        out.print(summary_table(result))
    if result.stopped:
        raise OperationFailed(result.stopped)
    if not result.ok:
        failed = [h.host for h in result.hosts.values() if h.status in ("failed", "unreachable")]
        raise OperationFailed(f"{len(failed)} host(s) did not converge: {', '.join(sorted(failed)) or 'see artifacts'}")


def console_to_stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False)

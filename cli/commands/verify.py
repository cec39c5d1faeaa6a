"""sovereign verify: node acceptance with pytest-testinfra, per role and host."""

from __future__ import annotations

from pathlib import Path

import click

from cli.output import EnvironmentMissing, InvalidInput, OperationFailed, console, emit_json, json_option
from lab.sockets import SocketDirError
from nodeconfig.acceptance.run import VerifyError, VerifyInputError, verify_local
from nodeconfig.acceptance.run import verify as run_verify
from nodeconfig.configure import plan_target, write_inventory
from stacks.design.loader import InputError


@click.command()
@click.argument("ref", metavar="STACK|FILE", required=False)
@click.option("--site", help="Site to verify (default: the first).")
@click.option("--lab", "lab_name", metavar="NAME", help="Verify the local lab NAME's nodes.")
@click.option("--limit", help="Hosts or groups (comma-separated, wildcards allowed).")
@click.option("--role", "roles", multiple=True, help="Only this role's checks (repeatable).")
@click.option("--local", "local_vars", type=click.Path(dir_okay=False, path_type=Path),
              help="Check this machine (local://) against the variables in this YAML file instead.")
@click.option("--burn-in", is_flag=True,
              help="Also run the functional burn-in tier: dcgmi diag -r 3 (about 30 minutes per GPU node), "
                   "nccl-tests all_reduce_perf and GPUDirect ib_write_bw against the platform's figures.")
@click.option("--failures-only", is_flag=True, help="Show only failed checks.")
@json_option
def verify(ref, site, lab_name, limit, roles, local_vars, burn_in, failures_only, as_json) -> None:
    """Check what the roles promise: services, config, hardening, time sync, containerd, GPUs, IB.

    Exit 0 when every check passes, 1 when any fails, 2 on bad input.
    """
    try:
        if local_vars is not None:
            report = verify_local(local_vars, roles=roles or None, burn_in=burn_in, timeout_s=_timeout(burn_in))
        else:
            if ref is None:
                raise click.UsageError("give a STACK|FILE, or --local VARS")
            target = plan_target(ref, site=site, lab=lab_name)
            report = run_verify(write_inventory(target), ssh_config=target.ssh_config, limit=limit, roles=roles or None,
                                burn_in=burn_in, timeout_s=_timeout(burn_in))
    except InputError as exc:
        raise InvalidInput(exc, as_json) from None
    except VerifyInputError as exc:
        raise click.BadParameter(str(exc)) from None  # exit 2: the input is wrong
    except (VerifyError, SocketDirError) as exc:
        raise EnvironmentMissing(str(exc)) from None
    if as_json:
        emit_json(report.to_dict())
    else:
        console().print(report.table(failures_only=failures_only))
    if not report.ok:
        counts = report.counts
        raise OperationFailed(f"acceptance failed: {counts}")


def _timeout(burn_in: bool) -> float:
    # dcgmi diag -r 3 takes about half an hour on an 8-GPU node; the read-only checks, seconds.
    return 3 * 3600 if burn_in else 900

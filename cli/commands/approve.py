"""sovereign approve: sign the current plan's digest with a reviewer's ed25519 key."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.output import InvalidInput, console, emit_json, json_option
from cli.plan_view import plan_view
from stacks.design import atomic
from stacks.design.approval import approvals_dir, check, plan_document
from stacks.design.approval import approve as sign_plan
from stacks.design.loader import InputError, Problem, load_and_design, stack_name
from stacks.design.signing import UnusableKey
from stacks.design.summary import plan_summary


@click.command()
@click.argument("ref", metavar="STACK|FILE")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The reviewer's ed25519 private key (OpenSSH or PEM, unencrypted).")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Approvals folder (default: approvals/<stack>/, committed beside the stack config).")
@json_option
def approve(ref: str, key_file: Path, folder: Path | None, as_json: bool) -> None:
    """Sign the plan's digest (partnership + design, not file bytes); write it beside the plan."""
    try:
        partnership, design = load_and_design(ref)
    except InputError as exc:
        raise InvalidInput(exc, as_json) from None
    stack = stack_name(ref)
    folder = folder or approvals_dir(stack)
    document = plan_document(stack, partnership, design)
    try:
        signature, path = sign_plan(document, partnership, key_file, folder)
    except UnusableKey as exc:
        raise InvalidInput(InputError([Problem(str(key_file), None, "--key", str(exc))]), as_json) from None
    _write_plan(plan_summary(partnership, design), folder)
    status = check(document, partnership, folder)
    result = {
        "ok": True, "stack": stack, "digest": signature.digest, "signature": str(path),
        "signer": {"name": signature.name, "kind": signature.kind, "fingerprint": signature.fingerprint},
        "signed_at": signature.signed_at, "approved": not status.missing, "missing": status.missing,
    }
    if as_json:
        emit_json(result)
        return
    out = console()
    out.print(f"signed {stack} plan [bold]{signature.digest[:12]}[/] as {signature.name} ({signature.kind}, "
              f"{signature.fingerprint}) → {path}")
    out.print("approved: every required party has signed" if not status.missing
              else f"still needed: {', '.join(status.missing)}")


def _write_plan(summary: dict, folder: Path) -> None:
    """plan.json and plan.txt beside the signatures, each written atomically (the folder itself
    holds signatures, so it is never swapped out as a whole, unlike `plan --out`)."""
    text = console()
    text.width = 160
    with text.capture() as captured:
        text.print(plan_view(summary))
    atomic.write_file(folder / "plan.json", json.dumps(summary, indent=2) + "\n")
    atomic.write_file(folder / "plan.txt", captured.get())

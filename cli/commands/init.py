"""`sovereign init [DIR]`: a country's own project — Pulumi.yaml, countries/, .gitignore, README."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
from rich.markup import escape

from cli.output import console, emit_json, json_option
from stacks.design import atomic
from stacks.design.partnership import Mode
from stacks.design.project import PROJECT_ENV, init_project
from stacks.design.starter import DEFAULT_ENV, StarterError, build_starter, render_stack_config

# Pulumi's rule for project names.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Pulumi project name (default: sovereign-<country>, else the directory's name).")
@click.option("--country", metavar="CC", help="Also write this country's first stack (ISO 3166-1 alpha-2).")
@click.option(
    "--template",
    type=click.Choice([m.value for m in Mode]),
    help="With --country: greenfield (an empty site) or expand (an existing data centre).",
)
@click.option("--env", default=DEFAULT_ENV, show_default=True, help="With --country: the stack's environment.")
@json_option
def init(directory: Path | None, name: str | None, country: str | None, template: str | None, env: str, as_json: bool) -> None:
    """Make DIRECTORY (default: --project, else here) a Sovereign project for a country's own repository.

    Writes Pulumi.yaml (stackConfigDir: countries), program/__main__.py, requirements.txt pinning this
    Sovereign, a .gitignore for state and secrets, and a README; with --country and --template also the
    first stack, as `sovereign new` writes it. Files already there are kept: running it twice is safe.
    """
    if (country is None) != (template is None):
        raise click.UsageError("--country and --template go together")
    root = (directory or Path(os.environ.get(PROJECT_ENV) or ".")).resolve()
    starter = None
    if country is not None:
        try:
            starter = build_starter(country, template or "", env)
        except StarterError as exc:
            raise click.BadParameter(exc.message, param_hint=f"'--{exc.param}'") from None
    project_name = name or (f"sovereign-{starter.partnership.country.lower()}" if starter else root.name)
    if not _NAME.fullmatch(project_name):
        raise click.BadParameter(
            f"{project_name!r} is not a Pulumi project name (letters, digits, '_', '.', '-'); pass --name",
            param_hint="'--name'",
        )
    try:
        files = init_project(root, name=project_name, country_name=starter.country_name if starter else None)
        stack_path, stack_written = None, False
        if starter is not None:
            stack_path = files.project.stack_file(starter.stack)
            try:
                atomic.write_file(stack_path, render_stack_config(starter), replace=False)
                stack_written = True
            except FileExistsError:
                pass  # a second run keeps the stack people have been editing
    except OSError as exc:
        raise click.ClickException(f"cannot write {root}: {exc.strerror or exc}") from None

    written = [*files.written, *([stack_path] if stack_written and stack_path else [])]
    kept = [*files.kept, *([stack_path] if stack_path and not stack_written else [])]
    if as_json:
        emit_json(
            {
                "ok": True,
                "project": str(files.project.root),
                "name": files.project.name,
                "stack_config_dir": str(files.project.stack_config_dir),
                "state_dir": str(files.project.state_dir),
                "stack": starter.stack if starter else None,
                "written": [str(p) for p in written],
                "kept": [str(p) for p in kept],
            }
        )
        return
    out = console()
    out.print(f"[green]Project[/] {escape(files.project.name)} in {escape(str(files.project.root))}")
    for path in written:
        out.print(f"  wrote {escape(str(path.relative_to(files.project.root)))}")
    for path in kept:
        out.print(f"  kept  {escape(str(path.relative_to(files.project.root)))} (already there)")
    here = Path.cwd().resolve()
    steps = [] if root == here else [f"cd {root}"]
    if starter is None:
        steps.append("sovereign new <country> --template expand|greenfield")
    else:
        steps += [f"sovereign validate {starter.stack}", f"sovereign plan {starter.stack}"]
    steps.append("git init && git add -A  (the partnership is reviewed like code)")
    out.print("Next:")
    for number, step in enumerate(steps, 1):
        out.print(f"  {number}. {escape(step)}")

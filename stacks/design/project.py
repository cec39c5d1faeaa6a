"""The project a command works in, found the way `pulumi` finds one: the nearest Pulumi.yaml.

A country keeps its partnership, stack configs, admins and secrets in its own repository and takes
Sovereign as a pinned tool; this checkout is one such project (the example). Everything a command
reads or writes hangs off the project (stack configs, its own roles, state and artifacts), never
off the tool's install location. `--project DIR` travels as $SOVEREIGN_PROJECT, so library code
and subprocesses (ansible, pytest) see the same choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from stacks.design import atomic

PROJECT_ENV = "SOVEREIGN_PROJECT"
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")  # both are Pulumi's
STATE_DIR = ".sovereign"  # in the project, ignored by git (init writes the .gitignore)
STACK_CONFIG_DIR = "countries"
PROGRAM_DIR = "program"  # not `stacks`: the program's directory goes first on sys.path


class ProjectNotFound(Exception):
    """A command needs a project and there is none (exit 3): the message says how to make one."""

    exit_code = 3


class ProjectInvalid(ValueError):
    """The project file is unreadable or malformed (exit 2): `file`, `field` and what is wrong."""

    exit_code = 2

    def __init__(self, file: Path, field: str, message: str):
        self.file, self.field, self.message = file, field, message
        super().__init__(f"{file}: {field or '(document)'}: {message}")


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    name: str
    stack_config_dir: Path  # Pulumi's stackConfigDir: where Pulumi.<stack>.yaml files live
    state_dir: Path  # state and artifacts of runs (configure, later the engine's backend)

    @property
    def roles_dir(self) -> Path:
        """The project's own roles: they come before the shipped ones (add or override a role)."""
        return self.root / "roles"

    def stack_file(self, stack: str) -> Path:
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"


def find_project(start: Path | None = None) -> Project | None:
    """The project of the nearest Pulumi.yaml from `start` (default: the current directory) up."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / name).is_file() for name in PROJECT_FILES):
            return load_project(folder)
    return None


def load_project(root: Path) -> Project | None:
    """The project whose Pulumi.yaml is in `root` exactly; None when there is none."""
    root = root.resolve()
    path = next((root / name for name in PROJECT_FILES if (root / name).is_file()), None)
    if path is None:
        return None
    settings = _read(path)
    name = settings.get("name")
    if not isinstance(name, str) or not name:
        raise ProjectInvalid(path, "name", "expected the project's name (a string)")
    config_dir = settings.get("stackConfigDir")
    if config_dir is not None and not isinstance(config_dir, str):
        raise ProjectInvalid(path, "stackConfigDir", f"expected a directory (a string), got {config_dir!r}")
    # Without stackConfigDir, Pulumi keeps stack configs beside Pulumi.yaml.
    return Project(root=root, name=name, stack_config_dir=root / (config_dir or ""), state_dir=root / STATE_DIR)


def current_project() -> Project:
    """--project DIR ($SOVEREIGN_PROJECT) if given, else the nearest project from here up."""
    project = current_project_or_none()
    if project is None:
        raise ProjectNotFound(
            f"not in a Sovereign project: no Pulumi.yaml in {Path.cwd()} or any directory above it. "
            "Create one with `sovereign init [DIR]`, or pass --project DIR"
        )
    return project


def current_project_or_none() -> Project | None:
    """As current_project(), for commands that also work without one; an explicit --project must exist."""
    chosen = os.environ.get(PROJECT_ENV)
    if not chosen:
        return find_project()
    project = load_project(Path(chosen))
    if project is None:
        raise ProjectNotFound(
            f"--project {chosen}: no Pulumi.yaml there. Create one with `sovereign init {chosen}`"
        )
    return project


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectInvalid(path, "", f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ProjectInvalid(path, "", f"malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ProjectInvalid(path, "", "expected a mapping (name, runtime, main, stackConfigDir)")
    return data


# A new project -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectFiles:
    """What `init` did: files it wrote, and files already there that it left alone."""

    project: Project
    written: tuple[Path, ...]
    kept: tuple[Path, ...]


def init_project(root: Path, *, name: str, country_name: str | None = None) -> ProjectFiles:
    """Write a minimal project in `root`; an existing file is kept as it is, so a second run is safe."""
    # The one Jinja environment (StrictUndefined); imported here because discovery runs on every
    # command and the starter's imports (Jinja, CLDR) would slow them all.
    from stacks.design.starter import environment

    root = root.resolve()
    context = {
        "name": name,
        "country_name": country_name,
        "stack_config_dir": STACK_CONFIG_DIR,
        "program_dir": PROGRAM_DIR,
        "state_dir": STATE_DIR,
        "version": _version(),
    }
    files = {
        "Pulumi.yaml": "project/Pulumi.yaml.j2",
        f"{PROGRAM_DIR}/__main__.py": "project/__main__.py.j2",
        "requirements.txt": "project/requirements.txt.j2",
        ".gitignore": "project/gitignore.j2",
        "README.md": "project/README.md.j2",
    }
    written, kept = [], []
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = environment().get_template(template).render(**context)
        try:
            atomic.write_file(path, text, replace=False)  # a full disk leaves no stub to block a retry
        except FileExistsError:
            kept.append(path)
        else:
            written.append(path)
    (root / STACK_CONFIG_DIR).mkdir(exist_ok=True)
    project = load_project(root)
    if project is None:  # a Pulumi.yml was there: Pulumi.yaml was written, but that one wins
        raise ProjectInvalid(root / "Pulumi.yaml", "", "written, but not found again")
    return ProjectFiles(project=project, written=tuple(written), kept=tuple(kept))


def _version() -> str:
    try:
        return metadata.version("sovereign")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"

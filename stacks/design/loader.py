"""Read a partnership from a stack config or a bare YAML file; report every problem at once.

Each problem names the file, the line, the field path and what was expected, because the people
fixing these files are reviewers and engineers reading a message, not a traceback.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stacks.design import yamldoc
from stacks.design.operators import ADMINS_KEY, Admin, Secrets
from stacks.design.partnership import SCHEMA_VERSION, LocatedErrors, Partnership
from stacks.design.project import ProjectNotFound, current_project
from stacks.design.sizing import PartnershipDesign, SizingErrors, design
from stacks.design.yamldoc import Document, Node
from stacks.design.yamldoc import short_repr as _short

CONFIG_KEY = "sovereign:partnership"
MAX_MESSAGE = 400  # a 200 KB value must not come back whole in every error
_ADMINS = TypeAdapter(list[Admin])


def countries_dir() -> Path:
    """The current project's stack config directory (Pulumi's stackConfigDir); ProjectNotFound outside one."""
    return current_project().stack_config_dir


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(document)'}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


class InputError(Exception):
    """Invalid input; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def resolve(ref: str) -> Path:
    """A path to a file, or a stack name like 'ke-staging' (the project's countries/Pulumi.ke-staging.yaml).

    Files work anywhere; a stack name needs a project (ProjectNotFound outside one).
    """
    path = Path(ref)
    if path.is_file():
        return path
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        raise InputError([Problem(ref, None, "", "no such file")])
    try:
        project = current_project()
    except ProjectNotFound as exc:
        raise ProjectNotFound(f"stack '{ref}': {exc}. A file path works anywhere.") from None
    stack_file = project.stack_file(ref)
    if stack_file.is_file():
        return stack_file
    raise InputError(
        [Problem(ref, None, "", f"no such file, and no stack config {stack_file} for a stack '{ref}'")]
    )


def stack_name(ref: str | Path) -> str:
    """'ke-staging' for a stack name or countries/Pulumi.ke-staging.yaml; a file's stem otherwise."""
    name = Path(ref).name
    if name.startswith("Pulumi.") and name.endswith(".yaml"):
        return name[len("Pulumi.") : -len(".yaml")]
    return Path(name).stem if name.endswith((".yaml", ".yml")) else name


def load(ref: str | Path) -> Partnership:
    return _load(ref)[0]


def _load(ref: str | Path) -> tuple[Partnership, Document, tuple[Any, ...], str]:
    path = resolve(str(ref))
    name = str(path)
    document = _read(path)
    data, prefix = _partnership_in(document, name)
    return validate_mapping(data, name, document.root, prefix), document, prefix, name


def parse(text: str, name: str) -> Partnership:
    document = yamldoc.read(text)
    if document.issues:
        raise InputError([Problem(name, i.line, _dotted(i.loc), _cut(i.message)) for i in document.issues])
    data, prefix = _partnership_in(document, name)
    return validate_mapping(data, name, document.root, prefix)


def _partnership_in(document: Document, name: str) -> tuple[Any, tuple[Any, ...]]:
    """The partnership inside a YAML 1.2 document, and its path there."""
    data = document.data
    prefix = _prefix(data)
    if prefix:
        config = data.get("config")
        if not isinstance(config, dict) or CONFIG_KEY not in config:
            raise InputError(
                [Problem(name, document.line(("config",)), "config",
                         f"a stack config holds the partnership under '{CONFIG_KEY}'")]
            )
        data = config[CONFIG_KEY]
    return data, prefix


def validate_mapping(
    data: Any, name: str, root: Node | None = None, prefix: tuple[Any, ...] = ()
) -> Partnership:
    """Validate an already-parsed partnership (a stack config value, a dict from a test)."""
    if not isinstance(data, dict):
        raise InputError([Problem(name, _line(root, prefix), _dotted(prefix), "expected a mapping of partnership fields")])
    version = data.get("schema_version")
    # `true == 1` and `1.0 == 1` in Python; a schema version is the integer itself.
    if type(version) is not int or version != SCHEMA_VERSION:
        msg = (
            "required: the partnership schema version"
            if version is None
            else f"{_short(version)} is not a schema this sovereign reads"
        )
        raise InputError(
            [
                Problem(
                    name,
                    _line(root, prefix + ("schema_version",)),
                    _dotted(prefix + ("schema_version",)),
                    f"{msg} (expected {SCHEMA_VERSION}, a number)",
                )
            ]
        )
    try:
        return Partnership.model_validate(data)
    except ValidationError as exc:
        raise InputError(_problems(exc, name, root, prefix)) from None


def _problems(exc: ValidationError, name: str, root: Node | None, prefix: tuple[Any, ...]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedErrors):  # a cross-site check: each problem at its own site
            problems += [
                Problem(name, _line(root, loc + sub), _dotted(loc + sub), _cut(message))
                for sub, message in cause.errors
            ]
        else:
            problems.append(Problem(name, _line(root, loc), _dotted(loc), _message(dict(error))))
    return problems


def load_admins(ref: str | Path) -> list[Admin]:
    """Administrators from the stack config's `sovereign:admins` (none in a bare partnership file)."""
    path = resolve(str(ref))
    document = _read(path)
    config = document.data.get("config") if isinstance(document.data, dict) else None
    if not isinstance(config, dict) or config.get(ADMINS_KEY) is None:
        return []
    prefix = ("config", ADMINS_KEY)
    try:
        return _ADMINS.validate_python(config[ADMINS_KEY])
    except ValidationError as exc:
        raise InputError(_problems(exc, str(path), document.root, prefix)) from None


def load_secrets(path: Path, admins: Iterable[str]) -> Secrets:
    """The secrets file: private (no group or other access), known keys, hashes for known admins."""
    name = str(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError([Problem(name, None, "", f"cannot read secrets: {_reason(exc)}")]) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError([Problem(name, None, "", "secrets file is readable by others: chmod 600 it")])
    document = _read(path)
    try:
        secrets = Secrets.model_validate(document.data if document.data is not None else {})
    except ValidationError as exc:
        raise InputError(_problems(exc, name, document.root, ())) from None
    known = set(admins)
    unknown = [admin for admin in secrets.admin_password_hashes if admin not in known]
    if unknown:
        raise InputError(
            [Problem(name, document.line(("admin_password_hashes", admin)), f"admin_password_hashes.{admin}",
                     f"no such admin in {ADMINS_KEY}") for admin in unknown]
        )
    return secrets


def _read(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(str(path), None, "", f"cannot read: {_reason(exc)}")]) from None
    document = yamldoc.read(text)
    if document.issues:
        raise InputError([Problem(str(path), i.line, _dotted(i.loc), _cut(i.message)) for i in document.issues])
    return document


def _message(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (a typo?)"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    got = error.get("input")
    if isinstance(got, bool) and kind == "string_type":
        return f"YAML read this as {str(got).lower()}: quote it, e.g. '{str(got).lower()}'"
    if kind not in ("value_error",) and not isinstance(got, (dict, list)):
        msg = f"{msg} (got {_short(got)})"
    return _cut(msg)


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else f"{message[: MAX_MESSAGE - 1]}… (message cut)"


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part) if len(str(part)) <= 80 else f"{str(part)[:79]}…"  # an unknown 200 KB key
            out += ("." if out else "") + text
    return out


def _line(node: Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node the error path reaches."""
    return yamldoc.node_line(node, loc)


def load_and_design(ref: str | Path) -> tuple[Partnership, PartnershipDesign]:
    """Load, validate and size in one step; budget overshoots come back as input problems too."""
    partnership, document, prefix, name = _load(ref)
    try:
        return partnership, design(partnership)
    except SizingErrors as exc:
        problems = []
        for index, error in exc.errors:
            loc = prefix + ("sites", index, "capacity")
            problems.append(Problem(name, document.line(loc), _dotted(loc), _cut(str(error))))
        raise InputError(problems) from None


def _prefix(data: Any) -> tuple[Any, ...]:
    return ("config", CONFIG_KEY) if isinstance(data, dict) and "config" in data else ()

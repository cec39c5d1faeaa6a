"""Read a partnership from a stack config or a bare YAML file; report every problem at once.

Each problem names the file, the line, the field path and what was expected, because the people
fixing these files are reviewers and engineers reading a message, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stacks.design.partnership import SCHEMA_VERSION, Partnership
from stacks.design.project import ProjectNotFound, current_project
from stacks.design.sizing import PartnershipDesign, SizingErrors, design

CONFIG_KEY = "sovereign:partnership"
# libyaml's parser where installed: planning a large fleet is mostly YAML parsing.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    path = resolve(str(ref))
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(name, None, "", f"cannot read: {exc}")]) from None
    return parse(text, name)


def parse(text: str, name: str) -> Partnership:
    try:
        root = yaml.compose(text, Loader=_YamlLoader)
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise InputError([Problem(name, line, "", f"malformed YAML: {reason}")]) from None

    prefix = _prefix(data)
    if prefix:
        config = data.get("config")
        if not isinstance(config, dict) or CONFIG_KEY not in config:
            raise InputError(
                [Problem(name, None, "config", f"a stack config holds the partnership under '{CONFIG_KEY}'")]
            )
        data = config[CONFIG_KEY]
    return validate_mapping(data, name, root, prefix)


def validate_mapping(
    data: Any, name: str, root: yaml.Node | None = None, prefix: tuple[Any, ...] = ()
) -> Partnership:
    """Validate an already-parsed partnership (a stack config value, a dict from a test)."""
    if not isinstance(data, dict):
        raise InputError([Problem(name, 1, _dotted(prefix), "expected a mapping of partnership fields")])
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        msg = (
            "required: the partnership schema version"
            if version is None
            else f"{version!r} is not a schema this sovereign reads"
        )
        raise InputError(
            [
                Problem(
                    name,
                    _line(root, prefix + ("schema_version",)),
                    _dotted(prefix + ("schema_version",)),
                    f"{msg} (expected {SCHEMA_VERSION})",
                )
            ]
        )
    try:
        return Partnership.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            [
                Problem(name, _line(root, prefix + tuple(e["loc"])), _dotted(prefix + tuple(e["loc"])), _message(dict(e)))
                for e in exc.errors(include_url=False)
            ]
        ) from None


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
        return f"YAML read this as {got!r} (as it does NO, no, yes, on, off): quote it, e.g. 'NO'"
    if kind not in ("value_error",) and not isinstance(got, (dict, list)):
        msg = f"{msg} (got {got!r})"
    return msg


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node the error path reaches."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value if not isinstance(value, yaml.ScalarNode) or value.value != "" else key
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line



def load_and_design(ref: str | Path) -> tuple[Partnership, PartnershipDesign]:
    """Load, validate and size in one step; budget overshoots come back as input problems too."""
    path = resolve(str(ref))
    partnership = load(path)
    try:
        return partnership, design(partnership)
    except SizingErrors as exc:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=_YamlLoader)
        prefix = _prefix(yaml.load(text, Loader=_YamlLoader))
        problems = []
        for index, error in exc.errors:
            loc = prefix + ("sites", index, "capacity")
            problems.append(Problem(str(path), _line(root, loc), _dotted(loc), str(error)))
        raise InputError(problems) from None


def _prefix(data: Any) -> tuple[Any, ...]:
    return ("config", CONFIG_KEY) if isinstance(data, dict) and "config" in data else ()

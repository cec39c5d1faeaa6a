"""Read YAML the way Pulumi's engine reads a stack file: YAML 1.2, one value per key, line numbers kept.

PyYAML reads YAML 1.1, where `NO` is false, `010000` is octal and `17:04` is 1024, and a repeated
key silently wins; the engine (YAML 1.2) reads the same file differently. So the partnership is
composed with ruamel.yaml (YAML 1.2) and built into plain Python values here, by rules short
enough to read: the core schema, no duplicate keys, no merge keys, no custom tags, and integers
with a leading zero refused because the two YAML versions read them differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_TAG = "tag:yaml.org,2002:"
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE, _FALSE = {"true", "True", "TRUE"}, {"false", "False", "FALSE"}
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_OTHER_VERSION = re.compile(r"^%YAML[ \t]+(?!1\.2[ \t]*$)\S.*$", re.MULTILINE)
# Aliases can make a small file expand into billions of values ("billion laughs"); a partnership
# of 10,000 sites has about 300,000.
MAX_VALUES = 1_000_000


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing wrong with the YAML itself: 1-based line (None if unknown), path, message."""

    line: int | None
    loc: tuple[Any, ...]
    message: str


@dataclass
class Document:
    data: Any
    root: Node | None
    issues: list[Issue] = field(default_factory=list)

    def line(self, loc: tuple[Any, ...]) -> int | None:
        return node_line(self.root, loc)


def read(text: str) -> Document:
    """Compose and build `text`; syntax errors and ambiguous values come back as issues."""
    directive = _OTHER_VERSION.search(text)
    if directive:  # the engine reads every stack file as YAML 1.2, whatever it says
        line = text.count("\n", 0, directive.start()) + 1
        return Document(None, None, [Issue(line, (), f"'{directive[0].strip()}': the file is read as YAML 1.2; remove it")])
    try:
        root = YAML(typ="safe").compose(text)  # libyaml (ruamel.yaml.clib) where installed
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "not YAML"
        return Document(None, None, [Issue(mark.line + 1 if mark else None, (), f"malformed YAML: {reason}")])
    except YAMLError as exc:
        return Document(None, None, [Issue(None, (), f"malformed YAML: {_first_line(exc)}")])
    except RecursionError:
        return Document(None, None, [Issue(None, (), "malformed YAML: nested too deeply")])
    builder = _Builder()
    try:
        data = builder.build(root, ()) if root is not None else None
    except RecursionError:
        return Document(None, None, [Issue(None, (), "malformed YAML: nested too deeply")])
    return Document(data, root, builder.issues)


def node_line(node: Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node the path reaches (a key's line when its value is empty)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value == str(part):
                    empty = isinstance(value, ScalarNode) and value.value == ""
                    child = key if empty else value
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


class _Builder:
    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.count = 0  # values in the document as a reader expands it, aliases included
        self.active: set[int] = set()  # nodes being built: a recursive alias would never end
        # An alias is the same node again: built once, its expanded size counted each time, so
        # a billion laughs is refused in linear time.
        self.built: dict[int, tuple[Any, int]] = {}

    def issue(self, node: Node, loc: tuple[Any, ...], message: str) -> None:
        self.issues.append(Issue(node.start_mark.line + 1, loc, message))

    def build(self, node: Node, loc: tuple[Any, ...]) -> Any:
        if self.count > MAX_VALUES:
            return None
        if isinstance(node, ScalarNode):
            self.counted(node, loc, 1)
            return self.scalar(node, loc)
        if id(node) in self.built:
            known, size = self.built[id(node)]
            self.counted(node, loc, size)
            return known
        if id(node) in self.active:
            self.issue(node, loc, "an alias refers to a value that contains it")
            return None
        before = self.count
        self.counted(node, loc, 1)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _TAG + "seq":
                value: Any = [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
            elif isinstance(node, MappingNode) and node.tag == _TAG + "map":
                value = self.mapping(node, loc)
            else:
                self.issue(node, loc, f"unsupported tag {short_repr(node.tag)}: use plain mappings and lists")
                value = None
        finally:
            self.active.discard(id(node))
        self.built[id(node)] = (value, self.count - before)
        return value

    def counted(self, node: Node, loc: tuple[Any, ...], size: int) -> None:
        self.count += size
        if self.count > MAX_VALUES and not any("expands to more than" in i.message for i in self.issues):
            self.issue(node, loc, f"the document expands to more than {MAX_VALUES:,} values (aliases?)")

    def mapping(self, node: MappingNode, loc: tuple[Any, ...]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.issue(key_node, loc, "a key must be a plain value, not a list or mapping")
                continue
            if key_node.tag == _TAG + "merge":
                self.issue(key_node, loc, "merge keys (<<) are not YAML 1.2: write the fields out")
                continue
            key = self.scalar(key_node, loc)
            try:
                hash(key)
            except TypeError:
                continue
            line = key_node.start_mark.line + 1
            if key in out:
                self.issue(
                    key_node, loc + (key,),
                    f"duplicate key {short_repr(key)} (first on line {first_line[key]}): a reader would keep only one",
                )
                continue
            first_line[key] = line
            out[key] = self.build(value_node, loc + (key,))
        return out

    def scalar(self, node: ScalarNode, loc: tuple[Any, ...]) -> Any:
        tag, value = node.tag, node.value
        if tag == _TAG + "str" or tag == _TAG + "timestamp":  # YAML 1.2 has no timestamps: text
            return value
        if tag == _TAG + "null" and value in _NULL:
            return None
        if tag == _TAG + "bool" and value in _TRUE | _FALSE:
            return value in _TRUE
        if tag == _TAG + "int":
            return self.integer(node, loc)
        if tag == _TAG + "float":
            try:
                return _float(value)
            except ValueError:
                self.issue(node, loc, f"{short_repr(value)} is not a number")
                return None
        self.issue(node, loc, f"unsupported tag {short_repr(tag)} on {short_repr(value)}")
        return None

    def integer(self, node: ScalarNode, loc: tuple[Any, ...]) -> int | None:
        text = node.value.replace("_", "")
        digits = text.lstrip("+-")
        try:
            if _DECIMAL.fullmatch(text):
                if len(digits) > 1 and digits.startswith("0"):
                    self.issue(
                        node, loc,
                        f"{node.value} has a leading zero: YAML 1.1 reads it as octal, YAML 1.2 as "
                        f"decimal; write {int(text, 10)} (or 0o{digits.lstrip('0')} for octal)",
                    )
                    return None
                return int(text, 10)
            sign = -1 if text.startswith("-") else 1
            base = {"0o": 8, "0x": 16, "0b": 2}.get(digits[:2].lower())
            if base is None:
                raise ValueError(text)
            return sign * int(digits[2:], base)
        except ValueError:
            self.issue(node, loc, f"{short_repr(node.value)} is not a number")
            return None


def _float(value: str) -> float:
    lowered = value.lower().replace("_", "")
    if lowered in (".inf", "+.inf"):
        return float("inf")
    if lowered == "-.inf":
        return float("-inf")
    if lowered == ".nan":
        return float("nan")
    return float(lowered)


def short_repr(value: Any, limit: int = 60) -> str:
    """repr() cut to `limit` characters: a 200 KB value must not come back whole in an error."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(str(value)):,} characters)"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

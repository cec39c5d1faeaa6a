"""The engine's preview as a reviewer reads it: which objects `up` would create, change, replace
or delete, grouped by the layer and component that owns them.

Only what the engine's steps name is kept — the URN, the operation and, for updates and
replacements, the names of the changed properties — never a property's value, so no secret the
stack holds can reach a report through here. This module is pure; `stacks.automation` runs the
engine and hands its steps in.

The preview is not part of the approval digest (docs/architecture.md): a report records the
preview it was shown by `EnginePreview.digest`, printed beside the plan's digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The steps a reviewer weighs, in the order the report lists them. The engine's other steps are
# either no change (same, read, refresh) or halves of a replacement already counted as `replace`
# (create-replacement, delete-replaced, discard-replaced).
OPERATIONS = ("create", "update", "replace", "delete")
_OWN = "sovereign:"  # components this project defines: sovereign:<layer>:<Component>
STACK_LAYER = "stack"


@dataclass(frozen=True, slots=True)
class ResourceChange:
    urn: str
    op: str  # create | update | replace | delete, as the engine names its steps
    properties: tuple[str, ...] = ()  # top-level input names an update or replacement changes

    @property
    def types(self) -> list[str]:
        """The type chain: each parent's type, then the resource's own (`a$b$c` in the URN)."""
        parts = self.urn.split("::")
        return parts[2].split("$") if len(parts) >= 4 else [self.urn]

    @property
    def type(self) -> str:
        return self.types[-1]

    @property
    def kind(self) -> str:
        """What the object is in one word: `kubernetes:core/v1:Namespace` → Namespace."""
        return self.type.rsplit(":", 1)[-1] or self.type

    @property
    def name(self) -> str:
        return self.urn.split("::", 3)[-1] if self.urn.count("::") >= 3 else self.urn

    @property
    def component(self) -> tuple[str, str]:
        """(layer, component) of the innermost project component that owns this resource, or of
        the resource itself when it is one; resources outside any (the stack) go to `stack`."""
        owned = [t for t in self.types if t.startswith(_OWN) and t.count(":") == 2]
        if not owned:
            return STACK_LAYER, "Stack"
        _, layer, component = owned[-1].split(":")
        return layer, component

    def to_dict(self) -> dict[str, object]:
        return {"urn": self.urn, "op": self.op, "properties": list(self.properties)}


def change_from_step(urn: str, op: str, diffs: list[str] | None, detailed: list[str] | None = None,
                     old_inputs: Mapping[str, Any] | None = None,
                     new_inputs: Mapping[str, Any] | None = None) -> ResourceChange | None:
    """A change worth listing from one engine step, or None for steps that change nothing.

    The changed properties are the engine's most precise account it gives: the detailed diff's
    property paths, else the diff's top-level keys, else the names of the top-level inputs whose
    values differ (providers such as Kubernetes' server-side apply leave the first two empty in a
    preview). Only names leave this function; the inputs' values are compared, never kept.
    """
    if op not in OPERATIONS:
        return None
    properties: tuple[str, ...] = ()
    if op in ("update", "replace"):
        names = set(detailed or []) or set(diffs or []) or _changed_inputs(old_inputs or {}, new_inputs or {})
        properties = tuple(sorted(names))
    return ResourceChange(urn, op, properties)


def _changed_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    # `__`-prefixed keys are the engine's and providers' bookkeeping, not the program's inputs.
    keys = {k for k in (*old, *new) if not k.startswith("__")}
    return {k for k in keys if old.get(k) != new.get(k)}


@dataclass(frozen=True, slots=True)
class ComponentChanges:
    layer: str
    component: str
    counts: dict[str, int]  # op → how many, only ops that occur
    changes: list[ResourceChange]


def by_component(changes: list[ResourceChange]) -> list[ComponentChanges]:
    """Changes grouped by (layer, component), in the order the program builds the layers."""
    groups: dict[tuple[str, str], list[ResourceChange]] = {}
    for change in sorted(changes, key=lambda c: (OPERATIONS.index(c.op), c.urn)):
        groups.setdefault(change.component, []).append(change)
    out = []
    for (layer, component), members in sorted(groups.items(), key=lambda g: (_layer_rank(g[0][0]), g[0][1])):
        counts = {op: n for op in OPERATIONS if (n := sum(1 for c in members if c.op == op))}
        out.append(ComponentChanges(layer, component, counts, members))
    return out


LAYERS = ("site", "fabric", "machines", "cluster", "platform", STACK_LAYER)


def _layer_rank(layer: str) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


@dataclass(frozen=True, slots=True)
class EnginePreview:
    """What the report says about the engine's view: included, unavailable (and why), or not asked."""

    status: str  # included | unavailable | not_requested
    changes: list[ResourceChange] = field(default_factory=list)
    target: str = ""  # where the engine looked: a lab's name, or "" for the stack's own cluster
    reason: str = ""  # why it is unavailable, in the engine's words

    @property
    def digest(self) -> str:
        """The hash of the change set the reader was shown; printed in the report."""
        if self.status != "included":
            return ""
        items = sorted((c.to_dict() for c in self.changes), key=lambda d: (str(d["urn"]), str(d["op"])))
        data = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return hashlib.sha256(data).hexdigest()

    def to_json(self) -> dict[str, object]:
        counts = {op: n for op in OPERATIONS if (n := sum(1 for c in self.changes if c.op == op))}
        return {"status": self.status, "digest": self.digest or None, "target": self.target or None,
                "changes": counts, "reason": self.reason or None}


NOT_REQUESTED = EnginePreview("not_requested")

"""Hook for the engine's preview: the resource changes `pulumi preview` would make.

The engine is not wired to the CLI yet (the real-engine issue), so `engine_preview` returns None
and the digest and the report cover the validated partnership and the design only. When the
engine arrives, this function returns the preview's steps and both pick them up unchanged:
the digest then also covers the change set, and the report lists it in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceChange:
    urn: str
    op: str  # create | update | replace | delete, as the engine names its steps

    def to_dict(self) -> dict[str, str]:
        return {"urn": self.urn, "op": self.op}


def engine_preview(stack: str) -> list[ResourceChange] | None:
    """The preview's resource changes for `stack`, or None while no engine is available."""
    return None

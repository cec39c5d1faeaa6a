"""A throw-away lab for one real-tier test module, with its own state root."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.nodes import NodeLab
from stacks.design.project import current_project_or_none


@contextmanager
def fresh_lab(prefix: str, count: int) -> Iterator[NodeLab]:
    """`count` new nodes in a uniquely named lab; SOVEREIGN_STATE points at a temporary root
    meanwhile. Configure's runs against the lab live in the project's state dir; they go with it."""
    root = Path(tempfile.mkdtemp(prefix=f"sov{prefix}-", dir="/tmp"))
    old = os.environ.get("SOVEREIGN_STATE")
    os.environ["SOVEREIGN_STATE"] = str(root)
    node_lab = NodeLab(f"{prefix}-{secrets.token_hex(2)}", state_root=root)
    try:
        node_lab.up(count)
        yield node_lab
    finally:
        node_lab.down()
        if old is None:
            os.environ.pop("SOVEREIGN_STATE", None)
        else:
            os.environ["SOVEREIGN_STATE"] = old
        shutil.rmtree(root, ignore_errors=True)
        project = current_project_or_none()
        if project is not None:
            shutil.rmtree(project.state_dir / "configure" / f"lab-{node_lab.name}", ignore_errors=True)

"""Real-tier fixtures: uniquely named labs under a short, throw-away state root.

The rootfs cache is the shared one ($SOVEREIGN_CACHE or ~/.cache/sovereign): the first run on
a fresh machine builds it (minutes), every later run reuses it.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.nodes import NodeLab
from tests.lab.leftovers import leftovers


def unique_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def state_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="sovlab-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def node_lab(state_root: Path) -> Iterator[NodeLab]:
    """A 2-node lab shared by a test module; torn down, and checked clean, afterwards."""
    lab = NodeLab(unique_name("t"), state_root=state_root)
    described = None
    try:
        lab.up(2)
        described = lab.status().to_json()
        yield lab
    finally:
        described = (lab.status().to_json() if lab.spec() else None) or described
        lab.down()
    assert described is not None
    assert leftovers(described) == []

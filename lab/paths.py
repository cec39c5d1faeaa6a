"""Where the lab keeps things: the shared cache, per-lab state and host-wide runtime files.

The cache (rootfs) is shared by every lab and survives `down`; a lab's state directory lives
only while the lab exists; /run holds what is host-wide (subnet claims, ip_forward's original
value) because bridges and iptables rules are host-wide too, whatever SOVEREIGN_STATE says.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lab.errors import LabInputError

DEFAULT_LAB = "default"
# Host-wide bookkeeping; tmpfs, so it is gone after a reboot together with bridges and rules.
RUN_ROOT = Path("/run/sovereign/lab")
# Lab names become hostnames and cgroup names (`<name>-node3`), so keep them DNS-label safe.
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


def cache_root() -> Path:
    """`$SOVEREIGN_CACHE` or ~/.cache/sovereign: kept outside the repo, shared between labs."""
    return Path(os.environ.get("SOVEREIGN_CACHE") or Path.home() / ".cache" / "sovereign")


def state_root() -> Path:
    """`$SOVEREIGN_STATE` or ~/.local/state/sovereign."""
    return Path(os.environ.get("SOVEREIGN_STATE") or Path.home() / ".local" / "state" / "sovereign")


def lab_name(name: str | None = None) -> str:
    """The lab to act on: the explicit name, else `$SOVEREIGN_LAB`, else `default`; validated."""
    chosen = name or os.environ.get("SOVEREIGN_LAB") or DEFAULT_LAB
    if not _NAME.match(chosen) or chosen.endswith("-"):
        raise LabInputError(
            f"invalid lab name {chosen!r}: expected 1-20 characters, a-z, 0-9 and '-', "
            "starting with a letter"
        )
    return chosen


def lab_dir(name: str, root: Path | None = None) -> Path:
    """`<state>/lab/<name>/`: key, ssh_config, inventory, lab.json and the LXC path."""
    return (root or state_root()) / "lab" / name

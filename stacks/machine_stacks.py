"""A site's servers in one Pulumi stack per scalable unit, beside the site's own stack.

Why: the file backend saves a stack's whole checkpoint twice for each resource it creates, one
save at a time, so with every server of a site in one stack the engine's work grows with the
square of the site (a 1,000-server `up` spent its last six minutes with the engine on a full core,
saving). A stack per scalable unit bounds each checkpoint to one unit's servers (and seeds), and
the units' engines run side by side.

Layout: unit stacks are `<stack>-machines-suNN`, in the same backend and project as the site's
stack, run from a workspace of their own (`<state>/machines/`: a Pulumi.yaml naming the project's
program, and the units' stack configs), so a country's `countries/` holds only its own stacks.
Before each run a unit's config is set to its site stack's (secrets stay secrets) plus
`machinesOf`, `su` and `unitPools`; the program then builds that unit's servers only
(stacks.program.build_unit_machines). `bmc.stacksAtOnce` units run at once and share the
site's `bmc.pools` provider processes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stacks.bmc_config import BMC_FILE_ENV, settings_from
from stacks.design import atomic
from stacks.design.loader import load_and_design
from stacks.design.project import Project
from stacks.machines_layer import machines_site, scalable_units

_UNIT = re.compile(r"-machines-su(\d+)$")
MACHINES_TYPE = "sovereign:machines:Machines"  # the component a unit stack holds


def unit_name(stack: str, su: int) -> str:
    return f"{stack}-machines-su{su:02d}"


@dataclass(frozen=True)
class Split:
    """How `sovereign up` provisions a site's servers: which unit stacks, how many at once, and
    each one's provider pools."""

    units: dict[int, str]  # scalable unit -> its stack, as the design and BMC settings have them
    at_once: int
    pools: int  # per unit stack


def split(stack: str, config: dict[str, tuple[str, bool]], env: dict[str, str]) -> Split | None:
    """The unit stacks of `stack`, from its config (decrypted, each with whether it is a secret) and
    the engine environment (the lab's BMC file); None when the stack reaches no BMCs."""
    raw = config.get("sovereign:bmc")
    password = config.get("sovereign:bmcPassword")
    bmc = settings_from(json.loads(raw[0]) if raw else None, password[0] if password else None,
                        in_program=False, lab_file=env.get(BMC_FILE_ENV))
    if bmc is None:
        return None
    _, planned = load_and_design(stack)
    chosen = config.get("sovereign:clusterSite")
    site = machines_site(planned, chosen[0] if chosen else env.get("SOVEREIGN_CLUSTER_SITE"))
    units = scalable_units(site, bmc)
    at_once = max(1, min(len(units), bmc.stacks_at_once))
    return Split({su: unit_name(stack, su) for su in units}, at_once, max(1, bmc.pools // at_once))


def unit_config(site_config: dict[str, tuple[str, bool]], stack: str, su: int, pools: int) -> dict[str, tuple[str, bool]]:
    return {**site_config, "sovereign:machinesOf": (stack, False), "sovereign:su": (str(su), False),
            "sovereign:unitPools": (str(pools), False)}


def existing_units(stack: str, backend: Path) -> dict[int, str]:
    """Unit stacks of `stack` that the backend holds, whatever the design says now."""
    root = backend / ".pulumi" / "stacks"
    found: dict[int, str] = {}
    for checkpoint in root.glob(f"*/{stack}-machines-su*.json") if root.is_dir() else []:
        name = checkpoint.name.removesuffix(".json")
        match = _UNIT.search(name)
        if match and name == unit_name(stack, int(match.group(1))):
            found[int(match.group(1))] = name
    return dict(sorted(found.items()))


def holds_servers(stack: str, backend: Path) -> bool:
    """Whether the site stack's own checkpoint still holds servers, as before they moved to unit
    stacks: running it now would power them off, and the units would reinstall them."""
    root = backend / ".pulumi" / "stacks"
    for checkpoint in root.glob(f"*/{stack}.json") if root.is_dir() else []:
        try:
            if MACHINES_TYPE.encode() in checkpoint.read_bytes():
                return True
        except OSError:
            continue
    return False


def workspace(project: Project, backend: Path) -> Path:
    """The unit stacks' workspace: a Pulumi.yaml for the project's own program (its `main` and
    virtualenv as absolute paths), rewritten only when it changes."""
    settings: dict[str, Any] = yaml.safe_load((project.root / "Pulumi.yaml").read_text())
    runtime = settings.get("runtime")
    if isinstance(runtime, dict) and isinstance(runtime.get("options"), dict) and runtime["options"].get("virtualenv"):
        runtime = {**runtime, "options": {**runtime["options"],
                                          "virtualenv": str(project.root / runtime["options"]["virtualenv"])}}
    unit_project = {
        "name": settings["name"],
        "description": "The site stacks' servers, one stack per scalable unit (written by sovereign: do not edit)",
        "runtime": runtime,
        "main": str(project.root / str(settings.get("main") or ".")),
    }
    folder = backend.parent / "machines"
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(unit_project, sort_keys=False)
    target = folder / "Pulumi.yaml"
    if not target.is_file() or target.read_text() != text:
        atomic.write_file(target, text)
    return folder


def add_summaries(total: dict[str, Any] | None, unit: dict[str, Any]) -> dict[str, Any]:
    """The site's `machines` output: the units' summaries summed (servers, racks, pools, powered
    on), `wave` as each unit has it, and how many unit stacks."""
    if total is None:
        return {**unit, "stacks": 1}
    summed = {key: int(total.get(key, 0)) + int(unit.get(key, 0)) for key in ("servers", "racks", "pools", "powered_on")}
    return {**total, **summed, "wave": max(int(total.get("wave", 0)), int(unit.get("wave", 0))),
            "stacks": int(total["stacks"]) + 1}

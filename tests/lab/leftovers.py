"""Independent checks that a lab left nothing on the host (the real tier's `down` oracle).

Deliberately not built on lab.* helpers: it reads /proc, /sys and the tools' own output.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

CGROUPS = Path("/sys/fs/cgroup")
REGISTRY = Path("/run/sovereign/lab")


def _cmdlines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return found


def _sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def lxc_monitors() -> list[str]:
    return [c for c in _cmdlines() if c.startswith("[lxc monitor]")]


def leftovers(lab: dict[str, Any]) -> list[str]:
    """Everything of the lab described by `lab` (its lab.json) still on the host."""
    lab_dir, octet, name = lab["lab_dir"], lab["octet"], lab["name"]
    nodes = [n["name"] for n in lab["nodes"]]
    found: list[str] = []
    # processes: LXC monitors and ssh ControlMasters / clients of this lab
    found += [
        f"process: {c}"
        for c in _cmdlines()
        if lab_dir in c and c.startswith(("[lxc monitor]", "ssh", "lxc-"))
    ]
    control_dir = lab.get("control_dir")  # lab.json records where the lab's masters live
    if control_dir:
        found += [f"process: {c}" for c in _cmdlines() if c.startswith("ssh") and f"{control_dir}/" in c]
        if Path(control_dir).exists():
            found.append(f"directory: {control_dir}")
    found += [f"process: {c}" for c in _cmdlines() if "chronyd" in c and f"/ntp-{octet}.conf" in c]
    found += [f"process: {c}" for c in _cmdlines() if "apt-cacher-ng" in c and f"/apt-cache-{octet}/pid" in c]
    # mounts (the overlay and anything under the lab dir)
    found += [f"mount: {line}" for line in Path("/proc/mounts").read_text().splitlines() if lab_dir in line]
    # links: the bridge and the nodes' host-side veths
    for line in _sh("ip", "-o", "link", "show").splitlines():
        dev = line.split(":")[1].strip().split("@")[0]
        if dev == lab["bridge"] or dev.startswith(f"sov{octet}n"):
            found.append(f"link: {dev}")
    # iptables: the lab's chain and any jump tagged with its name, in filter and nat
    for table in ("filter", "nat"):
        for rule in _sh("iptables", "-w", "-t", table, "-S").splitlines():
            if f"SOVLAB-{octet}" in rule.split() or f'"sovereign lab {name}"' in rule:
                found.append(f"iptables -t {table}: {rule}")
    # cgroups LXC made for the nodes, in every hierarchy
    for hier in [CGROUPS, *CGROUPS.iterdir()]:
        for node in nodes:
            for kind in ("payload", "monitor"):
                found += [f"cgroup: {p}" for p in hier.glob(f"lxc.{kind}.{node}") if p.is_dir()]
                found += [f"cgroup: {p}" for p in hier.glob(f"lxc.{kind}.{node}-[0-9]*") if p.is_dir()]
    # host-wide bookkeeping
    if (REGISTRY / "labs" / f"{name}.json").exists():
        found.append(f"registry claim for {name}")
    if Path(lab_dir).exists():
        found.append(f"directory: {lab_dir}")
    claims = list((REGISTRY / "labs").glob("*.json")) if (REGISTRY / "labs").is_dir() else []
    if not claims:  # the last lab is gone: ip_forward restored, LXC's shared helper cgroup removed
        if (REGISTRY / "ip_forward.orig").exists():
            found.append("ip_forward not restored (ip_forward.orig still present)")
        if not lxc_monitors():  # no container of anyone's runs, so nothing may still need it
            found += [f"cgroup: {p}" for p in CGROUPS.glob("*/lxc.pivot")]
    return found

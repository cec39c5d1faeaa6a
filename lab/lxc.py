"""Thin wrappers over the LXC tools, plus the cleanup LXC itself does not always finish."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from lab.errors import LabError
from lab.host import last_line, run

CGROUP_ROOT = Path("/sys/fs/cgroup")


def containers(lxc_path: Path) -> list[str]:
    """Containers defined under an LXC path (a directory with a config file)."""
    if not lxc_path.is_dir():
        return []
    return sorted(d.name for d in lxc_path.iterdir() if (d / "config").is_file())


def state(lxc_path: Path, name: str) -> str:
    """RUNNING, STOPPED, ... as lxc-info says; MISSING when the container is not defined."""
    if not (lxc_path / name / "config").is_file():
        return "MISSING"
    proc = run(["lxc-info", "-P", lxc_path, "-n", name, "-s", "-H"], check=False)
    return proc.stdout.strip() or "UNKNOWN"


def start(lxc_path: Path, name: str) -> None:
    log = lxc_path / name / "lxc.log"
    proc = run(["lxc-start", "-P", lxc_path, "-n", name, "-l", "INFO", "-o", log], check=False, timeout=60)
    if proc.returncode != 0:
        raise LabError(f"lxc-start {name} failed ({last_line(proc)}); see {log}")


def stop(lxc_path: Path, name: str, *, kill: bool, timeout: int = 10) -> None:
    """Power off (systemd shuts down cleanly, killed after `timeout`), or kill outright."""
    if state(lxc_path, name) in ("STOPPED", "MISSING"):
        return
    args = ["-k"] if kill else ["-t", str(timeout)]
    proc = run(["lxc-stop", "-P", lxc_path, "-n", name, *args], check=False, timeout=timeout + 30)
    if proc.returncode != 0 and state(lxc_path, name) not in ("STOPPED", "MISSING"):
        raise LabError(f"lxc-stop {name} failed ({last_line(proc)}); see {lxc_path / name / 'lxc.log'}")


def pids_matching(prefix: str, text: str) -> list[int]:
    """Processes whose command line starts with `prefix` and contains `text` (a path we own).

    The prefix keeps this to the process kinds we mean (`[lxc monitor]`, `ssh`): a shell whose
    command line merely mentions the lab directory must survive `down`.
    """
    found = []
    head, needle = prefix.encode(), text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        if cmdline.startswith(head) and needle in cmdline:
            found.append(int(entry.name))
    return found


def kill_matching(prefix: str, text: str) -> list[int]:
    """SIGKILL what is left of our own processes (an LXC monitor whose container died badly)."""
    pids = pids_matching(prefix, text)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


MONITOR = "[lxc monitor]"


def wait_monitors_gone(lxc_path: Path, timeout: float = 5.0) -> list[int]:
    """Let LXC monitors finish their cleanup (cgroups, veth) after a stop; kill any that hang.

    lxc-stop returns once the container is STOPPED, a moment before its monitor has removed
    the container's cgroups and exited; checking for leftovers earlier would find them busy.
    """
    deadline = time.monotonic() + timeout
    while pids_matching(MONITOR, f"{lxc_path} ") and time.monotonic() < deadline:
        time.sleep(0.1)
    return kill_matching(MONITOR, f"{lxc_path} ")


def cgroup_leftovers(names: Iterable[str], *, pivot: bool = False, root: Path = CGROUP_ROOT) -> list[Path]:
    """LXC's cgroups for these containers in every hierarchy (v1 controllers and v2)."""
    hierarchies = (
        [root, *(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("lxc."))]
        if root.is_dir()
        else []
    )
    found: list[Path] = []
    for hier in hierarchies:
        for name in names:
            for prefix in ("lxc.payload.", "lxc.monitor."):
                # LXC appends -1, -2 ... when the plain name is taken
                for cg in hier.glob(f"{prefix}{name}*"):
                    suffix = cg.name[len(prefix + name) :]
                    if suffix == "" or (suffix[:1] == "-" and suffix[1:].isdigit()):
                        found.append(cg)
        if pivot and (hier / "lxc.pivot").is_dir():
            found.append(hier / "lxc.pivot")
    return found


def _has_tasks(tree: Path) -> bool:
    return any(
        (cg / "cgroup.procs").read_text().strip()
        for cg in [tree, *tree.rglob("*")]
        if (cg / "cgroup.procs").is_file()
    )


def remove_cgroups(paths: Iterable[Path]) -> list[Path]:
    """rmdir each leftover cgroup tree depth-first (cgroupfs has no rm -r); return what stayed.

    A tree with a task anywhere is skipped and reported: it belongs to a live container (a
    default-lab `node1` and someone else's `node1` share a cgroup name prefix), and removing
    its empty sub-cgroups would break that container.
    """
    stuck = []
    for top in paths:
        try:
            if _has_tasks(top):
                stuck.append(top)
                continue
            subdirs = sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            )
            for cg in [*subdirs, top]:
                cg.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            stuck.append(top)
    return stuck

"""Host side: run commands with one-line errors, check root, install the lab's host packages."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lab.errors import LabEnvironmentError, LabError

Progress = Callable[[str], None]

# Binary -> Debian package that provides it; CI starts from a bare Debian 12 machine.
HOST_TOOLS: Mapping[str, str] = {
    "lxc-start": "lxc",
    "debootstrap": "debootstrap",
    "iptables": "iptables",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
}
# Root's PATH may lack sbin under `sudo -E` or CI runners; lxc and iptables live there.
_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
)
_ENV = {**os.environ, "PATH": _PATH, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}


def run(
    cmd: Sequence[str | Path],
    *,
    what: str | None = None,
    check: bool = True,
    timeout: float | None = None,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, and turn a failure into a one-line LabError."""
    argv = [str(c) for c in cmd]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env={**_ENV, **(env or {})},
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabEnvironmentError(f"{argv[0]} not found: install it or run `sovereign lab nodes up`") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what or argv[0]} did not finish within {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{what or ' '.join(argv[:3])} failed (exit {proc.returncode}): {last_line(proc)}")
    return proc


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The most telling line of a failed command: its last stderr line, else stdout's."""
    for stream in (proc.stderr, proc.stdout):
        lines = [ln.strip() for ln in (stream or "").splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    return "no output"


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabEnvironmentError(
            "the lab needs root (it creates bridges, iptables rules and containers): run it with sudo"
        )


def which(tool: str) -> str | None:
    return shutil.which(tool, path=_PATH)


def missing_packages(tools: Mapping[str, str] = HOST_TOOLS) -> list[str]:
    """Packages to install so that every tool the lab calls is on PATH (sorted, unique)."""
    return sorted({pkg for tool, pkg in tools.items() if which(tool) is None})


def _apt_lists_present() -> bool:
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any(lists.glob("*_Packages*"))


def ensure_host_packages(progress: Progress | None = None) -> list[str]:
    """Install the lab's host packages when a tool is missing; return what was installed."""
    packages = missing_packages()
    if not packages:
        return []
    require_root()
    if which("apt-get") is None:
        raise LabEnvironmentError(f"missing {', '.join(packages)} and no apt-get to install them")
    if progress:
        progress(f"installing host packages: {' '.join(packages)}")
    # Other engineers' tools may hold the dpkg lock for a while: wait rather than fail.
    install = [
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=600",
        "install",
        "-y",
        "--no-install-recommends",
        *packages,
    ]
    update = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"]
    if not _apt_lists_present():
        run(update, what="apt-get update", timeout=900)
    proc = run(install, check=False, timeout=1800)
    if proc.returncode != 0:  # stale lists are the usual cause: refresh once, then give up
        run(update, what="apt-get update", timeout=900)
        proc = run(install, check=False, timeout=1800)
    if proc.returncode != 0 or missing_packages():
        raise LabEnvironmentError(f"could not install {' '.join(packages)}: {last_line(proc)}")
    return packages


def remove_tree(path: Path) -> None:
    """rm -rf that unmounts what is mounted inside first and never crosses into another fs.

    An interrupted debootstrap can leave /proc mounted in its target; a crashed container can
    leave its rootfs mounted: deleting through either would be a disaster.
    """
    mounts = [m for m in mountpoints() if m == path or path in m.parents]
    for mnt in sorted(mounts, key=lambda p: len(p.parts), reverse=True):
        run(["umount", "-l", mnt], check=False)
    if path.exists():
        run(["rm", "-rf", "--one-file-system", path], what=f"removing {path}")


def mountpoints() -> list[Path]:
    """Mount points seen by this process (mountinfo field 5, octal escapes decoded)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split()[4]
        points.append(Path(field.encode().decode("unicode_escape")))
    return points

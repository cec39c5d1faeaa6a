"""The cached Debian 12 base every node overlays: built once, shared read-only by all labs.

Built with debootstrap into a temporary directory and renamed into place, so an interrupted
build is never used. Per-node identity (hostname, machine-id, host keys, authorized key) is
NOT here: it goes into each node's overlay delta, so every node and every lab differ.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import time
from pathlib import Path

from lab.host import Progress, remove_tree, run
from lab.mirror import Mirror
from lab.paths import cache_root

SUITE = "bookworm"
# What a node needs to boot and be configured over SSH by Ansible.
INCLUDE = ("systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "iproute2", "procps", "sudo")
# Downloaded into /var/cache/apt/archives but NOT installed: the roles install them, and each
# node then reads the .debs from the shared lower layer instead of fetching them again.
PRESEED = (
    "chrony",
    "auditd",
    "containerd",
    "rdma-core",
    "ibverbs-utils",
    "perftest",
    "prometheus-node-exporter",
    "kmod",
    "pciutils",
    "ca-certificates",
    "curl",
    "gnupg",
)
# Bump when the recipe below changes in a way the lists above do not show.
RECIPE_VERSION = 2
STAMP = "etc/sovereign-lab-rootfs.json"

# sshd: host keys are per node (written into the delta); generate any missing type at start.
_SSH_DROPIN = (
    "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
)
# Containers lack CAP_SYS_TIME: chronyd -x keeps time service semantics without touching the
# clock the host shares with every container.
_CHRONY_DROPIN = (
    "[Unit]\nConditionCapability=\n[Service]\nExecStart=\nExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x\n"
)


def recipe_id() -> str:
    text = json.dumps([RECIPE_VERSION, SUITE, INCLUDE, PRESEED, _SSH_DROPIN, _CHRONY_DROPIN])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rootfs_path(cache: Path | None = None) -> Path:
    return (cache or cache_root()) / "lab" / f"rootfs-{SUITE}"


def is_current(rootfs: Path) -> bool:
    try:
        return json.loads((rootfs / STAMP).read_text()).get("recipe") == recipe_id()
    except (OSError, ValueError):
        return False


def ensure_rootfs(
    mirror: Mirror, *, cache: Path | None = None, in_use: bool = False, progress: Progress | None = None
) -> Path:
    """The base rootfs, built when missing or stale (stale but `in_use` by a lab: kept)."""
    dest = rootfs_path(cache)
    if dest.is_dir() and (is_current(dest) or in_use):
        if not is_current(dest) and progress:
            progress(f"rootfs recipe changed, but labs still use {dest}: keeping it until they are down")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time; a second `up` waits and then finds the finished base.
    with open(dest.parent / f".{dest.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dest.is_dir() and is_current(dest):
            return dest
        for stale in dest.parent.glob(f".{dest.name}.*"):  # debris of interrupted builds
            if stale.is_dir():
                remove_tree(stale)
        tmp = dest.parent / f".{dest.name}.build"
        started = time.monotonic()
        if progress:
            progress(f"building the node rootfs in {dest} (debootstrap, a few minutes, once)")
        _build(tmp, mirror, progress)
        if dest.exists():
            old = dest.parent / f".{dest.name}.old"
            dest.rename(old)
            tmp.rename(dest)
            remove_tree(old)
        else:
            tmp.rename(dest)
        if progress:
            progress(f"rootfs ready in {time.monotonic() - started:.0f} s")
    return dest


def _build(root: Path, mirror: Mirror, progress: Progress | None) -> None:
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(INCLUDE)}",
            SUITE,
            root,
            mirror.archive_uri,
        ],
        what="debootstrap",
        timeout=3600,
    )
    # Same sources as the host (deb822), so nodes use exactly the mirror NAT lets them reach.
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    sources = root / "etc/apt/sources.list.d"
    for src in Path("/etc/apt/sources.list.d").glob("*.sources"):
        shutil.copy(src, sources / src.name)
    if not any(sources.glob("*.sources")):
        (sources / "debian.sources").write_text(
            f"Types: deb\nURIs: {mirror.archive_uri}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    if progress:
        progress("pre-seeding the apt archive cache: " + " ".join(PRESEED))
    # Lists stay in the image: a node can install before its first `apt update`.
    run(["chroot", root, "apt-get", "update"], what="apt-get update in the rootfs", timeout=900)
    # debootstrap leaves the .debs of what it installed: drop them, keep only the pre-seeds.
    run(["chroot", root, "apt-get", "clean"], what="apt-get clean in the rootfs")
    run(
        ["chroot", root, "apt-get", "install", "-y", "--download-only", *PRESEED],
        what="pre-seeding the apt cache",
        timeout=1800,
    )
    _make_generic(root)
    (root / STAMP).write_text(
        json.dumps(
            {
                "recipe": recipe_id(),
                "suite": SUITE,
                "mirror": mirror.archive_uri,
                "include": INCLUDE,
                "preseed": PRESEED,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
    )


def _make_generic(root: Path) -> None:
    """Strip per-machine identity and add the container drop-ins."""
    (root / "etc/resolv.conf").write_text("")  # no DNS: a dead nameserver costs 10 s per lookup
    (root / "etc/machine-id").write_text("")  # each node gets its own in its delta
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for unit, text in (("ssh", _SSH_DROPIN), ("chrony", _CHRONY_DROPIN)):
        dropin = root / f"etc/systemd/system/{unit}.service.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "10-sovereign-lab.conf").write_text(text)

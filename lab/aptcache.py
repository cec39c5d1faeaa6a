"""The lab's package mirror: an apt-cacher-ng on each lab's bridge address, serving the nodes.

A real site's nodes install from the partnership's in-country package mirror; the lab's stand in
for it, so a package crosses the uplink once per lab however many nodes install it (8 nodes
installing at once through NAT timed out against deb.debian.org). Nodes reach it as
`http://<gateway>:3142/<mirror host>/<path>` (apt-cacher-ng's URL-prefix form), set by
`configure --lab` as baseline's apt mirrors. Like the lab's chronyd, Debian's apt-cacher-ng is
unpacked into the cache with the libraries the host lacks, never installed: installing it would
start a host-wide daemon on every address.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from lab import paths
from lab.errors import LabEnvironmentError
from lab.host import run
from lab.processes import pid_from_file, terminate

PACKAGE = "apt-cacher-ng"
# Its libraries that a minimal Debian 12 host may lack (the rest come with any host: libc, libssl, ...).
LIBRARIES = ("libc-ares2", "libevent-2.1-7", "libevent-pthreads-2.1-7", "libfuse2", "libwrap0")
PORT = 3142


def _root(cache: Path | None) -> Path:
    return (cache or paths.cache_root()) / "lab" / "apt-cacher-ng"


def binary(cache: Path | None = None) -> Path:
    """apt-cacher-ng unpacked (with LIBRARIES) into the cache on first use."""
    root = _root(cache)
    daemon = root / "usr" / "sbin" / "apt-cacher-ng"
    if daemon.exists():
        return daemon
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".apt-cacher-ng-", dir=root.parent) as tmp:
        download = ["sh", "-c", f"cd '{tmp}' && apt-get download {PACKAGE} {' '.join(LIBRARIES)}"]
        if run(download, what="apt-get download apt-cacher-ng", check=False, timeout=300).returncode != 0:
            run(["apt-get", "update"], what="apt-get update", timeout=600)  # a fresh machine's lists
            run(download, what="apt-get download apt-cacher-ng", timeout=300)
        staging = Path(tmp) / "root"
        for deb in sorted(Path(tmp).glob("*.deb")):
            run(["dpkg-deb", "-x", deb, staging], what=f"unpack {deb.name}")
        if not (staging / "usr" / "sbin" / "apt-cacher-ng").exists():
            raise LabEnvironmentError("apt-get download apt-cacher-ng produced no daemon")
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)  # same filesystem: the tree appears whole or not at all
    return daemon


def url(gateway: str) -> str:
    return f"http://{gateway}:{PORT}"


def _dir(octet: int) -> Path:
    return paths.RUN_ROOT / f"apt-cache-{octet}"


def start(octet: int, gateway: str, store: Path, cache: Path | None = None) -> None:
    """Serve on gateway:PORT, keeping packages in `store` (on disk, in the lab's directory: /run is
    memory); pid, socket and logs under /run, like the lab's other services."""
    base = _dir(octet)
    pid = base / "pid"
    if _pid(pid):
        return
    daemon = binary(cache)
    root = _root(cache)
    (base / "log").mkdir(parents=True, exist_ok=True)
    store.mkdir(parents=True, exist_ok=True)
    libs = [str(root / "usr/lib/x86_64-linux-gnu"), str(root / "usr/lib/aarch64-linux-gnu"), str(root / "lib/x86_64-linux-gnu")]
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(libs)}
    settings: dict[str, str | Path] = {
        "ForeGround": "0",
        "Port": str(PORT),
        "BindAddress": gateway,
        "CacheDir": store,
        "LogDir": base / "log",
        "PidFile": pid,
        "SocketPath": base / "socket",
        "SupportDir": root / "usr/lib/apt-cacher-ng",
        "ExThreshold": "0",  # no expiry runs: the cache lives as long as the lab
    }
    command: list[str | Path] = [daemon, "-c", root / "etc/apt-cacher-ng", *(f"{k}={v}" for k, v in settings.items())]
    run(command, what="start the lab's apt-cacher-ng", env=env)
    for _ in range(50):
        if _pid(pid):
            return
        time.sleep(0.1)
    raise LabEnvironmentError(f"the lab's apt-cacher-ng did not start (logs in {base / 'log'})")


def stop(octet: int) -> None:
    base = _dir(octet)
    number = _pid(base / "pid")
    if number:
        terminate(number, "apt-cacher-ng")
    shutil.rmtree(base, ignore_errors=True)


def _pid(pid_file: Path) -> int | None:
    return pid_from_file(pid_file, "apt-cacher-ng")

"""The lab's time source: a chronyd on each lab's bridge address, serving the nodes.

A real site's nodes sync to in-site NTP servers; the lab's stand in for them, so time_sync is
configured and checked for real (the nodes report synchronised), while the host clock is never
touched (`chronyd -x`). chronyd is unpacked from Debian's package into the cache rather than
installed, so the host gets no chrony service of its own.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from lab import paths
from lab.errors import LabEnvironmentError
from lab.host import run
from lab.processes import pid_from_file, terminate
from stacks.design import atomic

PACKAGE = "chrony"


def chronyd(cache: Path | None = None) -> Path:
    """Path to a chronyd binary, unpacked from the Debian package into the cache on first use."""
    root = (cache or paths.cache_root()) / "lab" / "chrony"
    binary = root / "usr" / "sbin" / "chronyd"
    if binary.exists():
        return binary
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".chrony-", dir=root.parent) as tmp:
        download = ["sh", "-c", f"cd '{tmp}' && apt-get download {PACKAGE}"]
        if run(download, what="apt-get download chrony", check=False, timeout=300).returncode != 0:
            run(["apt-get", "update"], what="apt-get update", timeout=600)  # a fresh machine's lists
            run(download, what="apt-get download chrony", timeout=300)
        debs = sorted(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise LabEnvironmentError("apt-get download chrony produced no package")
        staging = Path(tmp) / "root"
        run(["dpkg-deb", "-x", debs[0], staging], what="unpack chrony")
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)  # same filesystem: the binary appears whole or not at all
    return binary


def _files(octet: int) -> tuple[Path, Path]:
    base = paths.RUN_ROOT / f"ntp-{octet}"
    return base.with_suffix(".conf"), base.with_suffix(".pid")


def start(octet: int, gateway: str, subnet: str, cache: Path | None = None) -> None:
    conf, pid = _files(octet)
    if _pid(pid):
        return
    conf.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_file(
        conf,
        f"bindaddress {gateway}\nport 123\ncmdport 0\nlocal stratum 8\nallow {subnet}\n"
        f"pidfile {pid}\ndriftfile {conf.with_suffix('.drift')}\n"
    )
    run([chronyd(cache), "-x", "-u", "root", "-f", conf], what="start the lab's chronyd")
    for _ in range(50):
        if _pid(pid):
            return
        time.sleep(0.1)
    raise LabEnvironmentError(f"the lab's chronyd did not start (config {conf})")


def stop(octet: int) -> None:
    conf, pid = _files(octet)
    number = _pid(pid)
    if number:
        terminate(number, "chronyd")
    for path in (conf, pid, conf.with_suffix(".drift")):
        path.unlink(missing_ok=True)


def _pid(pid_file: Path) -> int | None:
    return pid_from_file(pid_file, "chronyd")

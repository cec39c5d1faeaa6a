"""Long-running lab daemons: started detached, found again, stopped.

Daemons the lab starts itself (etcd, the control plane, kwok: `Daemon`) run in their own session
(so `sovereign` can exit and the lab keeps running), log to `<lab>/kube/log/<name>.log`, and are
recorded in `<lab>/kube/run/<name>.json` with their pid and the kernel's start time of that pid,
so a recycled pid is never mistaken for the daemon and `down` never signals a stranger. Daemons
that fork and write their own pid file (chronyd, apt-cacher-ng) are found with `pid_from_file`
and stopped with `terminate`, which check the command line for the same reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stacks.design import atomic


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may contain spaces, so split after ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass(frozen=True)
class Daemon:
    name: str
    run_dir: Path
    log_dir: Path

    @property
    def record(self) -> Path:
        return self.run_dir / f"{self.name}.json"

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The daemon's pid if it is alive and is still the process we started."""
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        pid = int(data["pid"])
        if _start_ticks(pid) != data["start"]:
            return None
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return None if state == "Z" else pid

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        running = self.pid()
        if running:
            return running
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, **(env or {})}, close_fds=True,
            )
        ticks = _start_ticks(proc.pid)
        atomic.write_file(self.record, json.dumps({"pid": proc.pid, "start": ticks, "argv": argv}))
        # Popen would warn about a child it never waited for; the daemon outlives this process.
        proc.returncode = 0
        return proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        try:  # a daemon that already died is a zombie of ours when we started it: collect it
            _reap(int(json.loads(self.record.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            pass
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        self.record.unlink(missing_ok=True)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    """True once the process is gone: reaped here when it is our child (tests, the demo start
    daemons in-process), else left to its parent as soon as it is a zombie."""
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return True
        if fields[0] == "Z" and int(fields[1]) != os.getpid():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status when the daemon was started by this very process (tests, demo)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def pid_from_file(pid_file: Path, command: str) -> int | None:
    """The pid in a daemon's own pid file, if that process is alive and is `command`."""
    try:
        number = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return number if is_running(number, command) else None


def is_running(number: int, command: str) -> bool:
    try:
        os.kill(number, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a recycled pid is not our daemon
        return command.encode() in Path(f"/proc/{number}/cmdline").read_bytes()
    except OSError:
        return False


def terminate(number: int, command: str, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    os.kill(number, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(number, command):
            return
        time.sleep(0.1)
    os.kill(number, signal.SIGKILL)

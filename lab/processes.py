"""Long-running lab daemons (etcd, the control plane, kwok): started detached, found again, stopped.

Each daemon runs in its own session (so `sovereign` can exit and the lab keeps running), logs to
`<lab>/kube/log/<name>.log`, and is recorded in `<lab>/kube/run/<name>.json` with its pid and the
kernel's start time of that pid, so a recycled pid is never mistaken for the daemon, and `down`
never signals a stranger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


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
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": proc.pid, "start": ticks, "argv": argv}))
        tmp.rename(self.record)
        # Popen would warn about a child it never waited for; the daemon outlives this process.
        proc.returncode = 0
        return proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid() is not None and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if self.pid() is not None:
                _signal_group(pid, signal.SIGKILL)
                while self.pid() is not None and time.monotonic() < deadline + 5:
                    _reap(pid)
                    time.sleep(0.1)
            _reap(pid)
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


def _reap(pid: int) -> None:
    """Collect the exit status when the daemon was started by this very process (tests, demo)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass

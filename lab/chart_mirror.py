"""The lab's in-country chart mirror: a Helm repository on loopback, seeded from a chart folder.

    mirror = ChartMirror(lab_dir, lab_name)
    mirror.up(source)        # package the charts, (re)start the HTTPS server; idempotent
    mirror.url, mirror.ca    # what the stack's `sovereignty.chart_mirror` would name on a real site
    mirror.down()

Like the control plane it runs as the calling user, with a certificate from the lab CA.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from lab.chart_repo import build_repository
from lab.errors import LabError
from lab.pki import LabCA
from lab.processes import Daemon
from stacks.design.atomic import write_file

NAME = "chart-mirror"


class ChartMirror:
    def __init__(self, lab_dir: Path, lab: str):
        self.lab = lab
        self.dir = lab_dir / "charts"
        self.repo = self.dir / "repo"
        self.pki_dir = lab_dir / "kube" / "pki"  # one lab CA for every lab service
        self._record = self.dir / "mirror.json"

    @property
    def daemon(self) -> Daemon:
        return Daemon(NAME, self.dir / "run", self.dir / "log")

    def exists(self) -> bool:
        return self._record.is_file()

    def info(self) -> dict[str, Any]:
        return json.loads(self._record.read_text())

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.info()['port']}"

    @property
    def ca(self) -> Path:
        return self.pki_dir / "ca.crt"

    def up(self, source: Path, timeout: float = 20.0) -> dict[str, Any]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        charts = build_repository(source, self.repo)
        if not self.exists():
            ca = LabCA(self.pki_dir, self.lab)
            pair = ca.issue(NAME, "chart-mirror", client=False, server_ips=("127.0.0.1",), server_dns=("localhost",))
            port = _free_port()
            record = {"port": port, "cert": str(pair.cert), "key": str(pair.key)}
            write_file(self._record, json.dumps(record, indent=2))
        info = self.info()
        info.update(source=str(source), charts={c.name: c.version for c in charts})
        write_file(self._record, json.dumps(info, indent=2))
        if self.daemon.pid() is None:
            self.daemon.start([sys.executable, "-m", "lab.chart_server", "--root", str(self.repo),
                               "--port", str(info["port"]), "--cert", info["cert"], "--key", info["key"]])
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.daemon.pid() is None:
                raise LabError(f"the chart mirror exited while starting:\n{self.daemon.log_tail(6)}")
            if time.monotonic() > deadline:
                raise LabError(f"the chart mirror did not answer within {timeout:.0f} s; log: {self.daemon.log}")
            time.sleep(0.2)
        return self.info()

    def healthy(self) -> bool:
        if not self.exists():
            return False
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(f"{self.url}/index.yaml", context=context, timeout=3) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def status(self) -> dict[str, Any] | None:
        if not self.exists():
            return None
        info = self.info()
        return {"url": self.url, "ca": str(self.ca), "charts": info.get("charts", {}), "source": info.get("source"),
                "running": self.daemon.pid() is not None, "healthy": self.healthy()}

    def down(self) -> None:
        self.daemon.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

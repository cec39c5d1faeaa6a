"""The lab's artifact server: plain HTTP on loopback serving `<lab>/artifacts/`, where the install
media and the per-node seed ISOs live. BMCs download what `InsertMedia` names from here, as a
site's BMCs download from its artifact server; the media are checksummed, so plain HTTP on the lab's
own loopback is enough here (a site serves them over its OOB network).
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from pathlib import Path

from lab.errors import LabError
from lab.processes import Daemon
from stacks.design import atomic


class ArtifactServer:
    def __init__(self, lab_dir: Path, host: str = "127.0.0.1"):
        self.dir = lab_dir / "artifacts"
        self.host = host
        self.daemon = Daemon("artifact-server", lab_dir / "bmc" / "run", lab_dir / "bmc" / "log")
        self._record = lab_dir / "bmc" / "artifacts.json"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{json.loads(self._record.read_text())['port']}"

    def up(self, timeout: float = 15.0) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self._record.is_file():
            with socket.socket() as s:
                s.bind((self.host, 0))
                port = s.getsockname()[1]
            self._record.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_file(self._record, json.dumps({"port": port}))
        if self.daemon.pid() is None:
            port = json.loads(self._record.read_text())["port"]
            self.daemon.start([sys.executable, "-m", "http.server", "--bind", self.host, "--directory",
                               str(self.dir), str(port)])
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(self.url + "/", timeout=2):
                        break
                except OSError:
                    if self.daemon.pid() is None or time.monotonic() > deadline:
                        raise LabError(f"the artifact server did not start:\n{self.daemon.log_tail()}") from None
                    time.sleep(0.1)
        return self.url

    def down(self) -> None:
        self.daemon.stop()
        self._record.unlink(missing_ok=True)

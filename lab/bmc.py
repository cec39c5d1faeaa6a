"""The lab's BMCs: sushy-tools' Redfish emulator (fake driver), one system per simulated server.

    bmcs = BmcLab(lab_dir)
    bmcs.up(["ke-nbo-1-gpu-00001", ...])   # idempotent for the same servers
    bmcs.endpoint()                       # URL, CA, user, password file: what the stack config needs
    bmcs.down()

The emulator is the real sushy-tools process, unpatched: stateful power (changes land 1–11 s late,
at random), boot override, virtual media that really downloads the image (so an artifact server
must serve it: lab.artifacts), state kept in sqlite under `<lab>/bmc/state` (a fresh directory per
lab; it survives an emulator restart, as a BMC's state survives a BMC reboot). It listens on
loopback with TLS 1.2 from a CA of the lab's own (`<lab>/bmc/pki`) and HTTP basic auth checked
against a bcrypt htpasswd; the password is random per lab and kept 0600 in the lab directory.

System ids are UUIDs derived from the server's name, so the stack can compute them from the design
without asking the emulator, as a real site derives BMC addresses from its OOB pool.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from lab.artifacts import ArtifactServer
from lab.errors import LabEnvironmentError, LabError
from lab.pki import LabCA
from lab.processes import Daemon
from stacks.design import atomic
from stacks.design.bmc_plan import bmc_servers, system_uuid
from stacks.design.sizing import SiteDesign

BMC_USER = "sovereign-lab"
SYSTEM_PATH = "/redfish/v1/Systems/{system_uuid}"
_REQUEST = re.compile(r"(?:GET|POST|PATCH|PUT|DELETE) /redfish/")
# The emulator has no sessions: it checks the bcrypt hash on every request. At cost 6 that was
# about a third of its CPU per request (11.5 ms against 7-9 at cost 4, measured on this machine
# under load); 4 is bcrypt's least, and the password is random per lab.
_BCRYPT_ROUNDS = 4


@dataclass(frozen=True)
class BmcEndpoint:
    """What a stack needs to reach the lab's BMCs."""

    url: str  # https://127.0.0.1:<port>
    ca: Path  # the CA that signed the emulator's certificate
    username: str
    password_file: Path

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "ca": str(self.ca), "username": self.username, "password_file": str(self.password_file)}


class BmcLab:
    def __init__(self, lab_dir: Path, host: str = "127.0.0.1"):
        self.dir = lab_dir / "bmc"
        self.host = host
        self.daemon = Daemon("sushy-emulator", self.dir / "run", self.dir / "log")

    @property
    def _record(self) -> Path:
        return self.dir / "bmc.json"

    @property
    def media_dir(self) -> Path:
        """Where the emulator keeps the images it downloaded for InsertMedia."""
        return self.dir / "media"

    def exists(self) -> bool:
        return self._record.is_file()

    def requests_served(self) -> int:
        """Redfish requests the emulator has logged (it wraps some lines in colour codes)."""
        return len(_REQUEST.findall(self.daemon.log.read_text(errors="replace")))

    def record(self) -> dict[str, Any]:
        return json.loads(self._record.read_text())

    def endpoint(self) -> BmcEndpoint:
        data = self.record()
        return BmcEndpoint(f"https://{self.host}:{data['port']}", self.dir / "pki" / "ca.crt", BMC_USER,
                           self.dir / "password")

    def up(self, servers: list[str], timeout: float = 30.0) -> BmcEndpoint:
        """Start (or find running) the emulator with one system per server."""
        if self.exists() and self.record()["servers"] != servers:
            raise LabError(
                f"{self._record}: the lab's BMCs emulate {len(self.record()['servers'])} other servers; "
                "take the lab down first"
            )
        if not self.exists():
            self._prepare(servers)
        self.start(timeout)
        return self.endpoint()

    def start(self, timeout: float = 30.0) -> None:
        """Start the emulator on its recorded port (again, after `stop`: its sqlite state survives)."""
        if self.daemon.pid() is not None:
            return
        config = self.dir / "emulator.conf"
        # sushy-tools downloads every inserted image into a new temporary directory and never
        # removes it (earlier runs left 3,367 of them in /tmp); in the lab's directory, `down` does.
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.daemon.start([*_emulator_argv(), "--config", str(config)],
                          env={"SUSHY_EMULATOR_CONFIG": str(config), "TMPDIR": str(self.media_dir)})
        self._wait_ready(timeout)

    def stop(self) -> None:
        self.daemon.stop()

    def down(self) -> None:
        self.daemon.stop()
        self._record.unlink(missing_ok=True)

    def status(self) -> dict[str, Any] | None:
        if not self.exists():
            return None
        record = self.record()
        return {"endpoint": self.endpoint().to_json(), "servers": len(record["servers"]),
                "running": self.daemon.pid() is not None}

    def set_bmc_password(self, password: str) -> None:
        """Change the password the BMCs accept (a credential rotated on the BMC side); the emulator
        reads its htpasswd on every request. The stack's copy (`password`) is left as it was."""
        digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_BCRYPT_ROUNDS)).decode()
        _write_private(self.dir / "htpasswd", f"{BMC_USER}:{digest}\n")

    def _prepare(self, servers: list[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = self.dir / "state"
        state.mkdir(exist_ok=True)
        ca = LabCA(self.dir / "pki", "bmc")
        pair = ca.issue("emulator", "sovereign lab BMC", server_ips=(self.host,), server_dns=("localhost",), client=False)
        password = secrets.token_urlsafe(18)
        _write_private(self.dir / "password", password + "\n")
        digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_BCRYPT_ROUNDS)).decode()
        _write_private(self.dir / "htpasswd", f"{BMC_USER}:{digest}\n")
        port = _free_port(self.host)
        systems = [{"uuid": system_uuid(name), "name": name, "power_state": "Off", "external_notifier": False,
                    "nics": [{"mac": _mac(i), "ip": "192.0.2.1"}]} for i, name in enumerate(servers)]
        config = {
            "SUSHY_EMULATOR_LISTEN_IP": self.host,
            "SUSHY_EMULATOR_LISTEN_PORT": port,
            "SUSHY_EMULATOR_SSL_CERT": str(pair.cert),
            "SUSHY_EMULATOR_SSL_KEY": str(pair.key),
            "SUSHY_EMULATOR_AUTH_FILE": str(self.dir / "htpasswd"),
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_FAKE_SYSTEMS": systems,
            "SUSHY_EMULATOR_STATE_DIR": str(state),
            # Verify the artifact server's certificate when the image URL is https (the lab serves http).
            "SUSHY_EMULATOR_VMEDIA_VERIFY_SSL": True,
        }
        # The emulator reads a Python file of assignments; JSON literals are Python literals here
        # except true/false, which repr() writes correctly.
        text = "".join(f"{key} = {value!r}\n" for key, value in config.items())
        _write_private(self.dir / "emulator.conf", text)
        atomic.write_file(self._record, json.dumps({"port": port, "servers": servers}, indent=1))

    def _wait_ready(self, timeout: float) -> None:
        """The service root answers without credentials once the emulator listens."""
        endpoint = self.endpoint()
        context = ssl.create_default_context(cafile=str(endpoint.ca))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint.url}/redfish/v1/", context=context, timeout=2) as rsp:
                    if rsp.status == 200:
                        return
            except OSError:
                pass
            if self.daemon.pid() is None or time.monotonic() > deadline:
                raise LabError(f"the BMC emulator did not start; its log ({self.daemon.log}):\n{self.daemon.log_tail()}")
            time.sleep(0.2)


def _emulator_argv() -> list[str]:
    import sys

    return [sys.executable, str(Path(__file__).with_name("bmc_emulator.py"))]


def _mac(index: int) -> str:
    return "52:54:00:" + ":".join(f"{b:02x}" for b in index.to_bytes(3, "big"))


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _write_private(path: Path, text: str) -> None:
    atomic.write_file(path, text, mode=0o600)


def site_bmcs_up(lab_dir: Path, site: SiteDesign, count: int, *, deadline_s: float = 120.0, wave: int = 8) -> Path:
    """The lab's BMCs for the first `count` GPU servers of a site design, its artifact server and
    install media, and the settings file `sovereign up --lab` hands the stack (SOVEREIGN_BMC_FILE)."""
    servers = bmc_servers(site, "https://127.0.0.1", SYSTEM_PATH, count)
    bmcs = BmcLab(lab_dir)
    endpoint = bmcs.up([s.name for s in servers])
    artifacts = ArtifactServer(lab_dir)
    url = artifacts.up()
    image = install_image(artifacts.dir)
    settings = {
        "site": site.site, "url": endpoint.url, "system": SYSTEM_PATH, "username": endpoint.username,
        "ca_file": str(endpoint.ca), "password_file": str(endpoint.password_file), "servers": count,
        "install_image": {"url": f"{url}/{image.name}", "sha256": _sha256(image)},
        "deadline_s": deadline_s, "wave": wave,
        "artifacts_dir": str(artifacts.dir), "artifacts_url": url,
        "admin_keys": [_admin_key(bmcs.dir)],
    }
    path = bmcs.dir / "stack.json"
    atomic.write_file(path, json.dumps(settings, indent=1))
    return path


def site_bmcs_down(lab_dir: Path) -> None:
    """Stop both daemons and remove their state: the next lab starts fresh."""
    ArtifactServer(lab_dir).down()
    BmcLab(lab_dir).down()
    shutil.rmtree(lab_dir / "bmc", ignore_errors=True)
    shutil.rmtree(lab_dir / "artifacts", ignore_errors=True)


def install_image(directory: Path) -> Path:
    """The lab's install media: a small ISO 9660 image made with xorriso. It stands in for the
    distribution's installer (no installer is downloaded in the lab; the BMC only needs media to
    download, mount and boot from)."""
    image = directory / "installer.iso"
    if image.is_file():
        return image
    xorriso = shutil.which("xorriso")
    if xorriso is None:
        raise LabEnvironmentError("xorriso is missing: install the Debian package xorriso (`make bmc-tools`)")
    source = directory / ".installer"
    source.mkdir(parents=True, exist_ok=True)
    (source / "README.txt").write_text("sovereign lab install media (stand-in for the distribution installer)\n")
    tmp = directory / ".installer.iso"
    subprocess.run([xorriso, "-as", "mkisofs", "-quiet", "-V", "SOVEREIGN_LAB", "-J", "-R", "-o", str(tmp), str(source)],
                   check=True, capture_output=True)
    tmp.rename(image)
    return image


def _admin_key(directory: Path) -> str:
    """The lab admins' SSH key (the seeds install its public half on every node)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = directory / "admin_ed25519"
    if not private.is_file():
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
        _write_private(private, pem.decode())
    loaded = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    public = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} sovereign-lab-admin"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

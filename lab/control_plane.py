"""The lab's Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok, the pinned binaries built by `sovereign tools install`, on 127.0.0.1 only.

Everything is TLS with the lab's own CA (lab.pki): etcd takes client certificates only, the API
server authenticates every client by certificate and authorises with Node and RBAC, and the
ValidatingAdmissionPolicy admission (on by default in this version) is there for the stack's
policies. Ports are picked free at first `up` and recorded in `<lab>/kube/kube.json`; a later
`up` reuses them, so kubeconfigs stay valid while the lab lives.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabEnvironmentError, LabError
from lab.kubeapi import Credentials, KubeApi
from lab.pki import LabCA, Pair
from lab.processes import Daemon
from stacks.design import atomic
from toolchain import pins

SERVICE_CIDR = "10.96.0.0/16"  # virtual service addresses; never routed anywhere in the lab
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


def _free_ports(count: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class ControlPlane:
    def __init__(
        self, lab: str, lab_dir: Path, progress: Callable[[str], None] = lambda _m: None, *, address: str | None = None
    ):
        self.lab = lab
        # Where the API server listens: loopback, or the lab bridge's gateway when real kubelets on
        # the lab's nodes join it. Chosen at first `up` and recorded; certificates name it.
        self._address = address
        self.dir = lab_dir / "kube"
        self.say = progress
        self.pki_dir = self.dir / "pki"
        self.kubeconfig = self.dir / "kubeconfig"  # the lab admin's: system:masters

    # --- files ---
    @property
    def _record(self) -> Path:
        return self.dir / "kube.json"

    def exists(self) -> bool:
        return self._record.is_file()

    def ports(self) -> Ports:
        return Ports(**json.loads(self._record.read_text())["ports"])

    @property
    def address(self) -> str:
        if self.exists():
            return str(json.loads(self._record.read_text()).get("address", "127.0.0.1"))
        return self._address or "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.ports().apiserver}"

    def daemon(self, name: str) -> Daemon:
        return Daemon(name, self.dir / "run", self.dir / "log")

    def admin_credentials(self) -> Credentials:
        return Credentials(self.address, self.ports().apiserver, self.pki_dir / "ca.crt",
                           self.pki_dir / "admin.crt", self.pki_dir / "admin.key")

    def api(self) -> KubeApi:
        return KubeApi(self.admin_credentials())

    # --- lifecycle ---
    def up(self, timeout: float = 120.0) -> None:
        binaries = self._binaries()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.exists():
            self._prepare()
        ports = self.ports()
        etcd_data = self.dir / "etcd"
        pki = self.pki_dir
        ca = str(pki / "ca.crt")
        self.daemon("etcd").start([
            binaries["etcd"], "--name", "lab", "--data-dir", str(etcd_data),
            "--listen-client-urls", f"https://127.0.0.1:{ports.etcd}",
            "--advertise-client-urls", f"https://127.0.0.1:{ports.etcd}",
            "--listen-peer-urls", f"http://127.0.0.1:{ports.etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports.etcd_peer}",
            "--initial-cluster", f"lab=http://127.0.0.1:{ports.etcd_peer}",
            "--cert-file", str(pki / "etcd-server.crt"), "--key-file", str(pki / "etcd-server.key"),
            "--client-cert-auth", "--trusted-ca-file", ca,
            # A lab's etcd holds throw-away state on a shared 2-core machine: fsync buys nothing here.
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        self._wait_port(ports.etcd, "etcd", timeout)
        self.daemon("kube-apiserver").start([
            binaries["kube-apiserver"],
            "--bind-address", self.address, "--advertise-address", self.address,
            "--secure-port", str(ports.apiserver),
            "--etcd-servers", f"https://127.0.0.1:{ports.etcd}", "--etcd-cafile", ca,
            "--etcd-certfile", str(pki / "apiserver-etcd.crt"), "--etcd-keyfile", str(pki / "apiserver-etcd.key"),
            "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", ca,
            # Nodes join with bootstrap tokens (Secrets in kube-system), as kubeadm's do.
            "--enable-bootstrap-token-auth=true",
            "--authorization-mode", "Node,RBAC",
            "--enable-admission-plugins", "NodeRestriction",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--allow-privileged=true",
            # The `kubernetes` Service's endpoints may not be loopback; nothing in the lab needs them.
            "--endpoint-reconciler-type", "none",
            "--enable-priority-and-fairness=false", "--profiling=false", "--v=1",
        ])
        api = self.api()
        self._wait(lambda: api.ready(), "kube-apiserver", timeout)
        for name, port in (("kube-controller-manager", ports.controller_manager), ("kube-scheduler", ports.scheduler)):
            kubeconfig = str(self.dir / f"{name}.kubeconfig")
            argv = [
                binaries[name], "--kubeconfig", kubeconfig,
                "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
                "--bind-address", "127.0.0.1", "--secure-port", str(port), "--leader-elect=false", "--v=1",
            ]
            if name == "kube-controller-manager":
                argv += [
                    "--service-account-private-key-file", str(pki / "sa.key"), "--root-ca-file", ca,
                    "--cluster-signing-cert-file", ca, "--cluster-signing-key-file", str(pki / "ca.key"),
                    "--use-service-account-credentials=true",
                ]
            self.daemon(name).start(argv)
        self.daemon("kwok").start([
            binaries["kwok"], "--kubeconfig", str(self.dir / "kwok.kubeconfig"),
            "--config", str(pins.tools_dir() / "share" / "kwok-stages.yaml"),
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            "--server-address", f"127.0.0.1:{ports.kwok}",
            "--node-lease-duration-seconds", "40",
        ])
        self._wait(self._healthy_all, "the control plane", timeout)

    def down(self) -> None:
        for name in reversed(COMPONENTS):
            self.daemon(name).stop()

    def health(self) -> dict[str, dict[str, Any]]:
        """Per component: running (our pid alive) and healthy (its own health endpoint answers)."""
        report: dict[str, dict[str, Any]] = {}
        if not self.exists():
            return {name: {"running": False, "healthy": False} for name in COMPONENTS}
        ports = self.ports()
        checks: dict[str, Callable[[], bool]] = {
            "etcd": lambda: _port_open(ports.etcd),
            "kube-apiserver": lambda: self.api().ready(),
            "kube-controller-manager": lambda: _https_ok(ports.controller_manager, "/healthz"),
            "kube-scheduler": lambda: _https_ok(ports.scheduler, "/healthz"),
            "kwok": lambda: _port_open(ports.kwok),
        }
        for name in COMPONENTS:
            pid = self.daemon(name).pid()
            report[name] = {"running": pid is not None, "pid": pid, "healthy": pid is not None and checks[name]()}
        return report

    def _healthy_all(self) -> bool:
        return all(c["healthy"] for c in self.health().values())

    # --- set-up ---
    def _binaries(self) -> dict[str, str]:
        bin_dir = pins.tools_dir() / "bin"
        found = {name: str(bin_dir / name) for name in COMPONENTS}
        absent = [name for name, path in found.items() if not Path(path).is_file()]
        if absent:
            raise LabEnvironmentError(
                f"not built yet: {', '.join(absent)}; run `sovereign tools install` (or `make tools`)"
            )
        return found

    def _prepare(self) -> None:
        self.say("control plane: certificates and kubeconfigs (lab CA)")
        ports = Ports(*_free_ports(6))
        ca = LabCA(self.pki_dir, self.lab)
        ca.issue("etcd-server", "etcd", server_ips=("127.0.0.1",), server_dns=("localhost",))
        ca.issue("apiserver-etcd", "kube-apiserver-etcd-client")
        address = self._address or "127.0.0.1"
        ca.issue("apiserver", "kube-apiserver", client=False, server_ips=tuple(sorted({"127.0.0.1", address, "10.96.0.1"})),
                 server_dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                             "kubernetes.default.svc.cluster.local"))
        ca.service_account_key()
        clients = {
            "admin": ("sovereign-lab-admin", "system:masters"),
            "kube-controller-manager": ("system:kube-controller-manager", None),
            "kube-scheduler": ("system:kube-scheduler", None),
            # kwok acts for many nodes at once, which the Node authorizer would not allow one identity.
            "kwok": ("sovereign-lab-kwok", "system:masters"),
        }
        for name, (cn, org) in clients.items():
            pair = ca.issue(name, cn, organization=org)
            _write_kubeconfig(self.dir / f"{name}.kubeconfig", self.lab, address, ports.apiserver, ca.ca.cert, pair)
        (self.dir / "admin.kubeconfig").rename(self.kubeconfig)
        atomic.write_file(self._record, json.dumps({"lab": self.lab, "address": address, "ports": asdict(ports)},
                                                   indent=2))

    def _wait_port(self, port: int, what: str, timeout: float) -> None:
        self._wait(lambda: _port_open(port), what, timeout)

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [n for n in COMPONENTS if self.daemon(n).record.is_file() and self.daemon(n).pid() is None]
            if dead:
                name = dead[0]
                raise LabError(f"{name} exited while starting; last lines of its log:\n{self.daemon(name).log_tail(4)}")
            time.sleep(0.3)
        raise LabError(f"{what} not ready after {timeout:.0f} s; logs in {self.dir / 'log'}")


def _write_kubeconfig(path: Path, lab: str, address: str, port: int, ca: Path, pair: Pair) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"lab-{lab}", "cluster": {"server": f"https://{address}:{port}",
                                                       "certificate-authority-data": b64(ca)}}],
        "users": [{"name": f"lab-{lab}", "user": {"client-certificate-data": b64(pair.cert),
                                                 "client-key-data": b64(pair.key)}}],
        "contexts": [{"name": f"lab-{lab}", "context": {"cluster": f"lab-{lab}", "user": f"lab-{lab}"}}],
        "current-context": f"lab-{lab}",
    }
    atomic.write_file(path, json.dumps(config, indent=2), mode=0o600)  # JSON is YAML: every kubeconfig reader takes it


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _https_ok(port: int, path: str) -> bool:
    # The controllers serve /healthz with a self-signed certificate they make at start; only
    # loopback is asked, and only whether it answers "ok".
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status == 200 and response.read().strip() == b"ok"
    except (OSError, http.client.HTTPException):
        return False

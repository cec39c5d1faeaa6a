"""Real tier: a lab node forwards its journal to the site's log collector over TLS.

The test plays the collector: a TLS listener on the lab bridge with a certificate from a test CA,
named as the collector's name the role checks (x509/name). hardening converges a fresh node with
the collector set; a message logged on the node arrives at the listener; the audit plugin is
switched on (auditd itself is inactive in a container: the kernel's audit subsystem is the
host's, so audit events are not observable here); a rerun changes nothing.
"""

from __future__ import annotations

import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.nodes import NodeLab
from lab.pki import LabCA
from tests.lab_session import fresh_lab
from tests.roles.helpers import tool, tool_env

pytestmark = pytest.mark.lab

COLLECTOR_NAME = "collector.lab.example"
NODE_CA = "/usr/local/share/sovereign-test/collector-ca.crt"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class TlsCollector:
    """Accepts TLS connections on `address` and keeps every byte received."""

    def __init__(self, address: str, cert: Path, key: Path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.server = socket.create_server((address, 0))
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self.connections = 0  # TCP connections accepted, whether or not TLS then succeeded
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                while chunk := tls.recv(65536):
                    with self.lock:
                        self.received += chunk
        except (OSError, ssl.SSLError):
            pass

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                data = self.received.decode(errors="replace")
            if text in data:
                return data
            time.sleep(0.5)
        raise AssertionError(f"{text!r} never reached the collector; got {data[-2000:]!r}")

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def lab() -> Iterator[NodeLab]:
    with fresh_lab("rlog", 1) as node_lab:
        yield node_lab


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory, lab: NodeLab) -> LabCA:
    return LabCA(tmp_path_factory.mktemp("collector-ca"), lab.name)


@pytest.fixture(scope="module")
def collector(lab: NodeLab, ca: LabCA) -> Iterator[TlsCollector]:
    spec = lab.spec()
    assert spec is not None
    pair = ca.issue("collector", COLLECTOR_NAME, server_dns=(COLLECTOR_NAME,), client=False)
    node = spec.nodes[0].name
    put = lab.ssh(node, f"mkdir -p {Path(NODE_CA).parent} && cat > {NODE_CA} <<'EOF'\n{ca.ca.cert.read_text()}EOF")
    assert put.returncode == 0, put.stderr
    server = TlsCollector(spec.gateway, pair.cert, pair.key)
    yield server
    server.close()


def converge(lab: NodeLab, collector: TlsCollector, tmp: Path) -> dict[str, int]:
    spec = lab.spec()
    assert spec is not None
    play = [{
        "hosts": "lab_nodes",
        "roles": [{
            "role": "hardening",
            "vars": {
                "hardening_banner_authority": "the Sovereign lab",
                "hardening_remote_log_host": spec.gateway,
                "hardening_remote_log_port": collector.port,
                "hardening_remote_log_tls_peer": COLLECTOR_NAME,
                "hardening_remote_log_tls_ca_file": NODE_CA,
            },
        }],
    }]  # fmt: skip
    (tmp / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", str(spec.inventory), str(tmp / "play.yml")],
        env=tool_env(ANSIBLE_PIPELINING="1"), capture_output=True, text=True, timeout=1800, check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    recap = {m[0]: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m[1:]))) for m in RECAP.findall(out.stdout)}
    return recap[spec.nodes[0].name]


@pytest.fixture(scope="module")
def converged(lab: NodeLab, collector: TlsCollector, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("rlog")
    first = converge(lab, collector, tmp)
    assert first["changed"] > 0 and first["failed"] == 0
    return tmp


def test_a_message_logged_on_the_node_reaches_the_collector_over_tls(lab: NodeLab, collector: TlsCollector, converged: Path):
    spec = lab.spec()
    assert spec is not None
    node = spec.nodes[0].name
    marker = f"sovereign-forward-{secrets.token_hex(6)}"
    logged = lab.ssh(node, f"logger -t sovereign-test {marker}")
    assert logged.returncode == 0, logged.stderr
    data = collector.wait_for(marker)
    line = next(line for line in data.splitlines() if marker in line)
    # RFC 5424 (RSYSLOG_SyslogProtocol23Format): "<PRI>1 TIMESTAMP HOST APP ...", from this node.
    assert re.search(rf"<\d+>1 \S+ {re.escape(node)} sovereign-test ", line), line


def test_audit_events_are_handed_to_syslog(lab: NodeLab, converged: Path):
    spec = lab.spec()
    assert spec is not None
    plugin = lab.ssh(spec.nodes[0].name, "cat /etc/audit/plugins.d/syslog.conf").stdout
    assert re.search(r"^active = yes$", plugin, re.M) and re.search(r"^path = /sbin/audisp-syslog$", plugin, re.M)


def test_a_rerun_changes_nothing(lab: NodeLab, collector: TlsCollector, converged: Path):
    assert converge(lab, collector, converged)["changed"] == 0


def test_a_collector_with_another_name_gets_nothing(lab: NodeLab, ca: LabCA, collector: TlsCollector, converged: Path):
    """Same CA, same address, a certificate for another name: rsyslog connects, refuses the peer
    (x509/name), and the message never reaches it."""
    spec = lab.spec()
    assert spec is not None
    pair = ca.issue("impostor", "impostor.lab.example", server_dns=("impostor.lab.example",), client=False)
    impostor = TlsCollector(spec.gateway, pair.cert, pair.key)
    try:
        real_port = collector.port
        collector.port = impostor.port  # converge() points the node at collector.port
        assert converge(lab, collector, converged)["changed"] > 0
        marker = f"sovereign-impostor-{secrets.token_hex(6)}"
        assert lab.ssh(spec.nodes[0].name, f"logger -t sovereign-test {marker}").returncode == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and impostor.connections == 0:
            time.sleep(0.5)
        assert impostor.connections > 0, "rsyslog never tried the collector: the test would prove nothing"
        time.sleep(5)
        assert marker not in impostor.received.decode(errors="replace")
    finally:
        collector.port = real_port
        impostor.close()

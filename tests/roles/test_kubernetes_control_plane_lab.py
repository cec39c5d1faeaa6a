"""Real tier: a greenfield cluster on the lab's nodes, control plane and kubelets alike.

One lab node stands in for the site's management node: kubernetes_control_plane runs etcd, the API
server, the controller-manager and the scheduler there as systemd units of the pinned binaries,
with certificates that nodeconfig/cluster_greenfield.py issued from the site CA (in the lab: the
lab's CA, which also certifies the lab's registry). The two other nodes run container_runtime and
kubernetes_node and join that API server with the bootstrap token the control-plane role created.
They turn Ready with the design's labels and each runs a pause pod from the lab registry. A Secret
is stored encrypted in etcd (read raw through etcd's own API), the audit log records its creation,
and a second run over all three changes nothing and restarts no API server.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.image_registry import ImageRegistry, pause_image
from lab.kube_join import prepare_lxc_node
from lab.kubeapi import Credentials, KubeApi
from lab.nodes import NodeLab
from lab.pki import LabCA
from nodeconfig.cluster_greenfield import RECORD, ensure_secrets, public_vars, secret_vars
from nodeconfig.cluster_pki import Member, Pem
from stacks.design.loader import load_and_design
from stacks.design.node_labels import topology_labels
from stacks.design.sizing import SiteDesign
from tests.lab_session import fresh_lab
from tests.roles.helpers import tool, tool_env
from tests.roles.test_kubernetes_node_lab import wait_for
from toolchain import build, pins

pytestmark = pytest.mark.lab

# The control plane and the workers' containerd converge side by side (strategy free: neither
# waits for the other's tasks); the kubelets join once the control plane play has finished.
PLAY = """
- hosts: "{{ lab_management }},{{ lab_workers }}"
  strategy: free
  roles:
    - role: kubernetes_control_plane
      when: inventory_hostname == lab_management
      vars:
        kubernetes_control_plane_advertise_address: "{{ ansible_host }}"
        kubernetes_control_plane_certificates: "{{ sovereign_cluster_certificates[inventory_hostname] }}"
    - role: container_runtime
      when: inventory_hostname != lab_management
      vars:
        container_runtime_sandbox_image: "{{ lab_pause_image }}"
        # overlayfs cannot stack on the node's overlay root (see roles/kubernetes_node/README.md)
        container_runtime_snapshotter: native
        # this machine denies CAP_SYS_RESOURCE even to root: no negative OOM score adjustments
        container_runtime_restrict_oom_score_adj: true
        container_runtime_registry_mirrors: {registry.k8s.io: ["{{ lab_registry_mirror }}"]}
- hosts: "{{ lab_workers }}"
  roles:
    - role: kubernetes_node
      vars:
        kubernetes_node_labels: "{{ lab_labels[inventory_hostname] }}"
        kubernetes_node_pod_cidr: "{{ lab_pod_cidrs[inventory_hostname] }}"
        kubernetes_node_ip: "{{ ansible_host }}"
"""
STACK = "ke-staging"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
AUDIT_LOG = "/var/log/kubernetes/audit/audit.log"


@functools.cache
def design_site() -> SiteDesign:
    return load_and_design(STACK)[1].sites[0]


@dataclass
class Greenfield:
    lab: NodeLab
    work: Path
    management: str
    workers: list[str]
    site_ca: Pem
    members: list[Member]
    public: dict[str, Any]
    settings: dict[str, Any]
    api: KubeApi

    @property
    def record(self) -> Path:
        return self.work / "state" / RECORD


def _labels(index: int) -> dict[str, str]:
    return topology_labels(design_site().site, "gpu", rack=index, su=1, rail_group=1)


def converge(cluster: Greenfield) -> subprocess.CompletedProcess[str]:
    """One run of the play with the secrets the record holds (created or reused)."""
    spec = cluster.lab.spec()
    assert spec is not None
    record = ensure_secrets(cluster.work / "state", cluster.site_ca, cluster.members)
    (cluster.work / "play.yml").write_text(PLAY)
    (cluster.work / "settings.json").write_text(json.dumps({**cluster.public, **cluster.settings}))
    secrets = cluster.work / "secrets.json"
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(secret_vars(cluster.site_ca, record), fh)
    try:
        return subprocess.run(
            [tool("ansible-playbook"), "-i", str(spec.inventory), str(cluster.work / "play.yml"),
             "-e", f"@{cluster.work / 'settings.json'}", "-e", f"@{secrets}"],
            env=tool_env(ANSIBLE_PIPELINING="1"), capture_output=True, text=True, timeout=1800, check=False,
        )
    finally:
        secrets.unlink()


def recap(out: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    return {m[0]: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m[1:]))) for m in RECAP.findall(out.stdout)}


def _admin_api(work: Path, address: str, record_path: Path, member: str, ca: Pem) -> KubeApi:
    """The API server as its administrator, with the admin pair the record holds (0600 files)."""
    admin = json.loads(record_path.read_text())["certificates"][member]["admin"]
    files = {"ca.crt": ca.cert, "admin.crt": admin["cert"], "admin.key": admin["key"]}
    for name, text in files.items():
        fd = os.open(work / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    return KubeApi(Credentials(address, 6443, work / "ca.crt", work / "admin.crt", work / "admin.key"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Greenfield]:
    if any(build.missing(step) for step in build.STEPS):
        pytest.fail("the pinned tools are not built: run `make tools`", pytrace=False)
    with fresh_lab("kcp", 3) as node_lab:
        spec = node_lab.spec()
        assert spec is not None
        registry = ImageRegistry(node_lab.name, node_lab.dir, spec.gateway)
        try:
            registry.up()
            registry.seed()
            # The site CA, in the lab: the lab's CA, which certifies the registry too.
            lab_ca = LabCA(registry.pki_dir, node_lab.name)
            site_ca = Pem(lab_ca.ca.cert.read_text(), lab_ca.ca.key.read_text())
            management, *workers = [n.name for n in spec.nodes]
            for name in workers:
                prepare_lxc_node(node_lab, name)
            members = [Member(spec.nodes[0].name, spec.nodes[0].ip)]
            work = tmp_path_factory.mktemp("kcp")
            public = public_vars(site_ca, members, pins.tools_dir() / "bin", pins.KUBERNETES)
            settings = {
                "lab_management": management,
                "lab_workers": ",".join(workers),
                "lab_pause_image": pause_image(),
                "lab_registry_mirror": registry.mirror_for("registry.k8s.io"),
                "lab_labels": {n.name: _labels(n.index) for n in spec.nodes},
                "lab_pod_cidrs": {n.name: f"10.244.{n.index}.0/24" for n in spec.nodes},
            }
            ensure_secrets(work / "state", site_ca, members)
            api = _admin_api(work, members[0].address, work / "state" / RECORD, management, site_ca)
            yield Greenfield(node_lab, work, management, workers, site_ca, members, public, settings, api)
        finally:
            registry.down()


@pytest.fixture(scope="module")
def converged(cluster: Greenfield) -> subprocess.CompletedProcess[str]:
    out = converge(cluster)
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-2000:]
    return out


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def test_nodes_join_the_new_control_plane_ready_with_the_design_labels(
    cluster: Greenfield, converged: subprocess.CompletedProcess[str]
) -> None:
    def ready() -> list[dict[str, Any]] | None:
        nodes = {n["metadata"]["name"]: n for n in cluster.api.get("/api/v1/nodes")["items"]}
        found = [nodes[w] for w in cluster.workers if w in nodes and _ready(nodes[w])]
        return found if len(found) == len(cluster.workers) else None

    nodes = wait_for("both workers Ready", ready)
    for node in nodes:
        index = int(node["metadata"]["name"].rsplit("node", 1)[1])
        assert _labels(index).items() <= node["metadata"]["labels"].items()
        assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{pins.KUBERNETES}"
    version = cluster.api.get("/version")
    assert version["gitVersion"] == f"v{pins.KUBERNETES}"
    # The API server is the management node's, and the kubelets' certificates came through CSRs
    # that the controller-manager signed with the site CA.
    csrs = cluster.api.get("/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]
    assert {c["spec"]["username"].split(":")[1] for c in csrs if c["status"].get("certificate")} >= {"bootstrap"}
    units = cluster.lab.ssh(cluster.management, "systemctl is-active etcd kube-apiserver kube-controller-manager kube-scheduler")
    assert units.stdout.split() == ["active"] * 4, units.stdout


def test_a_pause_pod_runs_on_each_node(cluster: Greenfield, converged: subprocess.CompletedProcess[str]) -> None:
    for name in cluster.workers:
        cluster.api.create("/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pause-{name}"},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": name},
                     "containers": [{"name": "pause", "image": pause_image()}]},
        })

    def running() -> dict[str, str] | None:
        pods = {p["metadata"]["name"]: p for p in cluster.api.get("/api/v1/namespaces/default/pods")["items"]}
        phases = {n: pods[f"pause-{n}"]["status"].get("phase", "") for n in cluster.workers if f"pause-{n}" in pods}
        return phases if all(phases.get(n) == "Running" for n in cluster.workers) else None

    wait_for("a Running pause pod on each worker", running)
    for name in cluster.workers:
        assert cluster.api.get(f"/api/v1/namespaces/default/pods/pause-{name}")["spec"]["nodeName"] == name


ETCD_GET = """
import base64, json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="/etc/kubernetes/pki/etcd-ca.crt")
ctx.load_cert_chain(f"/etc/kubernetes/pki/{sys.argv[2]}.crt", f"/etc/kubernetes/pki/{sys.argv[2]}.key")
body = json.dumps({"key": base64.b64encode(sys.argv[1].encode()).decode()}).encode()
with urllib.request.urlopen(urllib.request.Request("https://127.0.0.1:2379/v3/kv/range", data=body), context=ctx) as r:
    print(json.load(r)["kvs"][0]["value"])
"""


def test_secrets_are_encrypted_in_etcd_and_audited(cluster: Greenfield, converged: subprocess.CompletedProcess[str]) -> None:
    plain = "launch-codes-0123456789"
    cluster.api.create("/api/v1/namespaces/default/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sealed"}, "stringData": {"code": plain},
    })
    assert base64.b64decode(cluster.api.get("/api/v1/namespaces/default/secrets/sealed")["data"]["code"]).decode() == plain
    raw = cluster.lab.ssh(cluster.management, f"python3 -c '{ETCD_GET}' /registry/secrets/default/sealed apiserver-etcd-client")
    assert raw.returncode == 0, raw.stderr
    stored = base64.b64decode(raw.stdout.strip())
    assert stored.startswith(b"k8s:enc:aescbc:v1:sovereign-1:"), stored[:40]
    assert plain.encode() not in stored
    # etcd accepts no certificate of the site CA (which signs every kubelet's): only its own CA's.
    admin = cluster.lab.ssh(cluster.management, f"python3 -c '{ETCD_GET}' /registry/secrets/default/sealed admin")
    assert admin.returncode != 0 and "SSL" in admin.stderr, (admin.stdout, admin.stderr[-500:])

    def audited() -> list[dict[str, Any]] | None:
        log = cluster.lab.ssh(cluster.management, f"grep -h '\"sealed\"' {AUDIT_LOG} || true").stdout
        events = [json.loads(line) for line in log.splitlines() if line.strip()]
        found = [e for e in events if e["verb"] == "create" and e["objectRef"].get("name") == "sealed"]
        return found or None

    events = wait_for("the Secret's creation in the audit log", audited, timeout=30)
    assert events[0]["user"]["username"] == "sovereign-admin"
    assert plain not in json.dumps(events)  # Metadata level for Secrets: no bodies


def test_a_rerun_changes_nothing_and_restarts_nothing(
    cluster: Greenfield, converged: subprocess.CompletedProcess[str]
) -> None:
    def pid() -> str:
        return cluster.lab.ssh(cluster.management, "systemctl show -p MainPID --value kube-apiserver").stdout.strip()

    before, record = pid(), cluster.record.read_text()
    out = converge(cluster)
    counts = recap(out)
    assert set(counts) == {cluster.management, *cluster.workers}, out.stdout[-3000:]
    for host, count in counts.items():
        assert count["changed"] == 0 and count["failed"] == 0, (host, out.stdout[-6000:])
    assert pid() == before
    assert cluster.record.read_text() == record  # the same certificates, key and token


def test_keys_and_tokens_appear_in_no_output(cluster: Greenfield, converged: subprocess.CompletedProcess[str]) -> None:
    record = json.loads(cluster.record.read_text())
    secrets = [record["token"].split(".")[1], record["encryption_key"], cluster.site_ca.key.splitlines()[1]]
    secrets += [pair["key"].splitlines()[1] for pair in record["certificates"][cluster.management].values()]
    for secret in secrets:
        assert secret not in converged.stdout + converged.stderr
    assert (cluster.record.stat().st_mode & 0o777) == 0o600

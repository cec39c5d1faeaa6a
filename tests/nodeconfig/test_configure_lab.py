"""Real tier: `configure` and `verify` of a greenfield stack on three real Debian systemd nodes.

One lab walks through a site's life, in order, so that the node roles and the cluster are proven
on the same nodes that `sovereign configure ke-staging --lab NAME --cluster` converges (the lab
stands in for the stack's management, storage and GPU node):

- check mode on the fresh nodes reports changes and changes nothing;
- the first run (with canary secrets) converges every role and bootstraps the cluster: the
  kubernetes_control_plane role runs etcd, the API server, the controller-manager and the
  scheduler on the management node as units of the pinned binaries, with certificates from the
  site CA (in the lab, the lab's); the storage and GPU nodes join as real kubelets, Ready with the
  design's labels, and run a pause pod from the lab registry; a Secret is stored encrypted in etcd
  and its creation is audited;
- a second run changes nothing and restarts no API server; no secret (canary, token, keys) shows
  up in any output or artifact;
- `verify` passes on every node, then names exactly what was broken on one node, and reports a
  stopped node as an error, not a failure;
- a node lost mid-run: the others finish, and a rerun once it is back converges.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from lab.image_registry import pause_image
from lab.kubeapi import Credentials, KubeApi
from lab.nodes import NodeLab
from nodeconfig.acceptance import verify
from nodeconfig.cluster_greenfield import RECORD
from nodeconfig.configure import Target, configure, plan_target, write_inventory
from stacks.design.node_labels import ROLE, SITE
from tests.lab_session import fresh_lab
from tests.roles.kube_lab import wait_for
from toolchain import pins

pytestmark = pytest.mark.lab
STACK = "ke-staging"
CANARY = f"canary-{secrets.token_hex(8)}"
AUDIT_LOG = "/var/log/kubernetes/audit/audit.log"


@dataclass
class Site:
    lab: NodeLab
    management: str
    storage: str
    gpu: str

    @property
    def workers(self) -> list[str]:
        return [self.storage, self.gpu]

    def target(self, *, cluster: bool = True) -> Target:
        return plan_target(STACK, lab=self.lab.name, cluster=cluster)

    @property
    def record(self) -> Path:
        return self.target(cluster=False).state_dir / RECORD

    def apiserver_pid(self) -> str:
        return self.lab.ssh(self.management, "systemctl show -p MainPID --value kube-apiserver").stdout.strip()


@dataclass
class Runs:
    first: Any
    second: Any
    pid_after_first: str
    pid_after_second: str
    record_after_first: str


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with fresh_lab("cfg", 3) as node_lab:
        children = plan_target(STACK, lab=node_lab.name).inventory["all"]["children"]

        def only(group: dict[str, Any]) -> str:
            hosts = dict(group.get("hosts", {}))
            for child in group.get("children", {}).values():
                hosts.update(child.get("hosts", {}))
            assert len(hosts) == 1, group
            return next(iter(hosts))

        yield Site(node_lab, only(children["management"]), only(children["storage"]), only(children["gpu"]))


@pytest.fixture(scope="module")
def secrets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "secrets.yml"
    # A SHA-512 crypt hash whose salt is the canary: it must appear nowhere after the run.
    path.write_text(
        f"admin_password_hashes:\n  sovadmin: '$6${CANARY[:16]}$abcdefghijklmnopqrstuv{CANARY}'\n"
        f"registry_credentials:\n  registry.ai.go.ke: {{username: '$oauthtoken', password: '{CANARY}'}}\n"
    )
    path.chmod(0o600)
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_mode_reports_changes_and_changes_nothing(site: Site) -> None:
    result = invoke("configure", STACK, "--lab", site.lab.name, "--check", "--json")
    report = json.loads(result.stdout)
    assert report["check"] is True
    assert all(h["changed"] > 0 for h in report["hosts"]), report["hosts"]
    for name in (site.management, *site.workers):
        probe = site.lab.ssh(name, "test -e /etc/ssh/sshd_config.d/50-hardening.conf || echo absent; "
                                   "dpkg -s prometheus-node-exporter >/dev/null 2>&1 || echo missing")
        assert "missing" in probe.stdout, probe.stdout


@pytest.fixture(scope="module")
def runs(site: Site, secrets_file: Path) -> Runs:
    args = ("configure", STACK, "--lab", site.lab.name, "--cluster", "--secrets", str(secrets_file), "--json")
    first = invoke(*args)
    assert first.exit_code == 0, first.output[-6000:]
    pid, record = site.apiserver_pid(), site.record.read_text()
    second = invoke(*args)
    assert second.exit_code == 0, second.output[-6000:]
    return Runs(first, second, pid, site.apiserver_pid(), record)


def test_converge_then_a_rerun_changes_nothing_and_restarts_nothing(site: Site, runs: Runs) -> None:
    report = json.loads(runs.first.stdout)
    assert report["ok"] and len(report["hosts"]) == 3
    rerun = json.loads(runs.second.stdout)
    assert [h["changed"] for h in rerun["hosts"]] == [0, 0, 0], rerun["hosts"]
    assert runs.pid_after_first and runs.pid_after_second == runs.pid_after_first
    assert site.record.read_text() == runs.record_after_first  # the same certificates, keys and token
    assert site.record.stat().st_mode & 0o777 == 0o600


def test_secrets_reach_the_nodes_and_nothing_else(site: Site, runs: Runs) -> None:
    # The hash is the admin's password, the registry credential is in containerd's 0600 config ...
    assert CANARY in site.lab.ssh(site.management, "getent shadow sovadmin").stdout
    containerd = site.lab.ssh(site.gpu, "stat -c %a /etc/containerd/config.toml; cat /etc/containerd/config.toml").stdout
    assert containerd.startswith("600") and CANARY in containerd
    # ... and nothing else has them, nor the cluster's keys and token: not the output, the run
    # artifacts, the inventory, the fact cache.
    record = json.loads(site.record.read_text())
    hidden = [CANARY, record["token"].split(".")[1], record["encryption_key"]]
    hidden += [pair["key"].splitlines()[1] for pair in record["certificates"][site.management].values()]
    output = runs.first.output + runs.second.output
    assert not [h for h in hidden if h in output]
    state = site.target(cluster=False).state_dir
    scanned = [p for p in state.rglob("*") if p.is_file() and not p.is_socket() and p.name != RECORD]
    assert any(p.name == "command" for p in scanned) and any(p.parent.name == "job_events" for p in scanned)
    leaked = [str(p) for p in scanned for h in hidden if h in p.read_text(errors="replace")]
    assert not leaked, leaked
    assert not list(Path("/dev/shm").glob("sovereign-*/secrets.json"))


@pytest.fixture(scope="module")
def api(site: Site, runs: Runs, tmp_path_factory: pytest.TempPathFactory) -> KubeApi:
    """The new cluster's API server as its administrator, with the admin pair the record holds."""
    work = tmp_path_factory.mktemp("admin")
    pairs = json.loads(site.record.read_text())["certificates"][site.management]
    files = {"ca.crt": site.lab.dir.joinpath("kube", "pki", "ca.crt").read_text(),
             "admin.crt": pairs["admin"]["cert"], "admin.key": pairs["admin"]["key"]}
    for name, text in files.items():
        fd = os.open(work / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    address = site.target(cluster=False).inventory["all"]["children"]["management"]["hosts"][site.management]["ansible_host"]
    return KubeApi(Credentials(address, 6443, work / "ca.crt", work / "admin.crt", work / "admin.key"))


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def test_the_workers_join_the_new_control_plane_ready_with_the_design_labels(site: Site, api: KubeApi) -> None:
    def ready() -> dict[str, dict[str, Any]] | None:
        nodes = {n["metadata"]["name"]: n for n in api.get("/api/v1/nodes")["items"]}
        found = {w: nodes[w] for w in site.workers if w in nodes and _ready(nodes[w])}
        return found if len(found) == 2 else None

    nodes = wait_for("both workers Ready", ready)
    assert nodes[site.storage]["metadata"]["labels"][ROLE] == "storage"
    assert nodes[site.gpu]["metadata"]["labels"][ROLE] == "gpu"
    sites = {n["metadata"]["labels"][SITE] for n in nodes.values()}
    assert sites == {site.target(cluster=False).inventory["all"]["vars"]["sovereign_site"]}
    for node in nodes.values():
        assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{pins.KUBERNETES}"
    assert api.get("/version")["gitVersion"] == f"v{pins.KUBERNETES}"
    # The kubelets' certificates came through CSRs the controller-manager signed with the site CA.
    csrs = api.get("/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]
    assert {c["spec"]["username"].split(":")[1] for c in csrs if c["status"].get("certificate")} >= {"bootstrap"}
    units = site.lab.ssh(site.management, "systemctl is-active etcd kube-apiserver kube-controller-manager kube-scheduler")
    assert units.stdout.split() == ["active"] * 4, units.stdout


def test_a_pause_pod_runs_on_each_worker(site: Site, api: KubeApi) -> None:
    for name in site.workers:
        api.create("/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pause-{name}"},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": name},
                     "containers": [{"name": "pause", "image": pause_image()}]},
        })

    def running() -> bool:
        pods = {p["metadata"]["name"]: p for p in api.get("/api/v1/namespaces/default/pods")["items"]}
        return all(pods.get(f"pause-{n}", {}).get("status", {}).get("phase") == "Running" for n in site.workers)

    wait_for("a Running pause pod on each worker", running)
    for name in site.workers:
        assert api.get(f"/api/v1/namespaces/default/pods/pause-{name}")["spec"]["nodeName"] == name


ETCD_GET = """
import base64, json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="/etc/kubernetes/pki/etcd-ca.crt")
ctx.load_cert_chain(f"/etc/kubernetes/pki/{sys.argv[2]}.crt", f"/etc/kubernetes/pki/{sys.argv[2]}.key")
body = json.dumps({"key": base64.b64encode(sys.argv[1].encode()).decode()}).encode()
with urllib.request.urlopen(urllib.request.Request("https://127.0.0.1:2379/v3/kv/range", data=body), context=ctx) as r:
    print(json.load(r)["kvs"][0]["value"])
"""


def test_secrets_are_encrypted_in_etcd_and_audited(site: Site, api: KubeApi) -> None:
    plain = "launch-codes-0123456789"
    api.create("/api/v1/namespaces/default/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sealed"}, "stringData": {"code": plain},
    })
    assert base64.b64decode(api.get("/api/v1/namespaces/default/secrets/sealed")["data"]["code"]).decode() == plain
    raw = site.lab.ssh(site.management, f"python3 -c '{ETCD_GET}' /registry/secrets/default/sealed apiserver-etcd-client")
    assert raw.returncode == 0, raw.stderr
    stored = base64.b64decode(raw.stdout.strip())
    assert stored.startswith(b"k8s:enc:aescbc:v1:sovereign-1:"), stored[:40]
    assert plain.encode() not in stored
    # etcd accepts no certificate of the site CA (which signs every kubelet's): only its own CA's.
    admin = site.lab.ssh(site.management, f"python3 -c '{ETCD_GET}' /registry/secrets/default/sealed admin")
    assert admin.returncode != 0 and "SSL" in admin.stderr, (admin.stdout, admin.stderr[-500:])

    def audited() -> list[dict[str, Any]] | None:
        log = site.lab.ssh(site.management, f"grep -h '\"sealed\"' {AUDIT_LOG} || true").stdout
        events = [json.loads(line) for line in log.splitlines() if line.strip()]
        return [e for e in events if e["verb"] == "create" and e["objectRef"].get("name") == "sealed"] or None

    events = wait_for("the Secret's creation in the audit log", audited, timeout=30)
    assert events[0]["user"]["username"] == "sovereign-admin"
    assert plain not in json.dumps(events)  # Metadata level for Secrets: no bodies


def test_verify_passes_on_converged_nodes(site: Site, runs: Runs) -> None:
    result = invoke("verify", STACK, "--lab", site.lab.name, "--json")
    report = json.loads(result.stdout)
    failed = [r for r in report["rows"] if r["status"] != "passed"]
    assert result.exit_code == 0 and not failed, failed
    roles = {(r["host"], r["role"]) for r in report["rows"]}
    every = ("baseline", "hardening", "monitoring_agent")
    assert {(h, role) for h in (site.management, *site.workers) for role in every} <= roles
    assert {(site.gpu, "nvidia_host"), (site.gpu, "infiniband"), (site.storage, "infiniband")} <= roles
    assert (site.storage, "nvidia_host") not in roles  # not a storage role
    # GPU checks run for real: the lab node has no GPU, and its inventory expects none.
    gpu_count = next(r for r in report["rows"] if r["host"] == site.gpu and r["check"] == "gpu_count")
    assert gpu_count["message"] == "no GPUs expected; none on the PCI bus"


def _verify(site: Site, roles: list[str], limit: str, **kwargs: Any) -> Any:
    target = site.target(cluster=False)
    return verify(write_inventory(target), ssh_config=target.ssh_config, roles=roles, limit=limit, **kwargs)


def test_a_broken_node_fails_exactly_where_it_was_broken(site: Site, runs: Runs) -> None:
    out = site.lab.ssh(
        site.gpu,
        "chmod 0644 /etc/shadow && dpkg -r jq >/dev/null"
        " && sed -i 's/^MaxAuthTries .*/MaxAuthTries 9/' /etc/ssh/sshd_config.d/*sovereign-hardening.conf",
    )
    assert out.returncode == 0, out.stderr
    report = _verify(site, ["baseline", "hardening", "nvidia_host", "infiniband"], site.gpu)
    failures = [(r.host, r.role, r.check, r.status) for r in report.rows if r.status != "passed"]
    assert failures == [
        (site.gpu, "baseline", "packages", "failed"),
        (site.gpu, "hardening", "sshd", "failed"),
        (site.gpu, "hardening", "file_permissions", "failed"),
    ]
    messages = {r.check: r.message for r in report.rows if r.status == "failed"}
    assert messages["packages"] == "packages missing: jq"
    assert messages["sshd"] == "maxauthtries=9 (want 4)"
    assert messages["file_permissions"] == "/etc/shadow is 644 root:shadow (want 640 root:shadow)"


def test_a_stopped_node_is_an_error_not_a_failure(site: Site, runs: Runs) -> None:
    site.lab.stop_node(site.storage, kill=True)
    try:
        report = _verify(site, ["baseline"], site.storage, timeout_s=120)
    finally:
        site.lab.start_node(site.storage)
    assert report.rows and {r.status for r in report.rows} == {"error"}
    assert all(f"cannot run commands on {site.storage}" in r.message for r in report.rows)


def test_node_lost_mid_run_others_finish_and_rerun_converges(site: Site, runs: Runs) -> None:
    """Also repairs what the verify tests broke: the rerun converges every node again."""
    target = site.target()
    stopped = threading.Event()

    def on_event(shard: str, event: dict[str, Any]) -> None:
        # Pull the plug once the run is under way on every host.
        task = event.get("event_data", {}).get("task", "")
        if event.get("event") == "playbook_on_task_start" and not stopped.is_set() and task.startswith("Write site hosts"):
            stopped.set()
            threading.Thread(target=site.lab.stop_node, args=(site.gpu,), kwargs={"kill": True}).start()

    result = configure(target, on_event=on_event)
    assert stopped.is_set()
    statuses = {h.host: h.status for h in result.hosts.values()}
    assert statuses[site.gpu] in ("unreachable", "failed"), statuses
    assert all(s in ("ok", "changed") for h, s in statuses.items() if h != site.gpu), statuses
    assert not result.ok and result.hosts[site.gpu].messages
    site.lab.start_node(site.gpu)
    again = configure(site.target())
    assert again.ok, again.to_dict()
    after = _verify(site, ["baseline", "hardening"], site.gpu)
    assert after.ok

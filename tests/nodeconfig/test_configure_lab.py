"""Real tier: `configure` and `verify` against three real Debian systemd nodes over SSH.

The module walks one lab through a node's life: check mode on fresh nodes, converge (with canary
secrets), an idempotent rerun, acceptance, a node lost mid-run, and convergence after it returns.
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from nodeconfig.configure import configure, plan_target
from tests.lab_session import fresh_lab

pytestmark = pytest.mark.lab
STACK = "ke-staging"
CANARY = f"canary-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def lab():
    with fresh_lab("cfg", 3) as node_lab:
        yield node_lab


@pytest.fixture(scope="module")
def secrets_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("secrets") / "secrets.yml"
    # A SHA-512 crypt hash whose salt is the canary: it must appear nowhere after the run.
    path.write_text(
        f"admin_password_hashes:\n  sovadmin: '$6${CANARY[:16]}$abcdefghijklmnopqrstuv{CANARY}'\n"
        f"registry_credentials:\n  registry.ai.go.ke: {{username: '$oauthtoken', password: '{CANARY}'}}\n"
    )
    path.chmod(0o600)
    return path


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_check_mode_reports_changes_and_changes_nothing(lab):
    result = invoke("configure", STACK, "--lab", lab.name, "--check", "--json")
    report = json.loads(result.stdout)
    assert report["check"] is True
    assert all(h["changed"] > 0 for h in report["hosts"]), report["hosts"]
    for node in lab.spec().nodes:
        probe = lab.ssh(node.name, "test -e /etc/ssh/sshd_config.d/50-hardening.conf || echo absent; "
                                   "dpkg -s prometheus-node-exporter >/dev/null 2>&1 || echo missing")
        assert "missing" in probe.stdout, probe.stdout


def test_converge_with_secrets_then_rerun_changes_nothing(lab, secrets_file):
    first = invoke("configure", STACK, "--lab", lab.name, "--secrets", str(secrets_file), "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["ok"] and len(report["hosts"]) == 3
    second = invoke("configure", STACK, "--lab", lab.name, "--secrets", str(secrets_file), "--json")
    assert second.exit_code == 0, second.output
    rerun = json.loads(second.stdout)
    assert [h["changed"] for h in rerun["hosts"]] == [0, 0, 0], rerun["hosts"]
    # The secrets reached the node (the hash is the admin's password) ...
    shadow = lab.ssh(lab.spec().nodes[0].name, "getent shadow sovadmin").stdout
    assert CANARY in shadow
    node = lab.spec().nodes[0].name
    containerd = lab.ssh(node, "stat -c %a /etc/containerd/config.toml; cat /etc/containerd/config.toml").stdout
    assert containerd.startswith("600") and CANARY in containerd
    # ... and nothing else: not the output, the run artifacts, the inventory, the fact cache.
    assert CANARY not in first.output + second.output
    runs = plan_target(STACK, lab=lab.name).state_dir  # the project's state dir, this lab's runs
    scanned = [p for p in runs.rglob("*") if p.is_file() and not p.is_socket()]
    assert any(p.name == "command" for p in scanned) and any(p.parent.name == "job_events" for p in scanned)
    for path in scanned:
        assert CANARY not in path.read_text(errors="replace"), path
    assert not list(Path("/dev/shm").glob("sovereign-*/secrets.json"))


def test_verify_passes_on_converged_nodes(lab):
    result = invoke("verify", STACK, "--lab", lab.name, "--json")
    report = json.loads(result.stdout)
    failed = [r for r in report["rows"] if r["status"] != "passed"]
    assert result.exit_code == 0 and not failed, failed
    roles = {r["role"] for r in report["rows"]}
    assert {"baseline", "hardening", "monitoring_agent"} <= roles


def test_node_lost_mid_run_others_finish_and_rerun_converges(lab):
    target = plan_target(STACK, lab=lab.name)
    victim = lab.spec().nodes[2].name
    stopped = threading.Event()

    def on_event(shard, event):
        # Pull the plug once the run is under way on every host.
        task = event.get("event_data", {}).get("task", "")
        if event.get("event") == "playbook_on_task_start" and not stopped.is_set() and task.startswith("Write site hosts"):
            stopped.set()
            threading.Thread(target=lab.stop_node, args=(victim,), kwargs={"kill": True}).start()

    result = configure(target, on_event=on_event)
    assert stopped.is_set()
    statuses = {h.host: h.status for h in result.hosts.values()}
    assert statuses[victim] in ("unreachable", "failed"), statuses
    assert all(s in ("ok", "changed") for h, s in statuses.items() if h != victim), statuses
    assert not result.ok and result.hosts[victim].messages
    lab.start_node(victim)
    again = configure(target)
    assert again.ok, again.to_dict()

"""A wrong inventory fails at the role's first tasks with a message that names the option.

Every case is a host of one inventory whose host vars are the case's inputs (inventory
precedence, as in a real site), and one play includes each host's role. Validation runs on the
controller; the hosts point at a closed port, so a case whose inputs pass validation ends
"unreachable" at the first task that needs the node - nothing is ever touched.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.roles.helpers import tool, tool_env

SECRET = "s3cret-Password-that-must-not-leak"
VALID = {
    "hardening": {"hardening_banner_authority": "the Ministry of Testing"},
    "time_sync": {"time_sync_servers": ["ntp1.site.example"]},
    "kubernetes_node": {
        "kubernetes_node_api_server": "https://api.site.example:6443",
        "kubernetes_node_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "kubernetes_node_kubelet_source": "/opt/tools/kubelet",
        "kubernetes_node_kubelet_sha256": "0" * 64,
        "kubernetes_node_bootstrap_token": "abcdef.0123456789abcdef",
    },
    "kubernetes_control_plane": {
        "kubernetes_control_plane_binaries": {
            name: {"source": f"/opt/tools/{name}", "sha256": "0" * 64}
            for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        },
        "kubernetes_control_plane_members": [{"name": "mgmt1", "address": "10.0.0.11"}],
        "kubernetes_control_plane_member_name": "mgmt1",
        "kubernetes_control_plane_advertise_address": "10.0.0.11",
        "kubernetes_control_plane_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "kubernetes_control_plane_etcd_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
        "kubernetes_control_plane_ca_key": f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n",
        "kubernetes_control_plane_certificates": {
            name: {"cert": "-----BEGIN CERTIFICATE-----", "key": f"-----BEGIN PRIVATE KEY-----{SECRET}"}
            for name in ("etcd-server", "etcd-peer", "apiserver", "apiserver-etcd-client",
                         "apiserver-kubelet-client", "controller-manager", "scheduler", "admin")
        },
        "kubernetes_control_plane_service_account_key": f"-----BEGIN PRIVATE KEY-----{SECRET}",
        "kubernetes_control_plane_service_account_pub": "-----BEGIN PUBLIC KEY-----",
        "kubernetes_control_plane_encryption_key": "A" * 43 + "=",
        "kubernetes_control_plane_bootstrap_tokens": [{"token": "abcdef.0123456789abcdef", "expires": "2030-01-01T00:00:00Z"}],
    },
}

# case id -> (role, host vars, fragments the failure message must contain; None = inputs are valid)
CASES: dict[str, tuple[str, dict[str, Any], tuple[str, ...] | None]] = {
    "driver-mode-banana": ("nvidia_host", {"nvidia_host_driver_mode": "banana"}, ("nvidia_host_driver_mode", "banana")),
    "ntp-servers-string": ("time_sync", {"time_sync_servers": "ntp1.site.example"}, ("time_sync_servers", "must be a YAML list")),
    "ntp-servers-dict": ("time_sync", {"time_sync_servers": {"ntp1": "10.0.0.1"}}, ("time_sync_servers", "dict")),
    "ntp-servers-missing": ("time_sync", {}, ("missing required arguments: time_sync_servers",)),
    # hardening_banner_text's default names the authority, so the error is about it being undefined.
    "banner-authority-missing": ("hardening", {}, ("hardening_banner_authority",)),
    "password-auth-string": (
        "hardening",
        {**VALID["hardening"], "hardening_sshd_password_authentication": "no"},
        ("hardening_sshd_password_authentication", "must be true or false"),
    ),
    "auditd-state-choice": (
        "hardening",
        {**VALID["hardening"], "hardening_auditd_service_state": "sometimes"},
        ("hardening_auditd_service_state", "sometimes"),
    ),
    "journald-storage-choice": ("baseline", {"baseline_journald_storage": "disk"}, ("baseline_journald_storage", "disk")),
    "admin-without-name": (
        "baseline",
        {"baseline_admin_users": [{"ssh_keys": ["ssh-ed25519 AAAA admin"]}]},
        ("name", "baseline_admin_users"),
    ),
    "admin-keys-string": (
        "baseline",
        {"baseline_admin_users": [{"name": "alice", "ssh_keys": "ssh-ed25519 AAAA alice"}]},
        ("baseline_admin_users[0].ssh_keys", "must be a YAML list"),
    ),
    "admins-not-a-list": (
        "baseline",
        {"baseline_admin_users": "name: alice, password_hash: " + SECRET},
        # the spec rejects it and, as the option holds a secret, masks the value (and part of the name)
        ("is of type str", "unable to convert to dict"),
    ),
    "admin-password-hash-not-logged": (
        "baseline",
        {"baseline_admin_users": [{"name": "alice", "password_hash": SECRET, "state": "gone"}]},
        ("baseline_admin_users", "state"),
    ),
    "mirrors-list": ("container_runtime", {"container_runtime_registry_mirrors": ["https://mirror.site.example"]}, ("container_runtime_registry_mirrors", "dict")),
    "registry-auth-incomplete": (
        "container_runtime",
        {"container_runtime_registry_auths": [{"registry": "mirror.site.example", "password": SECRET}]},
        ("username", "container_runtime_registry_auths"),
    ),
    "fabric-mode-choice": (
        "infiniband",
        {"infiniband_interfaces": [{"name": "ib0", "mode": "infiniband", "address": "10.100.0.1/16"}]},
        ("mode", "infiniband_interfaces", "ipoib, roce"),
    ),
    "exporter-port-word": ("monitoring_agent", {"monitoring_agent_port": "ninety"}, ("monitoring_agent_port", "int")),
    "toolkit-repo-without-key": (
        "nvidia_host",
        {"nvidia_host_container_toolkit_repository": {"url": "https://mirror.site.example/libnvidia-container", "suite": "/"}},
        ("key_url", "nvidia_host_container_toolkit_repository"),
    ),
    "reboot-timeout-word": ("nvidia_host", {"nvidia_host_reboot_timeout": "soon"}, ("nvidia_host_reboot_timeout", "int")),
    "imex-not-bool": ("nvidia_host", {"nvidia_host_imex_enabled": "maybe"}, ("nvidia_host_imex_enabled",)),
    "swap-off-string": ("container_runtime", {"container_runtime_swap_off": "no"}, ("container_runtime_swap_off", "must be true or false")),
    "apt-mirrors-list": ("baseline", {"baseline_apt_mirrors": ["http://mirror.site.example/debian"]}, ("baseline_apt_mirrors", "dict")),
    "held-packages-string": ("baseline", {"baseline_held_packages": "linux-image-*"}, ("baseline_held_packages", "must be a YAML list")),
    "join-method-choice": (
        "kubernetes_node",
        {**VALID["kubernetes_node"], "kubernetes_node_join_method": "ssh"},
        ("kubernetes_node_join_method", "ssh"),
    ),
    "bootstrap-token-malformed": (
        "kubernetes_node",
        {**VALID["kubernetes_node"], "kubernetes_node_bootstrap_token": SECRET},
        ("kubernetes_node_bootstrap_token in the form",),
    ),
    "kubelet-checksum-missing": (
        "kubernetes_node",
        {**VALID["kubernetes_node"], "kubernetes_node_kubelet_sha256": ""},
        ("kubernetes_node_kubelet_sha256 (64 hex digits)",),
    ),
    "node-labels-list": (
        "kubernetes_node",
        {**VALID["kubernetes_node"], "kubernetes_node_labels": ["sovereign.io/site=a"]},
        ("kubernetes_node_labels", "dict"),
    ),
    "control-plane-binary-missing": (
        "kubernetes_control_plane",
        {**VALID["kubernetes_control_plane"], "kubernetes_control_plane_binaries": {
            k: v for k, v in VALID["kubernetes_control_plane"]["kubernetes_control_plane_binaries"].items() if k != "kube-scheduler"
        }},
        ("kubernetes_control_plane_binaries.kube-scheduler needs source",),
    ),
    "control-plane-certificate-missing": (
        "kubernetes_control_plane",
        {**VALID["kubernetes_control_plane"], "kubernetes_control_plane_certificates": {
            k: v for k, v in VALID["kubernetes_control_plane"]["kubernetes_control_plane_certificates"].items() if k != "admin"
        }},
        ("(missing: admin)",),
    ),
    "control-plane-encryption-key-short": (
        "kubernetes_control_plane",
        {**VALID["kubernetes_control_plane"], "kubernetes_control_plane_encryption_key": SECRET},
        ("_encryption_key (32 bytes, base64)",),
    ),
    "control-plane-not-a-member": (
        "kubernetes_control_plane",
        {**VALID["kubernetes_control_plane"], "kubernetes_control_plane_member_name": "mgmt2"},
        ("must name mgmt2 once",),
    ),
    # Valid inputs pass validation (no false alarms): they end at the closed port instead.
    "valid-kubernetes-control-plane": ("kubernetes_control_plane", VALID["kubernetes_control_plane"], None),
    "valid-kubernetes-node": ("kubernetes_node", VALID["kubernetes_node"], None),
    "valid-baseline": ("baseline", {}, None),
    "valid-hardening": ("hardening", VALID["hardening"], None),
    "valid-time-sync": ("time_sync", VALID["time_sync"], None),
    "valid-container-runtime": ("container_runtime", {"container_runtime_registry_mirrors": {"docker.io": ["https://m.example"]}}, None),
    "valid-nvidia-host": ("nvidia_host", {"nvidia_host_driver_mode": "host"}, None),
    "valid-nvidia-host-site-mirror": (
        "nvidia_host",
        {
            "nvidia_host_driver_mode": "host",
            "nvidia_host_container_toolkit_repository": {
                "url": "https://mirror.site.example/libnvidia-container/stable/deb/$(ARCH)",
                "key_url": "https://mirror.site.example/libnvidia-container/gpgkey",
                "suite": "/",
            },
            "nvidia_host_container_toolkit_version": "1.17.8-1",
            "nvidia_host_nvswitch": "true",
            "nvidia_host_nvlsm_enabled": True,
            "nvidia_host_drain_command": "kubectl drain {node} --ignore-daemonsets",
        },
        None,
    ),
    "valid-baseline-mirrors": ("baseline", {"baseline_apt_mirrors": {"deb.debian.org/debian": "http://m.example/debian"}}, None),
    "valid-infiniband": ("infiniband", {"infiniband_interfaces": [{"name": "ib0", "mode": "ipoib", "address": "10.100.0.1/16"}]}, None),
    "valid-monitoring-agent": ("monitoring_agent", {"monitoring_agent_port": 9100}, None),
}

PLAY = [
    {
        "name": "Validate inputs",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [{"name": "Run the role", "ansible.builtin.include_role": {"name": "{{ case_role }}"}}],
    }
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """host -> how its run ended, from one ansible-playbook run. ansible-core's `tree` callback
    writes each host's latest result to a file named after the host: for these cases, the result
    that stopped it (a validation failure, or unreachable at the closed port)."""
    tmp: Path = tmp_path_factory.mktemp("argspecs")
    hosts = {case: {"case_role": role, **inputs} for case, (role, inputs, _) in CASES.items()}
    inventory = {
        "all": {
            "hosts": hosts,
            "vars": {
                "ansible_connection": "ssh",
                "ansible_host": "127.0.0.1",
                "ansible_port": 9,  # discard: nothing listens, so a passing case is unreachable
                "ansible_user": "nobody",
                "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes",
                "ansible_python_interpreter": "/usr/bin/python3",
            },
        }
    }
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    tree = tmp / "results"
    out = subprocess.run(
        [tool("ansible-playbook"), "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml")],
        cwd=tmp,
        env=tool_env(
            ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
            ANSIBLE_CALLBACK_TREE_DIR=str(tree),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_HOST_KEY_CHECKING="false",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    results = {p.name: json.loads(p.read_text()) for p in tree.iterdir()} if tree.is_dir() else {}
    assert results, f"ansible-playbook wrote no results (rc {out.returncode}):\n{out.stdout}\n{out.stderr}"
    assert SECRET not in out.stdout + out.stderr + json.dumps(results), "a secret input reached the output"
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(case: str, outcomes: dict[str, dict[str, Any]]) -> None:
    role, _, fragments = CASES[case]
    result = outcomes.get(case)
    assert result is not None, f"{case}: the play neither failed nor stopped at the closed port"
    if fragments is None:
        assert result.get("unreachable"), f"{case}: valid {role} inputs were rejected: {result.get('msg')}"
        return
    assert not result.get("unreachable"), f"{case}: {role} accepted the wrong input and went on to the node"
    message = str(result.get("msg", ""))
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in the failure message:\n{message}"

"""Fast tier: the greenfield cluster's record of certificates, keys and token (nodeconfig/cluster_greenfield.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nodeconfig.cluster_greenfield import (
    RECORD,
    TOKEN_TTL,
    ensure_secrets,
    public_vars,
    secret_vars,
)
from nodeconfig.cluster_join import BINDINGS
from nodeconfig.cluster_pki import Member, Pem, ca_problem, issued_by, new_ca, subject_alt_ips

REPO = Path(__file__).resolve().parents[2]
CA = new_ca("test site CA")
MEMBERS = [Member("mgmt1", "10.0.0.11")]


def test_a_rerun_hands_out_the_same_secrets_and_leaves_the_record_alone(tmp_path: Path) -> None:
    first = ensure_secrets(tmp_path, CA, MEMBERS)
    written = (tmp_path / RECORD).read_text()
    mtime = (tmp_path / RECORD).stat().st_mtime_ns
    again = ensure_secrets(tmp_path, CA, MEMBERS)
    assert again.to_json() == first.to_json()
    assert (tmp_path / RECORD).read_text() == written and (tmp_path / RECORD).stat().st_mtime_ns == mtime
    assert (tmp_path / RECORD).stat().st_mode & 0o777 == 0o600


def test_certificates_come_from_the_site_ca_and_etcd_from_its_own(tmp_path: Path) -> None:
    record = ensure_secrets(tmp_path, CA, MEMBERS)
    pairs = record.certificates["mgmt1"]
    for name in ("apiserver", "apiserver-kubelet-client", "controller-manager", "scheduler", "admin"):
        assert issued_by(pairs[name].cert, CA), name
    for name in ("etcd-server", "etcd-peer", "apiserver-etcd-client"):
        assert issued_by(pairs[name].cert, record.etcd_ca) and not issued_by(pairs[name].cert, CA), name
    assert {"127.0.0.1", "10.0.0.11", "10.96.0.1"} <= subject_alt_ips(pairs["apiserver"].cert)
    admin = x509.load_pem_x509_certificate(pairs["admin"].cert.encode())
    assert admin.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)[0].value == "system:masters"


def test_a_new_address_or_another_ca_reissues_only_what_it_must(tmp_path: Path) -> None:
    first = ensure_secrets(tmp_path, CA, MEMBERS)
    moved = ensure_secrets(tmp_path, CA, [Member("mgmt1", "10.0.0.12")])
    assert "10.0.0.12" in subject_alt_ips(moved.certificates["mgmt1"]["apiserver"].cert)
    # The encryption key never changes: Secrets written with it must stay readable.
    assert moved.encryption_key == first.encryption_key and moved.token == first.token
    other = new_ca("another CA")
    reissued = ensure_secrets(tmp_path, other, [Member("mgmt1", "10.0.0.12")])
    assert issued_by(reissued.certificates["mgmt1"]["apiserver"].cert, other)
    assert reissued.encryption_key == first.encryption_key


def test_the_token_is_replaced_when_it_would_expire_soon(tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = ensure_secrets(tmp_path, CA, MEMBERS, now=start)
    same = ensure_secrets(tmp_path, CA, MEMBERS, now=start + dt.timedelta(hours=12))
    assert same.token == first.token
    later = ensure_secrets(tmp_path, CA, MEMBERS, now=start + TOKEN_TTL - dt.timedelta(minutes=30))
    assert later.token != first.token
    assert later.token_expires == "2026-01-02T23:30:00Z"


def test_no_key_or_token_is_a_public_variable(tmp_path: Path) -> None:
    record = ensure_secrets(tmp_path, CA, MEMBERS)
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"):
        (tools / name).write_bytes(name.encode())
    public = json.dumps(public_vars(CA, MEMBERS, tools, "1.34.2"))
    assert "PRIVATE KEY" not in public and record.token not in public and record.encryption_key not in public
    secret = secret_vars(CA, record)
    assert secret["kubernetes_node_bootstrap_token"] == record.token
    assert json.loads(public)["kubernetes_node_api_server"] == "https://10.0.0.11:6443"


def test_the_role_binds_what_the_lab_join_binds() -> None:
    """The role creates the same TLS-bootstrap bindings as an expand join does (nodeconfig/cluster_join.py,
    what kubeadm creates)."""
    role = yaml.safe_load((REPO / "roles/kubernetes_control_plane/vars/main.yml").read_text())
    bindings = {b["name"]: (b["kind"], b["subject"], b["role"]) for b in role["__kubernetes_control_plane_bindings"]}
    assert {name: ("Group", group, role) for name, (group, role) in BINDINGS.items()}.items() <= bindings.items()


def test_a_greenfield_inventory_runs_the_control_plane_on_management_and_joins_the_rest(tmp_path: Path) -> None:
    from nodeconfig.cluster_greenfield import with_cluster
    from nodeconfig.inventory import build_inventory, lab_hosts, site_vars
    from stacks.design.loader import load_and_design
    from stacks.design.node_labels import ROLE, SITE, SU

    partnership, design = load_and_design("ke-staging")
    site, site_design = partnership.sites[0], design.sites[0]
    lab_nodes = [{"name": f"n{i}", "ip": f"10.9.0.{10 + i}"} for i in (1, 2, 3)]
    inventory = build_inventory(lab_hosts(site_design, lab_nodes), site_vars(partnership, site, site_design, []))
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"):
        (tools / name).write_bytes(name.encode())
    result, secret = with_cluster(inventory, site.name, CA, tmp_path / "state", tools_bin=tools, version="1.34.2")
    group = result["all"]["vars"]
    assert group["sovereign_kubernetes_greenfield"] is True
    assert group["kubernetes_control_plane_members"] == [{"name": "n1", "address": "10.9.0.11"}]
    assert group["kubernetes_node_api_server"] == "https://10.9.0.11:6443"
    assert set(secret["sovereign_cluster_certificates"]) == {"n1"}
    children = result["all"]["children"]
    storage = children["storage"]["hosts"]["n2"]
    gpu = next(iter(children["gpu"]["children"].values()))["hosts"]["n3"]
    assert storage["kubernetes_node_labels"][ROLE] == "storage" and gpu["kubernetes_node_labels"][ROLE] == "gpu"
    assert gpu["kubernetes_node_labels"][SITE] == site.name and gpu["kubernetes_node_labels"][SU] == "su01"
    assert storage["kubernetes_node_pod_cidr"] != gpu["kubernetes_node_pod_cidr"]
    assert "PRIVATE KEY" not in json.dumps(result)


def test_certificates_of_a_short_lived_ca_are_not_renewed_on_every_run(tmp_path: Path) -> None:
    """The lab's CA lives a month: its certificates end with it, yet a rerun keeps them."""
    short = new_ca("lab CA", validity=dt.timedelta(days=30))
    first = ensure_secrets(tmp_path, short, MEMBERS)
    assert ensure_secrets(tmp_path, short, MEMBERS).certificates == first.certificates
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=21)
    assert ensure_secrets(tmp_path, short, MEMBERS, now=late).certificates != first.certificates


def test_configure_cluster_is_refused_for_expand_stacks_and_needs_the_site_ca_on_real_sites(monkeypatch) -> None:
    """The engine's side (secrets set with `pulumi config set`) is tests/engine/test_site_ca_secret.py."""
    from click.testing import CliRunner

    from cli.main import cli
    from stacks import automation

    monkeypatch.setattr(automation, "stack_config", lambda _stack, _keys: {})
    for args, field, message in (
        (("de-staging", "--cluster"), "--cluster", "only a greenfield stack bootstraps its cluster; this one is expand"),
        (("ke-staging", "--cluster"), "config.sovereign:site_ca_cert", "pulumi config set -s ke-staging sovereign:site_ca_cert"),
    ):
        result = CliRunner().invoke(cli, ["configure", *args, "--json"])
        assert result.exit_code == 2, result.output
        problem = json.loads(result.stdout)["problems"][0]
        assert problem["field"] == field and message in problem["message"], problem


def _self_signed(ca: bool, key_cert_sign: bool = True, days: int = 365) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some CA")])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, key_cert_sign, key_cert_sign, False, False),
                              critical=True))
    cert = builder.sign(key, hashes.SHA256())
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(),
               key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode())


def test_a_site_ca_from_outside_is_checked_before_anything_is_issued_from_it() -> None:
    other = new_ca("another CA")
    assert ca_problem(CA) is None
    assert ca_problem(_self_signed(ca=True)) is None  # an RSA-or-EC CA made elsewhere, keyUsage included
    cases = {
        "not a PEM X.509 certificate": Pem("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", CA.key),
        "not an unencrypted PEM private key": Pem(CA.cert, "ssh-ed25519 AAAA"),
        "not a CA certificate": _self_signed(ca=False),
        "may not sign certificates": _self_signed(ca=True, key_cert_sign=False),
        "renew it first": _self_signed(ca=True, days=10),
        "does not belong to the CA certificate": Pem(CA.cert, other.key),
    }
    for message, pem in cases.items():
        problem = ca_problem(pem)
        assert problem is not None and message in problem, (message, problem)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=4000)
    assert "not now" in (ca_problem(CA, now=later) or "")

"""What a greenfield site's cluster needs from the controller: the control plane's certificates and
keys, the Secrets encryption key, a join token, and the role variables that carry them.

The site CA is the stack's (its secrets file, or in the lab the lab's CA, which also certifies the
lab's registry). Everything derived from it is kept in one record on the controller,
`<configure state>/cluster-secrets.json` (0600), so a rerun hands the roles the same certificates,
the same encryption key and the same token, and the roles change nothing. A record is renewed
piecewise: certificates of another CA, for another address or within `RENEW_BEFORE` of expiry are
issued again (or a third of their lifetime, when that is
shorter); the token is replaced when it has less than `TOKEN_MIN_LEFT` to live.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodeconfig.cluster_pki import (
    Member,
    Pem,
    expires,
    issued_by,
    lifetime,
    member_certificates,
    new_ca,
    service_account_key,
    subject_alt_ips,
)
from stacks.design import atomic

RECORD = "cluster-secrets.json"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DNS = "10.96.0.10"
API_PORT = 6443
RENEW_BEFORE = dt.timedelta(days=30)
TOKEN_TTL = dt.timedelta(hours=24)
TOKEN_MIN_LEFT = dt.timedelta(hours=2)
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
_TOKEN_CHARS = string.ascii_lowercase + string.digits


@dataclass
class ClusterSecrets:
    etcd_ca: Pem
    service_account: Pem  # cert: the public key PEM
    encryption_key: str  # base64 of 32 bytes
    certificates: dict[str, dict[str, Pem]]  # member -> name -> pair
    token: str
    token_expires: str  # RFC 3339

    def to_json(self) -> dict[str, Any]:
        return {
            "etcd_ca": self.etcd_ca.to_json(),
            "service_account": self.service_account.to_json(),
            "encryption_key": self.encryption_key,
            "certificates": {m: {n: p.to_json() for n, p in c.items()} for m, c in self.certificates.items()},
            "token": self.token,
            "token_expires": self.token_expires,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterSecrets:
        return cls(
            etcd_ca=Pem(**data["etcd_ca"]),
            service_account=Pem(**data["service_account"]),
            encryption_key=data["encryption_key"],
            certificates={m: {n: Pem(**p) for n, p in c.items()} for m, c in data["certificates"].items()},
            token=data["token"],
            token_expires=data["token_expires"],
        )


def new_token() -> str:
    return "".join(secrets.choice(_TOKEN_CHARS) for _ in range(6)) + "." + "".join(
        secrets.choice(_TOKEN_CHARS) for _ in range(16)
    )


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _current(pairs: dict[str, Pem] | None, site_ca: Pem, etcd_ca: Pem, member: Member, now: dt.datetime) -> bool:
    """True when a member's recorded certificates may be handed out again unchanged."""
    if not pairs:
        return False
    if not (issued_by(pairs["apiserver"].cert, site_ca) and issued_by(pairs["etcd-server"].cert, etcd_ca)):
        return False
    if member.address not in subject_alt_ips(pairs["apiserver"].cert):
        return False
    # A third of the lifetime when that is shorter: certificates of a short-lived CA (the lab's
    # lives a month) are capped at its expiry and would otherwise be renewed on every run.
    return all(expires(p.cert) - now > min(RENEW_BEFORE, lifetime(p.cert) / 3) for p in pairs.values())


def ensure_secrets(
    state_dir: Path, site_ca: Pem, members: list[Member], *, now: dt.datetime | None = None
) -> ClusterSecrets:
    """The record under `state_dir`, created or renewed where needed, written back 0600."""
    moment = now or dt.datetime.now(dt.UTC)
    path = state_dir / RECORD
    record = ClusterSecrets.from_json(json.loads(path.read_text())) if path.is_file() else None
    if record is None:
        record = ClusterSecrets(
            etcd_ca=new_ca("sovereign etcd CA"),
            service_account=service_account_key(),
            encryption_key=base64.b64encode(os.urandom(32)).decode(),
            certificates={},
            token="",
            token_expires=_stamp(moment),
        )
    before = json.dumps(record.to_json(), sort_keys=True)
    for member in members:
        if not _current(record.certificates.get(member.name), site_ca, record.etcd_ca, member, moment):
            record.certificates[member.name] = member_certificates(
                site_ca, record.etcd_ca, member, service_cidr=SERVICE_CIDR
            )
    if not record.token or _parse(record.token_expires) - moment < TOKEN_MIN_LEFT:
        record.token, record.token_expires = new_token(), _stamp(moment + TOKEN_TTL)
    if json.dumps(record.to_json(), sort_keys=True) != before or not path.is_file():
        atomic.write_file(path, json.dumps(record.to_json(), indent=1), mode=0o600)
    return record


def binaries(tools_bin: Path) -> dict[str, dict[str, str]]:
    from nodeconfig.cluster_join import file_sha256

    return {name: {"source": str(tools_bin / name), "sha256": file_sha256(tools_bin / name)}
            for name in CONTROL_PLANE_BINARIES}


def public_vars(site_ca: Pem, members: list[Member], tools_bin: Path, version: str) -> dict[str, Any]:
    """Group variables for both roles; nothing secret (certificates' keys, tokens) is among them."""
    from nodeconfig.cluster_join import file_sha256

    kubelet = tools_bin / "kubelet"
    return {
        "kubernetes_control_plane_version": version,
        "kubernetes_control_plane_binaries": binaries(tools_bin),
        "kubernetes_control_plane_members": [{"name": m.name, "address": m.address} for m in members],
        "kubernetes_control_plane_service_cidr": SERVICE_CIDR,
        "kubernetes_control_plane_apiserver_port": API_PORT,
        "kubernetes_control_plane_ca_cert": site_ca.cert,
        "kubernetes_node_version": version,
        "kubernetes_node_kubelet_source": str(kubelet),
        "kubernetes_node_kubelet_sha256": file_sha256(kubelet),
        # The first management node: a site with several puts its load balancer's name here.
        "kubernetes_node_api_server": f"https://{members[0].address}:{API_PORT}",
        "kubernetes_node_ca_cert": site_ca.cert,
        "kubernetes_node_cluster_dns": [CLUSTER_DNS],
    }


def secret_vars(site_ca: Pem, record: ClusterSecrets) -> dict[str, Any]:
    """Extra variables (the runner's 0600 secrets file): keys, the encryption key and the token.
    Certificates are per management node: the play picks `sovereign_cluster_certificates[host]`."""
    return {
        "kubernetes_control_plane_etcd_ca_cert": record.etcd_ca.cert,
        "kubernetes_control_plane_ca_key": site_ca.key,
        "sovereign_cluster_certificates": {
            member: {name: pair.to_json() for name, pair in pairs.items()}
            for member, pairs in record.certificates.items()
        },
        "kubernetes_control_plane_service_account_key": record.service_account.key,
        "kubernetes_control_plane_service_account_pub": record.service_account.cert,
        "kubernetes_control_plane_encryption_key": record.encryption_key,
        "kubernetes_control_plane_bootstrap_tokens": [{"token": record.token, "expires": record.token_expires}],
        "kubernetes_node_bootstrap_token": record.token,
    }


POD_NETWORK = "10.244.{index}.0/24"  # per node, a plain bridge until the platform layer brings a CNI


def members_of(inventory: dict[str, Any]) -> list[Member]:
    hosts = inventory["all"]["children"]["management"]["hosts"]
    return [Member(name, host["ansible_host"]) for name, host in hosts.items()]


def kubelet_hosts(inventory: dict[str, Any]) -> list[tuple[str, str, int | None, dict[str, Any]]]:
    """(name, group, SU, host vars) of every node that joins: GPU nodes by SU, then storage."""
    children = inventory["all"]["children"]
    found: list[tuple[str, str, int | None, dict[str, Any]]] = [
        (name, "gpu", int(su.removeprefix("su")), host)
        for su, group in children["gpu"]["children"].items()
        for name, host in group["hosts"].items()
    ]
    found += [(name, "storage", None, host) for name, host in children["storage"]["hosts"].items()]
    return found


def with_cluster(
    inventory: dict[str, Any], site: str, site_ca: Pem, state_dir: Path, *, tools_bin: Path, version: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The inventory with both roles' inputs (group and host vars), and the secret extra vars.
    Raises ValueError when the site has no management node to run the control plane on."""
    from stacks.design.node_labels import topology_labels

    members = members_of(inventory)
    if not members:
        raise ValueError("a greenfield cluster needs a management node; the inventory has none")
    record = ensure_secrets(state_dir, site_ca, members)
    everything = inventory["all"]
    group_vars = {**everything["vars"], **public_vars(site_ca, members, tools_bin, version),
                  "sovereign_kubernetes_greenfield": True}
    for index, (_name, group, su, host) in enumerate(kubelet_hosts(inventory), start=1):
        host["kubernetes_node_labels"] = topology_labels(site, group, rack=int(host.get("sovereign_rack", 1)), su=su)
        host["kubernetes_node_pod_cidr"] = POD_NETWORK.format(index=index)
    return {**inventory, "all": {**everything, "vars": group_vars}}, secret_vars(site_ca, record)

def main(argv: list[str]) -> int:
    """`python -m nodeconfig.cluster_greenfield lab-vars LAB DIR`: both roles' variables for a lab's
    first node as the only member, from the lab's CA, into DIR/cluster-vars.json (0600), for
    Molecule's prepare step (the record stays in DIR, so the idempotence step gets the same)."""
    import sys

    from lab.nodes import NodeLab
    from lab.pki import LabCA
    from toolchain import pins

    if len(argv) != 3 or argv[0] != "lab-vars":
        print("usage: python -m nodeconfig.cluster_greenfield lab-vars LAB DIR", file=sys.stderr)
        return 2
    node_lab = NodeLab(argv[1])
    spec = node_lab.spec()
    if spec is None or not spec.nodes:
        print(f"error: lab {argv[1]} has no nodes", file=sys.stderr)
        return 1
    ca = LabCA(node_lab.dir / "kube" / "pki", node_lab.name)
    site_ca = Pem(ca.ca.cert.read_text(), ca.ca.key.read_text())
    members = [Member(spec.nodes[0].name, spec.nodes[0].ip)]
    out = Path(argv[2])
    record = ensure_secrets(out, site_ca, members)
    found = {**public_vars(site_ca, members, pins.tools_dir() / "bin", pins.KUBERNETES), **secret_vars(site_ca, record)}
    atomic.write_file(out / "cluster-vars.json", json.dumps(found), mode=0o600)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))

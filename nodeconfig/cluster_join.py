"""The cluster side of a node join: what `configure` asks of the cluster the new nodes join.

An expand site's new nodes join the partnership's existing cluster; `configure` reaches it with
the kubeconfig the stack holds as a secret (or, with `--lab`, the lab's). Before any node changes
it checks the cluster's minor version against the one the roles pin, makes sure the RBAC bindings
TLS bootstrap needs exist (a kubeadm cluster has them: nothing is created there), and creates one
short-lived bootstrap token, deleted again when the run ends. Nothing else on the cluster changes.

The token and the kubeconfig's credentials live in memory and in 0600 files on memory-backed
storage that are removed at once; the caller passes the token to Ansible as a secret only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
import shutil
import string
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.kubeapi import ApiError, Credentials, KubeApi

EXIT_FAILED = 1

BOOTSTRAPPERS = "system:bootstrappers"
# The group kubeadm gives its node-join tokens, and binds the roles below to. Our tokens carry it
# too, so on a kubeadm cluster the bindings it already has cover them and nothing is created.
KUBEADM_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
NODE_CLIENT = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
SELF_NODE_CLIENT = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
# name -> (subject group, cluster role). A binding of the same role to the same group under any
# name (kubeadm's are `kubeadm:kubelet-bootstrap`, ...) counts as present.
BINDINGS = {
    # Tokens may create CSRs; CSRs of bootstrappers for node client certificates are approved.
    "sovereign:kubelet-bootstrap": (BOOTSTRAPPERS, "system:node-bootstrapper"),
    "sovereign:node-autoapprove-bootstrap": (BOOTSTRAPPERS, NODE_CLIENT),
    # Nodes renew their own client certificates (rotateCertificates).
    "sovereign:node-autoapprove-certificate-rotation": ("system:nodes", SELF_NODE_CLIENT),
}
_TOKEN_CHARS = string.ascii_lowercase + string.digits
TOKEN_TTL = dt.timedelta(hours=2)  # covers a long run; the token is deleted when the run ends


class JoinError(Exception):
    """The cluster cannot take the nodes (or cannot be reached); nothing on the nodes changed."""

    exit_code = EXIT_FAILED


# --- reaching the cluster ---------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """What a kubeconfig's current context says: the server, its CA and the user's credentials."""

    server: str
    ca_pem: str
    cert_pem: str | None = field(default=None, repr=False)
    key_pem: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


def parse_kubeconfig(text: str, where: str) -> Endpoint:
    """`where` names the kubeconfig's source (the stack secret) in errors; no value is ever quoted."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        raise JoinError(f"{where}: not a kubeconfig (not YAML)") from None
    if not isinstance(config, dict):
        raise JoinError(f"{where}: not a kubeconfig (expected a mapping)")

    def named(kind: str, name: str | None) -> dict[str, Any]:
        entries = [e for e in config.get(f"{kind}s") or [] if isinstance(e, dict)]
        chosen = next((e for e in entries if e.get("name") == name), entries[0] if entries and name is None else None)
        if chosen is None or not isinstance(chosen.get(kind), dict):
            raise JoinError(f"{where}: the kubeconfig has no {kind} {name or ''}".rstrip())
        return dict(chosen[kind])

    contexts = [c for c in config.get("contexts") or [] if isinstance(c, dict)]
    current = config.get("current-context")
    context = next((c.get("context") for c in contexts if c.get("name") == current), None)
    if context is None and contexts:
        context = contexts[0].get("context")
    context = context if isinstance(context, dict) else {}
    cluster = named("cluster", context.get("cluster"))
    user = named("user", context.get("user"))
    server = str(cluster.get("server") or "")
    if not server.startswith("https://"):
        raise JoinError(f"{where}: the kubeconfig's cluster server must be an https:// URL")
    ca = _pem(cluster, "certificate-authority", where)
    if ca is None:
        raise JoinError(f"{where}: the kubeconfig names no certificate-authority(-data) for its cluster")
    cert, key = _pem(user, "client-certificate", where), _pem(user, "client-key", where)
    token = user.get("token")
    if not (cert and key) and not token:
        raise JoinError(f"{where}: the kubeconfig's user has neither a client certificate and key nor a token")
    return Endpoint(server, ca, cert, key, str(token) if token else None)


def _pem(entry: dict[str, Any], key: str, where: str) -> str | None:
    if entry.get(f"{key}-data"):
        try:
            return base64.b64decode(str(entry[f"{key}-data"])).decode()
        except (ValueError, UnicodeDecodeError):
            raise JoinError(f"{where}: {key}-data is not base64 PEM") from None
    if entry.get(key):
        try:
            return Path(str(entry[key])).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise JoinError(f"{where}: cannot read the kubeconfig's {key} {entry[key]}: {exc.strerror}") from None
    return None


@contextmanager
def connect(endpoint: Endpoint) -> Iterator[KubeApi]:
    """A client for the cluster; its key sits in a 0600 file on memory-backed storage while it lives
    (Python's TLS takes a client key from a file only)."""
    url = urllib.parse.urlsplit(endpoint.server)
    if url.hostname is None:
        raise JoinError(f"no host in the API server URL {endpoint.server}")
    folder = Path(tempfile.mkdtemp(prefix="sovereign-join-", dir=_memory_dir()))
    try:
        files = {}
        for name, text in (("ca.crt", endpoint.ca_pem), ("client.crt", endpoint.cert_pem), ("client.key", endpoint.key_pem)):
            if text:
                path = folder / name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                files[name] = path
        creds = Credentials(url.hostname, url.port or 443, files["ca.crt"], files.get("client.crt"),
                            files.get("client.key"), endpoint.token)
        try:
            api = KubeApi(creds, timeout=15)
        except OSError as exc:  # ssl.SSLError included: a CA or key that does not load
            raise JoinError(f"the kubeconfig's certificates for {endpoint.server} do not load: {exc}") from None
        yield api
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _memory_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


# --- checks and changes on the cluster ---------------------------------------------------------


def server_version(api: KubeApi, server: str) -> str:
    """The cluster's gitVersion, e.g. v1.34.2."""
    try:
        info = api.get("/version")
    except ApiError as exc:
        raise JoinError(f"the API server {server} refused /version: HTTP {exc.status}") from None
    except OSError as exc:
        raise JoinError(f"the API server {server} cannot be reached: {exc}") from None
    return str(info.get("gitVersion", ""))


def minor(version: str) -> str:
    parts = version.lstrip("v").split(".")
    return ".".join(parts[:2])


def check_version(server_git_version: str, pinned: str, server: str) -> None:
    if minor(server_git_version) != minor(pinned):
        raise JoinError(
            f"the cluster at {server} runs {server_git_version}, the roles pin kubelet {pinned}: joining a "
            f"cluster of another minor version is refused (no node was changed)"
        )


def missing_bindings(api: KubeApi) -> dict[str, tuple[str, str]]:
    """The TLS bootstrap bindings the cluster lacks (a role bound to the group, or for the
    bootstrappers' roles to kubeadm's token group, counts as present)."""
    items = api.get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")["items"]
    bound: set[tuple[str, str]] = set()
    for item in items:
        role = (item.get("roleRef") or {}).get("name", "")
        for subject in item.get("subjects") or []:
            if subject.get("kind") == "Group":
                bound.add((subject.get("name", ""), role))
    missing = {}
    for name, (group, role) in BINDINGS.items():
        groups = {group, KUBEADM_TOKEN_GROUP} if group == BOOTSTRAPPERS else {group}
        if not any((g, role) in bound for g in groups):
            missing[name] = (group, role)
    return missing


def ensure_bootstrap_rbac(api: KubeApi) -> list[str]:
    """Create the bindings TLS bootstrap needs that the cluster lacks; returns their names."""
    created = []
    for name, (group, role) in missing_bindings(api).items():
        api.create(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "sovereign"}},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
            },
        )
        created.append(name)
    return created


def create_bootstrap_token(api: KubeApi, ttl: dt.timedelta = TOKEN_TTL) -> str:
    """A new bootstrap token for node joins, expiring after `ttl`."""
    token_id = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(6))
    token_secret = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(16))
    expires = (dt.datetime.now(dt.UTC) + ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system",
                     "labels": {"app.kubernetes.io/managed-by": "sovereign"}},
        "stringData": {
            "token-id": token_id,
            "token-secret": token_secret,
            "expiration": expires,
            "usage-bootstrap-authentication": "true",
            "auth-extra-groups": KUBEADM_TOKEN_GROUP,
            "description": "node join (sovereign configure)",
        },
    }
    try:
        api.create("/api/v1/namespaces/kube-system/secrets", body)
    except ApiError as exc:
        raise JoinError(f"creating a bootstrap token failed: HTTP {exc.status}") from None
    return f"{token_id}.{token_secret}"


def delete_bootstrap_token(api: KubeApi, token: str) -> None:
    try:
        api.delete(f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{token.split('.')[0]}")
    except ApiError as exc:
        if exc.status != 404:
            raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- one join, for one configure run ----------------------------------------------------------


@dataclass(frozen=True)
class Join:
    """What the kubernetes_node play needs: role variables (public) and the token (secret)."""

    role_vars: dict[str, Any]
    token: str = field(repr=False)
    server_version: str
    created_bindings: tuple[str, ...]


@contextmanager
def join_session(endpoint: Endpoint, *, kubelet: Path, pinned: str) -> Iterator[Join]:
    """Check the cluster, then a token that lives as long as the block: deleted on the way out."""
    if not kubelet.is_file():
        raise JoinError(f"the pinned kubelet {kubelet} is not built: run `sovereign tools install`")
    with connect(endpoint) as api:
        version = server_version(api, endpoint.server)
        check_version(version, pinned, endpoint.server)
        try:
            created = ensure_bootstrap_rbac(api)
        except ApiError as exc:
            raise JoinError(f"checking the bootstrap RBAC bindings on {endpoint.server} failed: HTTP {exc.status}") from None
        token = create_bootstrap_token(api)
        try:
            yield Join(
                role_vars={
                    "kubernetes_node_api_server": endpoint.server,
                    "kubernetes_node_ca_cert": endpoint.ca_pem,
                    "kubernetes_node_version": pinned,
                    "kubernetes_node_kubelet_source": str(kubelet),
                    "kubernetes_node_kubelet_sha256": file_sha256(kubelet),
                },
                token=token,
                server_version=version,
                created_bindings=tuple(created),
            )
        finally:
            delete_bootstrap_token(api, token)

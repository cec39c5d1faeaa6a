"""Fast tier: what configure asks of an existing cluster, and how the join reaches the play.

The real cluster is tests/roles/test_expand_join_lab.py; here a recording stand-in for the API.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodeconfig import cluster_join
from nodeconfig.cluster_join import (
    BINDINGS,
    KUBEADM_TOKEN_GROUP,
    JoinError,
    check_version,
    ensure_bootstrap_rbac,
    join_session,
    missing_bindings,
    parse_kubeconfig,
)
from nodeconfig.configure import ClusterSource, _runs_tag, _with_join, configure, join_hosts, plan_target
from nodeconfig.runner import Shard, _limited
from stacks.design.node_labels import RACK, ROLE, SITE, SU

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(user: dict[str, Any], server: str = "https://api.example:6443") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "admin@c",
        "clusters": [{"name": "other", "cluster": {"server": "https://wrong:1"}},
                     {"name": "c", "cluster": {"server": server, "certificate-authority-data": b64(CA)}}],
        "users": [{"name": "admin", "user": user}],
        "contexts": [{"name": "admin@c", "context": {"cluster": "c", "user": "admin"}}],
    })


def test_a_kubeconfig_gives_server_ca_and_credentials_of_its_current_context() -> None:
    endpoint = parse_kubeconfig(kubeconfig({"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")}), "s")
    assert (endpoint.server, endpoint.ca_pem) == ("https://api.example:6443", CA)
    assert (endpoint.cert_pem, endpoint.key_pem) == ("CERT", "KEY")
    assert "KEY" not in repr(endpoint)  # credentials stay out of any log line
    token = parse_kubeconfig(kubeconfig({"token": "abc"}), "s")
    assert token.token == "abc" and token.cert_pem is None and "abc" not in repr(token)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[unclosed", "not a kubeconfig"),
        ("- a list", "not a kubeconfig"),
        (kubeconfig({}), "neither a client certificate and key nor a token"),
        (kubeconfig({"token": "t"}, server="http://api:8080"), "must be an https:// URL"),
        (kubeconfig({"client-certificate": "/nonexistent/c.crt", "client-key-data": b64("K")}), "cannot read"),
    ],
)
def test_a_bad_kubeconfig_is_a_clear_error_naming_its_source_not_its_content(text: str, message: str) -> None:
    with pytest.raises(JoinError, match=message) as err:
        parse_kubeconfig(text, "Pulumi.x.yaml: config.sovereign:kc")
    assert str(err.value).startswith("Pulumi.x.yaml: config.sovereign:kc")
    assert "t\"" not in str(err.value)


def test_another_minor_version_is_refused_naming_both() -> None:
    check_version("v1.34.7", "1.34.2", "https://api")  # patch releases differ: fine
    with pytest.raises(JoinError) as err:
        check_version("v1.33.4", "1.34.2", "https://api")
    assert "runs v1.33.4, the roles pin kubelet 1.34.2" in str(err.value)


class FakeApi:
    """Records what would change on the cluster."""

    def __init__(self, bindings: list[dict[str, Any]], version: str = "v1.34.2"):
        self.bindings, self.version = bindings, version
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[str] = []

    def get(self, path: str, **_query: str) -> Any:
        if path == "/version":
            return {"gitVersion": self.version}
        assert path.endswith("/clusterrolebindings")
        return {"items": self.bindings}

    def create(self, path: str, obj: dict[str, Any]) -> Any:
        self.created.append((path, obj))
        return obj

    def delete(self, path: str) -> Any:
        self.deleted.append(path)


def _binding(name: str, group: str, role: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "roleRef": {"name": role}, "subjects": [{"kind": "Group", "name": group}]}


KUBEADM = [
    _binding("kubeadm:kubelet-bootstrap", KUBEADM_TOKEN_GROUP, "system:node-bootstrapper"),
    _binding("kubeadm:node-autoapprove-bootstrap", KUBEADM_TOKEN_GROUP, cluster_join.NODE_CLIENT),
    _binding("kubeadm:node-autoapprove-certificate-rotation", "system:nodes", cluster_join.SELF_NODE_CLIENT),
]


def test_a_kubeadm_cluster_gets_no_binding_and_a_bare_one_gets_the_three() -> None:
    kubeadm = FakeApi(KUBEADM)
    assert ensure_bootstrap_rbac(kubeadm) == [] and kubeadm.created == []  # type: ignore[arg-type]
    bare = FakeApi([])
    assert ensure_bootstrap_rbac(bare) == list(BINDINGS)  # type: ignore[arg-type]
    partly = FakeApi(KUBEADM[:1])
    assert set(missing_bindings(partly)) == set(list(BINDINGS)[1:])  # type: ignore[arg-type]


def _endpoint() -> cluster_join.Endpoint:
    return cluster_join.Endpoint("https://api.example:6443", CA, token="admin-token")


def test_a_join_checks_the_version_first_and_deletes_its_token_afterwards(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kubelet = tmp_path / "kubelet"
    kubelet.write_bytes(b"binary")
    api = FakeApi(KUBEADM, version="v1.33.1")
    monkeypatch.setattr(cluster_join, "connect", lambda _e: _Ctx(api))
    with pytest.raises(JoinError, match="another minor version"):
        with join_session(_endpoint(), kubelet=kubelet, pinned="1.34.2"):
            pytest.fail("no join")
    assert api.created == []  # refused before any change on the cluster

    api.version = "v1.34.0"
    with join_session(_endpoint(), kubelet=kubelet, pinned="1.34.2") as join:
        (_path, secret), = api.created
        assert secret["type"] == "bootstrap.kubernetes.io/token"
        assert secret["stringData"]["auth-extra-groups"] == KUBEADM_TOKEN_GROUP
        assert join.token.startswith(secret["stringData"]["token-id"] + ".")
        assert join.token not in repr(join)
        assert join.role_vars["kubernetes_node_api_server"] == "https://api.example:6443"
        assert len(join.role_vars["kubernetes_node_kubelet_sha256"]) == 64
    assert api.deleted == [f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{join.token.split('.')[0]}"]


class _Ctx:
    def __init__(self, api: FakeApi):
        self.api = api

    def __enter__(self) -> FakeApi:
        return self.api

    def __exit__(self, *_exc: object) -> None:
        return None


def test_an_expand_stack_joins_through_its_kubeconfig_secret_and_a_greenfield_one_does_not() -> None:
    target = plan_target("de-staging")
    assert target.cluster is not None
    assert target.cluster.where.endswith("Pulumi.de-staging.yaml: config.sovereign:garching-kubeconfig")
    assert plan_target("ke-staging").cluster is None


def test_the_joining_nodes_get_the_design_labels_and_the_join_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    target = plan_target("de-staging")
    inventory = _with_join(target, {"kubernetes_node_api_server": "https://api:6443"})
    assert inventory["all"]["vars"]["kubernetes_node_api_server"] == "https://api:6443"
    assert "kubernetes_node_api_server" not in target.inventory["all"]["vars"]  # the target is left alone
    joining = join_hosts(inventory)
    assert joining and {g for g, _su, _e in joining.values()} == {"gpu", "storage"}
    for group, su, entry in joining.values():
        labels = entry["kubernetes_node_labels"]
        assert labels[SITE] == "garching-1" and labels[ROLE] == group
        assert labels[RACK] == f"{entry['sovereign_rack']:04d}"
        assert labels.get(SU) == (su if group == "gpu" else None)
    management = inventory["all"]["children"]["management"]["hosts"]
    assert all("kubernetes_node_labels" not in e for e in management.values())


def test_check_mode_and_other_tags_touch_no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[bool] = []
    target = dataclasses.replace(plan_target("de-staging"), cluster=ClusterSource("x", lambda: read.append(True) or ""))
    monkeypatch.setattr("nodeconfig.configure._run", lambda *a, **k: "ran")
    assert configure(target, check=True) == "ran"
    assert configure(target, tags="baseline,hardening") == "ran"
    assert read == []
    assert _runs_tag(None, "kubernetes_node") and _runs_tag("all", "kubernetes_node")
    assert _runs_tag("container_runtime,kubernetes_node", "kubernetes_node")


def test_a_limit_of_several_terms_narrows_every_shard(tmp_path: Path) -> None:
    inventory = {"all": {"children": {
        "gpu": {"children": {"su01": {"hosts": {"g1": {}, "g2": {}}}, "su02": {"hosts": {"g3": {}}}}},
        "storage": {"hosts": {"s1": {}}}, "management": {"hosts": {"m1": {}}},
    }}}
    path = tmp_path / "inventory.yml"
    path.write_text(json.dumps(inventory))
    shards = [Shard("su01", "su01"), Shard("su02", "su02"), Shard("infra", "storage:management")]
    assert _limited(shards, path, None) == shards
    assert _limited(shards, path, "storage:gpu") == [Shard("su01", "g1,g2"), Shard("su02", "g3"), Shard("infra", "s1")]
    assert _limited(shards, path, "g2") == [Shard("su01", "g2")]
    assert _limited(shards, path, "all:!gpu") == [Shard("infra", "s1,m1")]


def test_a_missing_kubeconfig_secret_names_the_stack_file_and_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks import automation
    from stacks.design.loader import InputError

    monkeypatch.setattr(automation, "stack_secret", lambda _stack, _key: None)
    target = plan_target("de-staging")
    assert target.cluster is not None
    with pytest.raises(InputError) as err:
        target.cluster.read()
    problem, = err.value.problems
    assert problem.file.endswith("Pulumi.de-staging.yaml") and problem.field == "config.sovereign:garching-kubeconfig"
    assert "pulumi config set --secret -s de-staging sovereign:garching-kubeconfig" in problem.message

"""Real tier (the real Pulumi engine, no lab): a greenfield site's cluster is signed by the site CA
the stack keeps among its secrets. The CA goes in with `pulumi config set` exactly as the README's
real-hardware steps say (the environment from `sovereign tools env`), and `configure --cluster`
reads it back through the engine. Nothing here connects to a node: each refusal comes before any
connection, and the accepted CA is checked up to the variables the roles would get."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nodeconfig.cluster_pki import Pem, issued_by, new_ca
from toolchain.build import install

pytestmark = pytest.mark.lab

STACK = "ke-staging"
ROOT = Path(__file__).resolve().parents[2]
SOVEREIGN = str(Path(sys.executable).parent / "sovereign")


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, timeout=300, check=False)


def _engine_env(project: Path, env: dict[str, str]) -> dict[str, str]:
    """What `eval "$(sovereign tools env --stack ke-staging)"` exports, added to env."""
    out = _run([SOVEREIGN, "--project", str(project), "tools", "env", "--stack", STACK], env)
    assert out.returncode == 0, out.stdout + out.stderr
    exports = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out.stdout.splitlines())
    return {**env, **exports}


def _config_set(project: Path, env: dict[str, str], key: str, value: str, *, secret: bool) -> None:
    args = ["pulumi", "config", "set", "-s", STACK, "--cwd", str(project), key, *(["--secret"] if secret else [])]
    out = _run(args, env, stdin=value)
    assert out.returncode == 0, out.stdout + out.stderr


def _configure_problems(project: Path, env: dict[str, str]) -> list[dict[str, str]]:
    out = _run([SOVEREIGN, "--project", str(project), "configure", STACK, "--cluster", "--json"], env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    return json.loads(out.stdout)["problems"]


def _not_a_ca() -> Pem:
    """A self-signed certificate without CA:TRUE, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a server, not a CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(),
               key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode())


def test_a_greenfield_cluster_is_signed_by_the_site_ca_in_the_stacks_secrets(tmp_path: Path, monkeypatch) -> None:
    install()  # the engine; a build failure fails the test
    project = tmp_path / "country"
    env = {**os.environ, "SOVEREIGN_STATE": str(tmp_path / "state")}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    made = _run([SOVEREIGN, "init", str(project), "--json"], env)
    assert made.returncode == 0, made.stdout + made.stderr
    text = (ROOT / "countries" / f"Pulumi.{STACK}.yaml").read_text()
    stack_file = project / "countries" / f"Pulumi.{STACK}.yaml"
    stack_file.write_text("\n".join(line for line in text.splitlines() if not line.startswith("encryptionsalt")) + "\n")
    engine = _engine_env(project, env)

    # No CA yet: both keys named, with the commands that set them.
    problems = _configure_problems(project, env)
    assert {p["field"] for p in problems} == {"config.sovereign:site_ca_cert", "config.sovereign:site_ca_key"}, problems
    assert all(p["file"] == str(stack_file) and "pulumi config set --secret" in p["message"] for p in problems), problems

    ca = new_ca("konza-1 site CA")
    _config_set(project, engine, "sovereign:site_ca_cert", ca.cert, secret=False)
    _config_set(project, engine, "sovereign:site_ca_key", ca.key, secret=False)
    [plain] = _configure_problems(project, env)
    assert plain["field"] == "config.sovereign:site_ca_key" and "plain text" in plain["message"], plain

    # Encrypted now, but the certificate is not a CA's; then a CA whose key is another's.
    wrong = _not_a_ca()
    _config_set(project, engine, "sovereign:site_ca_cert", wrong.cert, secret=False)
    _config_set(project, engine, "sovereign:site_ca_key", wrong.key, secret=True)
    [not_ca] = _configure_problems(project, env)
    assert not_ca["field"] == "config.sovereign:site_ca_cert" and "not a CA certificate" in not_ca["message"], not_ca
    _config_set(project, engine, "sovereign:site_ca_cert", ca.cert, secret=False)
    [mismatch] = _configure_problems(project, env)
    assert "does not belong to the CA certificate" in mismatch["message"], mismatch

    _config_set(project, engine, "sovereign:site_ca_key", ca.key, secret=True)
    body = "".join(ca.key.splitlines()[1:-1])
    assert body[:40] not in stack_file.read_text(), "the CA key is in the stack file in plain text"

    # Accepted: the engine hands back the CA, and everything the roles get derives from it.
    from nodeconfig.configure import plan_target

    monkeypatch.setenv("SOVEREIGN_PROJECT", str(project))
    monkeypatch.setenv("SOVEREIGN_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    target = plan_target(STACK, cluster=True)
    group = target.inventory["all"]["vars"]
    assert group["kubernetes_control_plane_ca_cert"] == ca.cert == group["kubernetes_node_ca_cert"]
    assert target.secret_vars["kubernetes_control_plane_ca_key"] == ca.key
    members = target.secret_vars["sovereign_cluster_certificates"]
    assert set(members) == set(target.inventory["all"]["children"]["management"]["hosts"])
    for pairs in members.values():
        assert issued_by(pairs["apiserver"]["cert"], ca) and issued_by(pairs["admin"]["cert"], ca)
    assert ca.key not in json.dumps(target.inventory), "the CA key is in the inventory"
    record = target.state_dir / "cluster-secrets.json"
    assert record.stat().st_mode & 0o077 == 0, oct(record.stat().st_mode)
    # A rerun hands the roles the same certificates (so they change nothing on the nodes).
    assert plan_target(STACK, cluster=True).secret_vars == target.secret_vars

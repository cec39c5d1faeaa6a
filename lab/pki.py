"""A per-lab certificate authority and the certificates the lab's control plane needs.

Made with the `cryptography` library: one CA per lab (a real site has its own), serving
certificates for etcd and the API server on loopback, client certificates for the API server's
etcd access, the controllers, the scheduler, kwok and the lab admin, and the service-account key.
Keys are written 0600 inside the lab directory and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stacks.design import atomic

_VALIDITY = dt.timedelta(days=30)  # a lab lives hours; a month covers a long-running demo


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    atomic.write_file(path, data, mode=mode)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _save(dir_: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    pair = Pair(dir_ / f"{name}.crt", dir_ / f"{name}.key")
    _write(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(pair.key, pem, 0o600)
    return pair


class LabCA:
    """Issues certificates signed by the lab's CA, creating the CA on first use."""

    def __init__(self, dir_: Path, lab: str):
        self.dir = dir_
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ca = Pair(dir_ / "ca.crt", dir_ / "ca.key")
        if not self.ca.cert.is_file():
            self._create_ca(lab)
        self._ca_cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())
        loaded = serialization.load_pem_private_key(self.ca.key.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self._ca_key = loaded

    def _create_ca(self, lab: str) -> None:
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sovereign lab {lab} CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _save(self.dir, "ca", cert, key)

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        organization: str | None = None,
        server_ips: tuple[str, ...] = (),
        server_dns: tuple[str, ...] = (),
        client: bool = True,
    ) -> Pair:
        key = _key()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        if server_ips or server_dns:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False
            )
        )
        if server_ips or server_dns:
            alt: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
            alt += [x509.DNSName(d) for d in server_dns]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return _save(self.dir, name, builder.sign(self._ca_key, hashes.SHA256()), key)

    def service_account_key(self) -> tuple[Path, Path]:
        """The key pair the API server signs service-account tokens with (sa.key) and verifies
        them with (sa.pub); the controller-manager signs with sa.key too."""
        path, public = self.dir / "sa.key", self.dir / "sa.pub"
        if not path.is_file() or not public.is_file():
            key = _key()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _write(path, pem, 0o600)
            pub = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            _write(public, pub, 0o644)
        return path, public

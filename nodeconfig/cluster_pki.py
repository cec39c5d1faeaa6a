"""Certificates for a greenfield site's control plane, issued on the controller from the site CA.

Issued in Python with `cryptography` (as the lab's own CA, lab/pki.py) rather than on the nodes:
the nodes need no crypto library, the CA key leaves the controller only for the management nodes'
controller-manager (which signs the kubelets' certificates with it, as in every kubeadm cluster),
and the same code serves the lab and a real site.

etcd has its own CA, as in kubeadm: the site CA signs every kubelet's client certificate, and a
client certificate of the site CA must not open etcd, which holds every Secret.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_VALIDITY = dt.timedelta(days=365)
CA_VALIDITY = dt.timedelta(days=3650)
API_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local")


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"cert": self.cert, "key": self.key}


@dataclass(frozen=True)
class Member:
    """A management node: its name and the address its API server and etcd listen on."""

    name: str
    address: str


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def new_ca(common_name: str, now: dt.datetime | None = None, validity: dt.timedelta = CA_VALIDITY) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = now or dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pem(_cert_pem(cert), _key_pem(key))


def issue(
    ca: Pem,
    common_name: str,
    *,
    organization: str | None = None,
    server_ips: tuple[str, ...] = (),
    server_dns: tuple[str, ...] = (),
    client: bool = True,
    now: dt.datetime | None = None,
) -> Pem:
    ca_cert = x509.load_pem_x509_certificate(ca.cert.encode())
    ca_key = serialization.load_pem_private_key(ca.key.encode(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("the CA key must be an EC or RSA private key")
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    if server_ips or server_dns:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    start = now or dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(min(start + CERT_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server_ips or server_dns:
        alt: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        alt += [x509.DNSName(d) for d in server_dns]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return Pem(_cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def service_account_key() -> Pem:
    """The service-account signing key (`key`) and its public half (`cert` holds the public key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return Pem(public, _key_pem(key))


def first_service_ip(service_cidr: str) -> str:
    return str(next(ipaddress.ip_network(service_cidr).hosts()))


def member_certificates(
    site_ca: Pem, etcd_ca: Pem, member: Member, *, service_cidr: str, api_names: tuple[str, ...] = ()
) -> dict[str, Pem]:
    """Everything one management node's components present, by the names the role expects."""
    api_ips = tuple(sorted({"127.0.0.1", member.address, first_service_ip(service_cidr)}))
    etcd_ips = tuple(sorted({"127.0.0.1", member.address}))
    return {
        "etcd-server": issue(etcd_ca, member.name, server_ips=etcd_ips, server_dns=("localhost", member.name)),
        "etcd-peer": issue(etcd_ca, member.name, server_ips=etcd_ips, server_dns=(member.name,)),
        "apiserver-etcd-client": issue(etcd_ca, "kube-apiserver-etcd-client"),
        "apiserver": issue(site_ca, "kube-apiserver", client=False, server_ips=api_ips,
                           server_dns=(*API_DNS, member.name, *api_names)),
        "apiserver-kubelet-client": issue(site_ca, "kube-apiserver-kubelet-client"),
        "controller-manager": issue(site_ca, "system:kube-controller-manager"),
        "scheduler": issue(site_ca, "system:kube-scheduler"),
        # The node-local administrator (/etc/kubernetes/admin.conf), as kubeadm's.
        "admin": issue(site_ca, "sovereign-admin", organization="system:masters"),
    }


def subject_alt_ips(cert_pem: str) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}


def expires(cert_pem: str) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc


def lifetime(cert_pem: str) -> dt.timedelta:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def issued_by(cert_pem: str, ca: Pem) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca_cert = x509.load_pem_x509_certificate(ca.cert.encode())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def ca_problem(ca: Pem, now: dt.datetime | None = None) -> str | None:
    """Why a site CA handed in from outside (a stack's secrets) cannot sign the cluster's
    certificates, or None when it can: PEM that parses, a CA certificate allowed to sign
    certificates, valid now and for a while yet, and the private key that belongs to it."""
    try:
        cert = x509.load_pem_x509_certificate(ca.cert.encode())
    except ValueError:
        return "the CA certificate is not a PEM X.509 certificate"
    try:
        key = serialization.load_pem_private_key(ca.key.encode(), password=None)
    except (ValueError, TypeError):
        return "the CA key is not an unencrypted PEM private key"
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return "the CA key must be an EC or RSA private key"
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        return "the certificate is not a CA certificate (basicConstraints CA:TRUE)"
    try:
        if not cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
            return "the CA certificate may not sign certificates (keyUsage keyCertSign)"
    except x509.ExtensionNotFound:
        pass  # no keyUsage: signing is not restricted
    moment = now or dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= moment < cert.not_valid_after_utc:
        return (f"the CA certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d} "
                f"to {cert.not_valid_after_utc:%Y-%m-%d}, not now")
    if cert.not_valid_after_utc - moment < dt.timedelta(days=30):
        return f"the CA certificate expires on {cert.not_valid_after_utc:%Y-%m-%d}: renew it first"
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.PEM, public) != \
            cert.public_key().public_bytes(serialization.Encoding.PEM, public):
        return "the CA key does not belong to the CA certificate"
    return None

"""ed25519 keys and signatures for plan approvals (the `cryptography` library).

Public keys are written as OpenSSH lines (`ssh-ed25519 AAAA… comment`) because that is what
reviewers already have and what `ssh-keygen -t ed25519` makes; the fingerprint is OpenSSH's own
(`SHA256:…`, what `ssh-keygen -lf key.pub` prints), so a reviewer can check it by hand.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class UnusableKey(ValueError):
    """A key that cannot be read or is not ed25519."""


def parse_public_key(line: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_ssh_public_key(line.strip().encode())
    except (ValueError, IndexError, TypeError) as exc:
        raise UnusableKey(f"not an OpenSSH public key line ('ssh-ed25519 AAAA…'): {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UnusableKey("approvals use ed25519 keys (ssh-keygen -t ed25519); this is another kind of key")
    return key


def public_line(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    blob = base64.b64decode(public_line(key).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An ed25519 private key file: OpenSSH (`ssh-keygen`) or PEM (PKCS#8), unencrypted."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableKey(f"{path}: cannot read the key: {exc.strerror}") from None
    key = None
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = loader(data, password=None)
            break
        except TypeError:
            raise UnusableKey(f"{path}: the key is encrypted; decrypt a copy for signing") from None
        except (ValueError, IndexError):
            continue
    if key is None:
        raise UnusableKey(f"{path}: not an OpenSSH or PEM private key")
    if not isinstance(key, Ed25519PrivateKey):
        raise UnusableKey(f"{path}: approvals use ed25519 keys (ssh-keygen -t ed25519)")
    return key


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode()


def verify(key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return False
    if len(signature) != 64:  # a truncated signature is refused before any maths
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True

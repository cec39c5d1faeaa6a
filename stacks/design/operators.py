"""Who operates a site's nodes: administrators and their secrets. Not the partnership.

Administrators live in the stack config under `sovereign:admins`; password hashes and registry
credentials in a private secrets file (`configure --secrets`). Both are read by the loader like the
partnership, so their problems name file, line and field the same way.
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, field_validator

from stacks.design.partnership import Model
from stacks.design.yamldoc import short_repr

ADMINS_KEY = "sovereign:admins"
# A Linux user name that useradd accepts on Debian without --badname.
UNIX_NAME = r"^[a-z_][a-z0-9_-]{0,31}$"
# "<type> <base64> [comment]", the form authorized_keys takes.
_KEY_TYPES = r"ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com"
_SSH_KEY = re.compile(rf"^({_KEY_TYPES}) [A-Za-z0-9+/]+=*( .*)?$")


class Admin(Model):
    name: str = Field(pattern=UNIX_NAME, description="login name on every node")
    ssh_keys: list[str] = Field(default=[], description="public keys, one authorized_keys line each")

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not _SSH_KEY.match(key):
                raise ValueError(
                    f"{short_repr(key)} is not a public key line like 'ssh-ed25519 AAAAC3Nz... ops@example' "
                    f"(a private key or a file path?)"
                )
        return keys


class RegistryCredential(Model):
    # Secrets are taken byte for byte: a password may start or end with a space.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class Secrets(Model):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    admin_password_hashes: dict[str, str] = Field(default={}, description="admin name -> crypt(3) hash")
    registry_credentials: dict[str, RegistryCredential] = Field(default={}, description="registry -> login")

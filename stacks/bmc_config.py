"""Where the stack's BMCs are and how to reach them, read once into `BmcSettings`.

Two sources, the first that is present:
- the stack config: `sovereign:bmc` (an object: url, system, username, caFile, installImage
  {url, sha256}, and optionally servers, deadlineSeconds, wave, pools, stacksAtOnce, generation,
  artifacts {dir, url},
  adminKeys) with the password as
  the secret `sovereign:bmcPassword`;
- the lab: `SOVEREIGN_BMC_FILE`, written by `sovereign lab up --bmcs N` and set by `sovereign up
  --lab` (the emulator's endpoint, its CA, the password file), like SOVEREIGN_KUBECONFIG.
Neither: the stack touches no server (every existing stack keeps working unchanged).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from stacks.design.loader import InputError, Problem

BMC_FILE_ENV = "SOVEREIGN_BMC_FILE"
# A unit stack's copy of its site stack's `bmcPassword`: a 0600 file for the one run, never config.
PASSWORD_FILE_ENV = "SOVEREIGN_BMC_PASSWORD_FILE"


@dataclass
class BmcSettings:
    url: str  # template: {bmc_ip}
    system: str  # template: {system_uuid}, {name}
    username: str
    password: pulumi.Input[str]
    ca_pem: str
    image_url: str
    image_sha256: str
    servers: int | None = None
    deadline_s: float = 300.0
    wave: int = 8
    pools: int = 8  # provider processes, shared by the unit stacks that run at once
    stacks_at_once: int = 2  # scalable units' machine stacks provisioning side by side (stacks.machine_stacks)
    generation: int = 0
    artifacts_dir: str | None = None  # where seed ISOs are written and served from
    artifacts_url: str | None = None
    admin_keys: tuple[str, ...] = ()  # SSH public keys the seeds install for the admins


def bmc_settings(config: pulumi.Config) -> BmcSettings | None:
    raw = config.get_object("bmc")
    password: pulumi.Input[str] | None = config.get_secret("bmcPassword") if raw is not None else None
    given = os.environ.get(PASSWORD_FILE_ENV)
    if raw is not None and password is None and given:
        try:
            password = pulumi.Output.secret(Path(given).read_text().strip())
        except OSError as exc:
            raise InputError([Problem(given, None, PASSWORD_FILE_ENV, f"cannot read the BMC password: {exc}")]) from None
    return settings_from(raw, password)


def settings_from(raw: Any, password: pulumi.Input[str] | None, *, in_program: bool = True,
                  lab_file: str | None = None) -> BmcSettings | None:
    """The settings from the stack config's `sovereign:bmc` object and its password (None: the
    stack sets none), else from the lab's file: for the program, and for `sovereign up`, which
    reads the same values to split the site's servers into stacks (stacks.machine_stacks): outside
    the program the lab's password stays plain text, since a Pulumi Output needs the program's loop."""
    if raw is not None:
        return _from_mapping(raw, "stack config sovereign:bmc", password, "sovereign:bmcPassword")
    path = lab_file or os.environ.get(BMC_FILE_ENV)
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
        password = Path(data.pop("password_file")).read_text().strip()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError([Problem(path, None, BMC_FILE_ENV, f"cannot read the lab's BMC settings: {exc}")]) from None
    return _from_mapping(data, path, pulumi.Output.secret(password) if in_program else password, "password_file")


def _from_mapping(raw: Any, where: str, password: pulumi.Input[str] | None, password_field: str) -> BmcSettings:
    problems = []
    if not isinstance(raw, dict):
        raise InputError([Problem(where, None, "bmc", "expected a mapping")])

    def need(key: str, kind: type = str) -> Any:
        value = raw.get(key)
        if not isinstance(value, kind) or (kind is str and not value):
            problems.append(Problem(where, None, key, f"required, a {kind.__name__}"))
        return value

    url, username, ca_file = need("url"), need("username"), need("ca_file" if "ca_file" in raw else "caFile")
    image = raw.get("installImage") or raw.get("install_image") or {}
    if not isinstance(image, dict) or not image.get("url") or not image.get("sha256"):
        problems.append(Problem(where, None, "installImage", "required: {url, sha256} of the install media"))
        image = {}
    if password is None:
        problems.append(Problem(where, None, password_field, "required: the BMC password, as a secret"))
    ca_pem = ""
    if isinstance(ca_file, str) and ca_file:
        try:
            ca_pem = Path(ca_file).read_text()
        except OSError as exc:
            problems.append(Problem(where, None, "caFile", f"cannot read the BMCs' CA bundle: {exc}"))
    if problems:
        raise InputError(problems)
    return BmcSettings(
        url=url, system=str(raw.get("system") or "/redfish/v1/Systems/1"), username=username,
        password=password,  # type: ignore[arg-type]  # checked above
        ca_pem=ca_pem, image_url=image["url"], image_sha256=image["sha256"],
        servers=raw.get("servers"), deadline_s=float(raw.get("deadlineSeconds") or raw.get("deadline_s") or 300),
        wave=int(raw.get("wave", 8)), pools=int(raw.get("pools", 8)),
        stacks_at_once=int(raw.get("stacksAtOnce") or raw.get("stacks_at_once") or 2), generation=int(raw.get("generation", 0)),
        artifacts_dir=raw.get("artifacts_dir") or (raw.get("artifacts") or {}).get("dir"),
        artifacts_url=raw.get("artifacts_url") or (raw.get("artifacts") or {}).get("url"),
        admin_keys=tuple(raw.get("adminKeys") or raw.get("admin_keys") or ()),
    )

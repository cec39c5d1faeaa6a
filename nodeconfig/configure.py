"""configure(): from a stack or partnership file to a finished Ansible run on its nodes.

Targets either the site design's nodes (real hardware: names and addresses from the IP plan) or
a local lab whose nodes stand in for the design's first nodes.
"""

from __future__ import annotations

import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.paths import state_root
from nodeconfig.inventory import Admin, build_inventory, design_hosts, lab_hosts, shards_for, site_vars
from nodeconfig.runner import EventSink, RunResult, Shard, run_playbook
from nodeconfig.settings import TUNED, Profile
from stacks.design.loader import InputError, Problem, load_and_design, resolve, stack_name

LAB_ADMIN = "sovadmin"


@dataclass(frozen=True)
class Target:
    """What a run addresses: the inventory, how to reach it, and where its state lives."""

    stack: str
    inventory: dict[str, Any]
    ssh_config: Path | None
    state_dir: Path


def plan_target(ref: str, *, site: str | None = None, lab: str | None = None) -> Target:
    partnership, planned = load_and_design(ref)
    stack = stack_name(resolve(ref))
    sites = {s.name: (s, d) for s, d in zip(partnership.sites, planned.sites)}
    if site is not None and site not in sites:
        raise InputError([Problem(str(resolve(ref)), None, "--site", f"no site {site!r}; the stack has: {', '.join(sites)}")])
    spec, site_design = sites[site] if site else next(iter(sites.values()))
    if lab is None:
        admins = _stack_admins(ref)
        hosts, ssh_config = design_hosts(site_design), None
        state = state_root() / "configure" / stack / spec.name
    else:
        lab_spec = _lab(lab)
        key = Path(str(lab_spec.ssh_key) + ".pub").read_text(encoding="utf-8").strip()
        admins = [*_stack_admins(ref), Admin(LAB_ADMIN, (key,))]
        hosts = lab_hosts(site_design, [{"name": n.name, "ip": n.ip} for n in lab_spec.nodes])
        ssh_config = lab_spec.ssh_config
        state = state_root() / "configure" / f"lab-{lab}"
    group_vars = site_vars(partnership, spec, site_design, admins)
    if lab is not None:  # the site's NTP servers and mirrors are out of reach; the lab serves both
        group_vars["time_sync_servers"] = [lab_spec.gateway]
        group_vars["baseline_apt_mirrors"] = lab_apt_mirrors(lab_spec.gateway)
    inventory = build_inventory(hosts, group_vars)
    return Target(stack=stack, inventory=inventory, ssh_config=ssh_config, state_dir=state)


def configure(
    target: Target,
    *,
    secrets_file: Path | None = None,
    check: bool = False,
    diff: bool = False,
    tags: str | None = None,
    limit: str | None = None,
    profile: Profile = TUNED,
    total_forks: int | None = None,
    on_event: EventSink | None = None,
    reboot: bool = True,
) -> RunResult:
    """reboot: nodes whose new NVIDIA driver needs one are rebooted one at a time per shard (drain
    and uncordon hooks from the inventory); False leaves them running and reports them."""
    secrets = _secret_vars(secrets_file, target.inventory) if secrets_file else None
    run_dir = target.state_dir / "runs" / time.strftime("%Y%m%dT%H%M%S")
    suffix = 0
    while run_dir.exists():
        suffix += 1
        run_dir = run_dir.with_name(f"{run_dir.name.split('.')[0]}.{suffix}")
    return run_playbook(
        inventory=with_reboot(target.inventory, reboot),
        shards=shards_for(target.inventory) if profile.sharded else [Shard("all", "all")],
        run_dir=run_dir,
        state_dir=target.state_dir,
        ssh_config=target.ssh_config,
        secrets=secrets,
        profile=profile,
        total_forks=total_forks,
        check=check,
        diff=diff,
        tags=tags,
        limit=limit,
        on_event=on_event,
    )


def lab_apt_mirrors(gateway: str, uris: list[str] | None = None) -> dict[str, str]:
    """The lab's apt cache (lab/aptcache.py) in front of the Debian mirror the host uses, under the
    upstream names baseline knows (its vars/Debian.yml)."""
    from lab.aptcache import url
    from lab.mirror import host_uris

    found = uris if uris is not None else host_uris()
    archive = next((u for u in found if "security" not in u), found[0])
    security = next((u for u in found if "security" in u), None)

    def cached(uri: str) -> str:
        return f"{url(gateway)}/{uri.split('://', 1)[1].rstrip('/')}"

    mirrors = {"deb.debian.org/debian": cached(archive)}
    if security:
        mirrors["security.debian.org/debian-security"] = cached(security)
    return mirrors


def with_reboot(inventory: dict[str, Any], reboot: bool) -> dict[str, Any]:
    """The inventory with nvidia_host's reboot switch set for the whole run."""
    everything = inventory["all"]
    return {**inventory, "all": {**everything, "vars": {**everything.get("vars", {}), "nvidia_host_reboot": reboot}}}


def _stack_admins(ref: str) -> list[Admin]:
    """Administrators from the stack config key `sovereign:admins` ([{name, ssh_keys}])."""
    path = resolve(ref)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    config = data.get("config") if isinstance(data, dict) else None
    raw = (config or {}).get("sovereign:admins", [])
    admins = []
    for index, item in enumerate(raw if isinstance(raw, list) else [None]):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError([Problem(str(path), None, f"config.sovereign:admins[{index}]", "expected {name, ssh_keys: [...]}")])
        admins.append(Admin(item["name"], tuple(item.get("ssh_keys") or ())))
    return admins


def _lab(name: str):
    from lab.nodes import NodeLab

    spec = NodeLab(name).spec()
    if spec is None or not spec.count:
        hint = f"no lab nodes; start them with `sovereign lab nodes up --name {name}`"
        raise InputError([Problem(f"lab {name!r}", None, "--lab", hint)])
    return spec


def _secret_vars(path: Path, inventory: dict[str, Any]) -> dict[str, Any]:
    """Secrets file -> the role variables that carry them. The file must be private (0600)."""
    where = str(path)
    try:
        mode = path.stat().st_mode
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError([Problem(where, None, "", f"cannot read secrets: {exc}")]) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError([Problem(where, None, "", "secrets file is readable by others: chmod 600 it")])
    if not isinstance(data, dict):
        raise InputError([Problem(where, 1, "", "expected a mapping")])
    unknown = set(data) - {"admin_password_hashes", "registry_credentials"}
    if unknown:
        expected = "unknown secret (expected admin_password_hashes, registry_credentials)"
        raise InputError([Problem(where, None, k, expected) for k in sorted(unknown)])
    out: dict[str, Any] = {}
    hashes = data.get("admin_password_hashes") or {}
    if hashes:
        admins = inventory["all"]["vars"]["baseline_admin_users"]
        missing = sorted(set(hashes) - {a["name"] for a in admins})
        if missing:
            raise InputError(
                [Problem(where, None, f"admin_password_hashes.{m}", "no such admin in sovereign:admins") for m in missing]
            )
        out["baseline_admin_users"] = [
            {**a, **({"password_hash": hashes[a["name"]]} if a["name"] in hashes else {})} for a in admins
        ]
    credentials = data.get("registry_credentials") or {}
    auths = []
    for registry, cred in credentials.items() if isinstance(credentials, dict) else []:
        if not isinstance(cred, dict) or not {"username", "password"} <= set(cred):
            raise InputError([Problem(where, None, f"registry_credentials.{registry}", "expected {username, password}")])
        auths.append({"registry": str(registry), "username": str(cred["username"]), "password": str(cred["password"])})
    if auths:
        out["container_runtime_registry_auths"] = auths
    return out


def write_inventory(target: Target) -> Path:
    """The target's inventory as a file (for verify and for people), beside its runs."""
    target.state_dir.mkdir(parents=True, exist_ok=True)
    path = target.state_dir / "inventory.yml"
    path.write_text(yaml.safe_dump(target.inventory, sort_keys=False), encoding="utf-8")
    return path

"""Per-node OS install seeds, rendered from the design: Ubuntu autoinstall (user-data, meta-data:
a NoCloud seed) and a Debian preseed, with the node's hostname and data address from the IP plan,
the admins' SSH keys, LVM partitioning, apt sources from the country's mirror and a first-boot
call-back. Pure: text in, text out. A node's seed resource holds its context (`seed_context`), not
the rendered text; stacks.providers.seed_iso renders, packs and serves it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stacks.design.assets import asset_dir
from stacks.design.partnership import Partnership
from stacks.design.sizing import SiteDesign

SEED_FILES = ("user-data", "meta-data", "preseed.cfg")
ADMIN_USER = "sovereign"
_MIRROR_KEYS = ("ubuntu", "debian_host", "debian_path")


@dataclass(frozen=True)
class SeedNode:
    site: str
    hostname: str
    data_ip: str
    data_prefix: int
    data_netmask: str
    gateway: str
    dns: str


def seed_node(site: SiteDesign, name: str, data_ip: str) -> SeedNode:
    pool = ipaddress.ip_network(site.pools["data"].cidr)
    gateway = str(pool.network_address + 1)  # the first reserved address of the pool (ipam.RESERVED_PER_POOL)
    return SeedNode(site.site, name, data_ip, pool.prefixlen, str(pool.netmask), gateway, gateway)


def _mirrors(partnership: Partnership) -> dict[str, str]:
    by_upstream = {m.upstream: m.mirror.rstrip("/") for m in partnership.sovereignty.package_mirrors}
    debian = by_upstream.get("deb.debian.org/debian", "http://deb.debian.org/debian")
    ubuntu = by_upstream.get("archive.ubuntu.com/ubuntu", "http://archive.ubuntu.com/ubuntu")
    host, _, path = debian.split("://", 1)[1].partition("/")
    return dict(zip(_MIRROR_KEYS, (ubuntu, host, "/" + path), strict=True))


def seed_context(partnership: Partnership, node: SeedNode, admin_keys: list[str], callback_url: str) -> dict[str, Any]:
    """What a node's seed is rendered from, as plain data: a SeedIso's inputs."""
    return {"node": asdict(node), "admin_keys": list(admin_keys), "admin_user": ADMIN_USER,
            "mirrors": _mirrors(partnership), "callback_url": callback_url}


def render_files(context: dict[str, Any]) -> dict[str, str]:
    """The seed's files by name. `seed_id` (a digest of everything else) changes with any input, so
    the installed node reports which seed it came from."""
    # As the id was first computed (key order included): the engine hands maps back sorted.
    context = {**context, "node": SeedNode(**context["node"]), "admin_keys": list(context["admin_keys"]),
               "mirrors": {key: context["mirrors"][key] for key in _MIRROR_KEYS}}
    seed_id = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in context.items())).encode()).hexdigest()[:12]
    env = _environment()
    return {name: env.get_template(f"{name}.j2").render(**context, seed_id=seed_id) for name in SEED_FILES}


def render_seed(partnership: Partnership, node: SeedNode, admin_keys: list[str], callback_url: str) -> dict[str, str]:
    return render_files(seed_context(partnership, node, admin_keys, callback_url))


def templates_digest() -> str:
    """The seed templates' digest: a SeedIso input, so a changed template is a change of every seed."""
    digest = hashlib.sha256()
    for name in SEED_FILES:
        digest.update(name.encode() + b"\0" + (_template_dir() / f"{name}.j2").read_bytes() + b"\0")
    return digest.hexdigest()


def _template_dir() -> Path:
    return asset_dir("templates") / "seed"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(_template_dir())), undefined=StrictUndefined,
                       keep_trailing_newline=True, autoescape=False)

"""Per-node OS install seeds, rendered from the design: Ubuntu autoinstall (user-data, meta-data:
a NoCloud seed) and a Debian preseed, with the node's hostname and data address from the IP plan,
the admins' SSH keys, LVM partitioning, apt sources from the country's mirror and a first-boot
call-back. Pure: text in, text out (stacks.providers.seed_iso packs and serves them).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stacks.design.assets import asset_dir
from stacks.design.partnership import Partnership
from stacks.design.sizing import SiteDesign

SEED_FILES = ("user-data", "meta-data", "preseed.cfg")
ADMIN_USER = "sovereign"


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
    return {"ubuntu": ubuntu, "debian_host": host, "debian_path": "/" + path}


def render_seed(partnership: Partnership, node: SeedNode, admin_keys: list[str], callback_url: str) -> dict[str, str]:
    """The seed's files by name. `seed_id` (a digest of everything else) changes with any input, so
    the installed node reports which seed it came from."""
    env = Environment(loader=FileSystemLoader(str(asset_dir("templates") / "seed")), undefined=StrictUndefined,
                      keep_trailing_newline=True, autoescape=False)
    context: dict[str, Any] = {"node": node, "admin_keys": admin_keys, "admin_user": ADMIN_USER,
                               "mirrors": _mirrors(partnership), "callback_url": callback_url}
    seed_id = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in context.items())).encode()).hexdigest()[:12]
    return {name: env.get_template(f"{name}.j2").render(**context, seed_id=seed_id) for name in SEED_FILES}

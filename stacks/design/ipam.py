"""IP plan: one address per device per pool, allocated in order, never overlapping.

Plans are ranges, not lists, so a 100,000-node site plans in microseconds; per-node addresses are
computed on demand (inventory, Redfish endpoints) from the same arithmetic.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

# The first addresses of every pool are kept for gateways, VRRP and infrastructure services.
RESERVED_PER_POOL = 16
POOLS = ("data", "storage", "oob")


class PoolExhausted(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PoolPlan:
    pool: str
    cidr: str
    existing: int  # addresses already used by an expand site's assets
    first: str  # first address of the new allocation ('' when nothing is allocated)
    last: str
    allocated: int
    capacity: int  # usable addresses after the reservation

    @property
    def free(self) -> int:
        return self.capacity - self.existing - self.allocated

    def address(self, index: int) -> str:
        if not 0 <= index < self.allocated:
            raise IndexError(f"{self.pool}: index {index} outside 0..{self.allocated - 1}")
        return dotted_quad(self.first_int + index)

    @property
    def first_int(self) -> int:
        return _to_int(self.first) if self.first else 0


@lru_cache(maxsize=4096)
def _to_int(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def dotted_quad(n: int) -> str:
    # ipaddress objects cost ~20x more; inventories address every node of a site.
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def plan_pool(pool: str, cidr: str, existing: int, needed: int, site: str) -> PoolPlan:
    net = ipaddress.ip_network(cidr)
    capacity = max(net.num_addresses - 2 - RESERVED_PER_POOL, 0)  # network, broadcast
    if existing + needed > capacity:
        want = existing + needed + 2 + RESERVED_PER_POOL
        prefix = 32 - (want - 1).bit_length()
        # Past /8 a larger IPv4 pool is not a realistic answer (and past /0 there is none).
        advice = f"use a /{prefix} or larger" if prefix >= 8 else "split the site, or its pools, across several sites"
        raise PoolExhausted(
            f"site {site!r}: pool {pool} {cidr} holds {capacity:,} device addresses, the design "
            f"needs {existing + needed:,}; {advice}"
        )
    start = net.network_address + 1 + RESERVED_PER_POOL + existing
    return PoolPlan(
        pool=pool,
        cidr=cidr,
        existing=existing,
        first=str(start) if needed else "",
        last=str(start + needed - 1) if needed else "",
        allocated=needed,
        capacity=capacity,
    )

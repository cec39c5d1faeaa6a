"""A lab's network: its own bridge and /24, NAT to the Debian mirror only, nothing else.

Per lab: bridge `sovbr<N>`, subnet 10.250.<N>.0/24 (gateway .1, node i at .10+i), and one
iptables chain `SOVLAB-<N>` in both the filter and nat tables, each reached by a single jump.
Keeping every rule in the lab's own chains makes teardown exact: drop the jumps, flush and
delete the chains, and nothing of the lab remains, whatever state `up` reached.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from lab.errors import LabError
from lab.host import run
from lab.registry import Registry
from stacks.design import atomic

PREFIX = "10.250"
FIRST_NODE_HOST = 10  # node i gets .10+i; .1 is the bridge, .2-.10 stay free for lab services
MAX_NODES = 244
_IPT_WAIT = ["-w", "30"]  # other labs (and other tools) may hold the xtables lock


# --- pure naming -------------------------------------------------------------------------------
def preferred_octet(name: str) -> int:
    """Deterministic third octet for a lab name, 1..254 (0 is left to ad-hoc experiments)."""
    return 1 + zlib.crc32(name.encode()) % 254


def candidate_octets(name: str) -> list[int]:
    """Every octet in probing order: the preferred one first, then upwards, wrapping around."""
    start = preferred_octet(name)
    return [1 + (start - 1 + k) % 254 for k in range(254)]


def choose_octet(name: str, clash: Callable[[int], str | None]) -> int:
    """The first candidate octet that `clash` (returns a reason, or None when free) accepts."""
    for octet in candidate_octets(name):
        if clash(octet) is None:
            return octet
    raise LabError(f"no free /24 left in {PREFIX}.0.0/16 for lab {name!r}")


def subnet(octet: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{PREFIX}.{octet}.0/24")


def gateway(octet: int) -> str:
    return f"{PREFIX}.{octet}.1"


def node_ip(octet: int, index: int) -> str:
    if not 1 <= index <= MAX_NODES:
        raise LabError(f"node index {index} out of range 1..{MAX_NODES}")
    return f"{PREFIX}.{octet}.{FIRST_NODE_HOST + index}"


def bridge_name(octet: int) -> str:
    return f"sovbr{octet}"


def chain_name(octet: int) -> str:
    return f"SOVLAB-{octet}"


def veth_name(octet: int, index: int) -> str:
    """Host side of node i's veth; named so a leftover is recognisable (15 chars max)."""
    return f"sov{octet}n{index}"


def filter_rules(bridge: str, mirror_ips: Iterable[str]) -> list[list[str]]:
    """Rules of the lab's filter chain: nodes talk to each other and to the mirror, nothing else."""
    rules = [["-i", bridge, "-o", bridge, "-j", "ACCEPT"]]
    for ip in mirror_ips:
        rules.append(
            ["-i", bridge, "-d", ip, "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "ACCEPT"]
        )
    rules += [
        ["-o", bridge, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-i", bridge, "-j", "DROP"],
        ["-o", bridge, "-j", "DROP"],
    ]
    return rules


def nat_rules(mirror_ips: Iterable[str]) -> list[list[str]]:
    return [
        ["-d", ip, "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "MASQUERADE"]
        for ip in mirror_ips
    ]


def jump(table: str, octet: int, lab: str) -> tuple[str, list[str]]:
    """(parent chain, match) of the single rule that sends a lab's traffic to its chain."""
    comment = ["-m", "comment", "--comment", f"sovereign lab {lab}"]
    if table == "filter":
        return "FORWARD", [*comment, "-j", chain_name(octet)]
    return "POSTROUTING", ["-s", str(subnet(octet)), *comment, "-j", chain_name(octet)]


# --- host state --------------------------------------------------------------------------------
def link_exists(dev: str) -> bool:
    return Path("/sys/class/net", dev).exists()


def host_networks() -> list[tuple[str, ipaddress.IPv4Network]]:
    """(device, network) for every IPv4 address and route on the host."""
    found: list[tuple[str, ipaddress.IPv4Network]] = []
    for entry in json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]"):
        for addr in entry.get("addr_info", []):
            net = ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False)
            found.append((entry.get("ifname", "?"), net))
    for route in json.loads(run(["ip", "-j", "-4", "route", "show"]).stdout or "[]"):
        dst = route.get("dst", "default")
        if dst != "default":
            found.append((route.get("dev", "?"), ipaddress.IPv4Network(dst, strict=False)))
    return found


def octet_clash(
    octet: int, claimed: dict[int, str], own_lab: str, networks: list[tuple[str, ipaddress.IPv4Network]]
) -> str | None:
    """Why `octet` cannot serve `own_lab` (another lab's claim, a foreign bridge or route), or None."""
    holder = claimed.get(octet)
    if holder is not None and holder != own_lab:
        return f"claimed by lab {holder!r}"
    bridge = bridge_name(octet)
    if holder is None and link_exists(bridge):
        return f"bridge {bridge} exists but belongs to no lab"
    for dev, net in networks:
        if dev != bridge and net.overlaps(subnet(octet)):
            return f"{net} is already routed via {dev}"
    return None


# --- host changes ------------------------------------------------------------------------------
def _ipt(table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(
        ["iptables", *_IPT_WAIT, "-t", table, *args], what=f"iptables -t {table} {args[0]}", check=check
    )


def _chain_exists(table: str, chain: str) -> bool:
    return _ipt(table, "-S", chain, check=False).returncode == 0


def bridge_up(octet: int) -> None:
    bridge = bridge_name(octet)
    if not link_exists(bridge):
        run(["ip", "link", "add", "name", bridge, "type", "bridge"], what=f"creating bridge {bridge}")
    run(["ip", "addr", "replace", f"{gateway(octet)}/24", "dev", bridge], what=f"addressing {bridge}")
    run(["ip", "link", "set", bridge, "up"], what=f"bringing {bridge} up")


def rules_up(octet: int, lab: str, mirror_ips: Iterable[str]) -> None:
    """(Re)write the lab's chains, then hook them in once; safe to repeat."""
    chain, ips = chain_name(octet), list(mirror_ips)
    for table, rules in (("filter", filter_rules(bridge_name(octet), ips)), ("nat", nat_rules(ips))):
        if _chain_exists(table, chain):
            _ipt(table, "-F", chain)
        else:
            _ipt(table, "-N", chain)
        for rule in rules:
            _ipt(table, "-A", chain, *rule)
        parent, match = jump(table, octet, lab)
        if _ipt(table, "-C", parent, *match, check=False).returncode != 0:
            _ipt(table, "-I", parent, "1", *match)


def rules_down(octet: int) -> None:
    """Remove every jump to the lab's chains (however many a crash left), then the chains."""
    chain = chain_name(octet)
    for table, parent in (("filter", "FORWARD"), ("nat", "POSTROUTING")):
        listing = _ipt(table, "-S", parent, check=False).stdout
        for line in listing.splitlines():
            words = shlex.split(line)
            if words[:1] == ["-A"] and words[-2:] == ["-j", chain]:
                _ipt(table, "-D", *words[1:], check=False)
        if _chain_exists(table, chain):
            _ipt(table, "-F", chain)
            _ipt(table, "-X", chain)


def links_down(octet: int) -> None:
    """Delete the bridge and any veth of this lab that outlived its container."""
    prefix = f"sov{octet}n"
    for dev in sorted(p.name for p in Path("/sys/class/net").iterdir()):
        if dev == bridge_name(octet) or (dev.startswith(prefix) and dev[len(prefix) :].isdigit()):
            run(["ip", "link", "del", dev], what=f"deleting {dev}", check=False)


_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def enable_forwarding(registry: Registry) -> None:
    """Route for the nodes; the value before the first lab is kept to be restored by the last."""
    if not registry.forward_file.exists():
        atomic.write_file(registry.forward_file, _FORWARD.read_text())
    _FORWARD.write_text("1\n")  # a kernel switch in /proc: written in place, never renamed over


def restore_forwarding(registry: Registry) -> None:
    if registry.forward_file.exists():
        _FORWARD.write_text(registry.forward_file.read_text())
        registry.forward_file.unlink()

"""Fast tier: naming, subnet choice and firewall rules of a lab's network (no host changes)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab import network
from lab.errors import LabError

names = st.from_regex(r"[a-z][a-z0-9-]{0,18}[a-z0-9]", fullmatch=True)


@given(names)
def test_preferred_octet_is_deterministic_and_in_range(name: str) -> None:
    assert network.preferred_octet(name) == network.preferred_octet(name)
    assert 1 <= network.preferred_octet(name) <= 254


@given(names)
def test_probing_visits_every_octet_once_starting_with_the_preferred(name: str) -> None:
    order = network.candidate_octets(name)
    assert order[0] == network.preferred_octet(name)
    assert sorted(order) == list(range(1, 255))


def test_choose_octet_skips_clashes() -> None:
    first = network.preferred_octet("ci")
    taken = {first, 1 + first % 254}
    chosen = network.choose_octet("ci", lambda o: "taken" if o in taken else None)
    assert chosen not in taken
    assert chosen == network.candidate_octets("ci")[2]


def test_choose_octet_fails_clearly_when_all_are_taken() -> None:
    with pytest.raises(LabError, match="no free /24"):
        network.choose_octet("ci", lambda o: "taken")


def test_octet_clash_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "link_exists", lambda dev: dev == "sovbr9")
    eth0 = ("eth0", ipaddress.IPv4Network("10.250.7.0/24"))
    assert "claimed by lab 'other'" in network.octet_clash(5, {5: "other"}, "mine", [])
    assert network.octet_clash(5, {5: "mine"}, "mine", []) is None
    assert "belongs to no lab" in network.octet_clash(9, {}, "mine", [])
    assert "routed via eth0" in network.octet_clash(7, {}, "mine", [eth0])
    # a wider route covering the /24 clashes too; our own bridge's route does not
    wide = ("eth1", ipaddress.IPv4Network("10.250.0.0/16"))
    assert "eth1" in network.octet_clash(3, {}, "mine", [wide])
    own = ("sovbr3", ipaddress.IPv4Network("10.250.3.0/24"))
    assert network.octet_clash(3, {3: "mine"}, "mine", [own]) is None


@given(st.integers(1, 254), st.integers(1, network.MAX_NODES))
def test_names_fit_linux_limits_and_ips_stay_in_the_subnet(octet: int, index: int) -> None:
    assert len(network.bridge_name(octet)) <= 15
    assert len(network.veth_name(octet, index)) <= 15
    assert len(network.chain_name(octet)) <= 28  # iptables chain name limit
    ip = ipaddress.IPv4Address(network.node_ip(octet, index))
    assert ip in network.subnet(octet)
    assert ip != ipaddress.IPv4Address(network.gateway(octet))
    assert ip not in (network.subnet(octet).network_address, network.subnet(octet).broadcast_address)


def test_node_ip_rejects_out_of_range_index() -> None:
    with pytest.raises(LabError):
        network.node_ip(1, network.MAX_NODES + 1)


def test_filter_rules_allow_only_peers_and_the_mirror_on_http_ports() -> None:
    rules = network.filter_rules("sovbr5", ["203.0.113.80", "203.0.113.81"])
    accepts = [r for r in rules if r[-1] == "ACCEPT"]
    assert ["-i", "sovbr5", "-o", "sovbr5", "-j", "ACCEPT"] in accepts
    to_mirror = [r for r in accepts if "-d" in r]
    assert [r[r.index("-d") + 1] for r in to_mirror] == ["203.0.113.80", "203.0.113.81"]
    assert all("80,443" in r and "tcp" in r for r in to_mirror)
    # everything else from or to the bridge is dropped, and the drops come last
    assert rules[-2:] == [["-i", "sovbr5", "-j", "DROP"], ["-o", "sovbr5", "-j", "DROP"]]


def test_nat_masquerades_only_towards_the_mirror() -> None:
    assert network.nat_rules(["203.0.113.80"]) == [
        ["-d", "203.0.113.80", "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "MASQUERADE"]
    ]


def test_jumps_are_tagged_with_the_lab_and_scoped_to_its_subnet() -> None:
    parent, match = network.jump("nat", 12, "ci")
    assert parent == "POSTROUTING"
    assert match[:2] == ["-s", "10.250.12.0/24"] and match[-2:] == ["-j", "SOVLAB-12"]
    assert "sovereign lab ci" in match
    assert network.jump("filter", 12, "ci")[0] == "FORWARD"

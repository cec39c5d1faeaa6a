from __future__ import annotations

import pytest

from nodeconfig.acceptance import ib_facts as ib
from nodeconfig.acceptance.probes import ParseError
from tests.nodeconfig.acceptance.fakes import FIXTURES

HEALTHY = FIXTURES / "ib" / "hgx-ndr-healthy"
DEGRADED = FIXTURES / "ib" / "hgx-ndr-degraded"


def test_sysfs_healthy_ports() -> None:
    ports = ib.parse_sysfs_ports((HEALTHY / "sysfs.out").read_text())
    assert [p.name for p in ports] == [f"mlx5_{i}/1" for i in range(9)]
    first = ports[0]
    assert (first.state, first.phys_state, first.rate_gbps, first.link_layer) == (
        "ACTIVE", "LinkUp", 400.0, "InfiniBand",
    )  # fmt: skip
    assert first.rate_text == "400 Gb/sec (4X NDR)" and first.up
    assert ports[8].link_layer == "Ethernet"


def test_sysfs_degraded_ports() -> None:
    ports = {p.name: p for p in ib.parse_sysfs_ports((DEGRADED / "sysfs.out").read_text())}
    down = ports["mlx5_3/1"]
    assert (down.state, down.phys_state, down.up) == ("DOWN", "Polling", False)
    assert ports["mlx5_6/1"].rate_gbps == 200.0 and ports["mlx5_6/1"].up


def test_sysfs_fractional_rate() -> None:
    base = "/sys/class/infiniband/mlx5_0/ports/1"
    text = (
        f"{base}/state:4: ACTIVE\n{base}/phys_state:5: LinkUp\n"
        f"{base}/rate:2.5 Gb/sec (1X SDR)\n{base}/link_layer:InfiniBand\n"
    )
    (port,) = ib.parse_sysfs_ports(text)
    assert port.rate_gbps == 2.5


def test_sysfs_missing_attribute_is_an_error() -> None:
    with pytest.raises(ParseError, match="unreadable"):
        ib.parse_sysfs_ports("/sys/class/infiniband/mlx5_0/ports/1/state:4: ACTIVE\n")


def test_ibstat_healthy() -> None:
    cas = ib.parse_ibstat((HEALTHY / "ibstat.out").read_text())
    assert [ca.name for ca in cas] == [f"mlx5_{i}" for i in range(9)]
    assert cas[0].adapter == "ConnectX-7" and cas[0].firmware == "28.39.2048"
    port = cas[0].ports[0]
    assert (port.state, port.phys_state, port.rate_gbps, port.link_layer) == (
        "ACTIVE", "LinkUp", 400.0, "InfiniBand",
    )  # fmt: skip
    assert cas[8].ports[0].link_layer == "Ethernet"


def test_ibstat_agrees_with_sysfs_on_degraded_node() -> None:
    from_ibstat = [p for ca in ib.parse_ibstat((DEGRADED / "ibstat.out").read_text()) for p in ca.ports]
    from_sysfs = ib.parse_sysfs_ports((DEGRADED / "sysfs.out").read_text())
    assert [(p.name, p.state, p.phys_state, p.rate_gbps, p.link_layer) for p in from_ibstat] == [
        (p.name, p.state, p.phys_state, p.rate_gbps, p.link_layer) for p in from_sysfs
    ]


def test_ibstat_without_indentation() -> None:
    text = "CA 'mlx5_0'\nCA type: MT4123\nPort 1:\nState: Active\nPhysical state: LinkUp\nRate: 200\n"
    (ca,) = ib.parse_ibstat(text)
    assert ca.adapter == "ConnectX-6" and ca.ports[0].rate_gbps == 200.0


@pytest.mark.parametrize(
    "text",
    ["ibstat: command not found\n", "CA 'mlx5_0'\nPort 1:\nRate: 400\n", "CA 'mlx5_0'\nno colon here\n"],
)
def test_ibstat_garbage_is_an_error(text: str) -> None:
    with pytest.raises(ParseError):
        ib.parse_ibstat(text)

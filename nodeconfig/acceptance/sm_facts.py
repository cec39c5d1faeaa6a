"""Subnet-manager reachability of the fabric ports: pure judgement over the ports ib_facts parsed.

An InfiniBand port only carries traffic once a subnet manager (opensm, UFM, a managed switch) has
swept the subnet: it assigns the port a LID, records its own LID in the port (`sm_lid`) and moves
the port from INIT through ARMED to ACTIVE. What the node shows, and what each state means:
- physically up (LinkUp) but logically INIT ("Initializing" in ibstat): no subnet manager has
  swept this port; the usual cause is no SM running on the subnet;
- ARMED: a subnet manager configured the port but never activated it (a sweep that did not finish);
- ACTIVE with SM LID 0 or LID 0: the port claims to be active without a subnet manager's
  assignment, so nothing can address it.

Sources: the kernel's sysfs ABI for RDMA ports (`state` "4: ACTIVE", `phys_state` "5: LinkUp",
`lid`/`sm_lid` printed "0x%x", `sm_sl` decimal; drivers/infiniband/core/sysfs.c), ibstat(8)
("State: Initializing", "SM lid: 1"), and perftest's README ("a Subnet Manager must run on the
switch or on one of the nodes in your fabric"). RoCE ports (link layer Ethernet) have no subnet
manager: on a RoCE design the check passes saying so.
"""

from __future__ import annotations

from collections.abc import Iterable

from nodeconfig.acceptance.findings import Finding, failed, passed
from nodeconfig.acceptance.ib_facts import IbPort

CHECK = "subnet_manager"
_NOT_SWEPT = ("INIT", "INITIALIZING")


def subnet_manager_findings(ports: Iterable[IbPort], fabric_ports: Iterable[str], link_layer: str) -> list[Finding]:
    """`fabric_ports`: `<hca>/<port>` of the design's fabric ports; each must have reached a subnet manager."""
    if link_layer.lower() == "ethernet":
        return [passed(CHECK, "RoCE fabric (Ethernet link layer): no InfiniBand subnet manager to reach")]
    by_name = {p.name: p for p in ports}
    wanted = sorted(set(fabric_ports))
    if not wanted:
        return [failed(CHECK, "no fabric port to check")]
    problems = []
    sm_lids: dict[int, list[str]] = {}
    for name in wanted:
        port = by_name.get(name)
        if port is None:
            problems.append(f"{name}: no state in /sys/class/infiniband")
            continue
        problem = _problem(port)
        if problem:
            problems.append(f"{name}: {problem}")
        elif port.sm_lid is not None:
            sm_lids.setdefault(port.sm_lid, []).append(name)
    if problems:
        return [failed(CHECK, "; ".join(problems))]
    shown = ", ".join(f"SM LID {lid:#x} for {len(names)} port(s)" for lid, names in sorted(sm_lids.items()))
    return [passed(CHECK, f"{len(wanted)} fabric ports ACTIVE with a subnet manager's LID ({shown})")]


def _problem(port: IbPort) -> str | None:
    if port.phys_state != "LinkUp":
        return f"physical link {port.phys_state}: no path to a subnet manager (see ib_port_state)"
    if port.state in _NOT_SWEPT:
        return ("link up but stuck in INIT: no subnet manager has swept the port "
                "(is opensm/UFM running on this subnet?)")
    if port.state == "ARMED":
        return "ARMED: a subnet manager configured the port but never activated it"
    if port.state != "ACTIVE":
        return f"state {port.state}"
    if port.sm_lid is None:
        return "ACTIVE, but the SM LID could not be read (sysfs sm_lid or ibstat 'SM lid')"
    if port.sm_lid == 0:
        return "ACTIVE with SM LID 0x0: no subnet manager answers on this subnet"
    if port.lid == 0:
        return "ACTIVE with LID 0x0: the subnet manager assigned the port no address"
    return None

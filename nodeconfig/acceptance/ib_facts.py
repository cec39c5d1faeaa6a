"""Pure parsers for InfiniBand HCA port state. No I/O here.

Two sources: sysfs (`/sys/class/infiniband/<hca>/ports/<n>/{state,phys_state,rate,link_layer}`),
written by the kernel's RDMA core and present whenever the driver is loaded, and `ibstat`
(infiniband-diags), the tool operators read. Checks use sysfs and fall back to ibstat, so a
missing diagnostics package does not hide the port state.

Formats follow the kernel's sysfs ABI (Documentation/ABI/stable/sysfs-class-infiniband) and
ibstat(8) output as published in vendor and site documentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nodeconfig.acceptance.probes import ParseError, split_grep_h

IB_SYSFS_DIR = "/sys/class/infiniband/"
IB_PORT_ATTRS = ("state", "phys_state", "rate", "link_layer")
# Read when present (the burn-in's subnet-manager probe): the kernel prints the LIDs in hex
# ("0x1"), the SM's service level in decimal; ibstat prints both LIDs in decimal ("SM lid: 1").
IB_SM_ATTRS = ("lid", "sm_lid", "sm_sl")

# ibstat "CA type" -> adapter family (the PCI device id of the ConnectX function, in decimal,
# prefixed MT). From NVIDIA networking documentation and the PCI ID database (vendor 15b3).
CA_TYPES: dict[str, str] = {
    "MT4119": "ConnectX-5",
    "MT4123": "ConnectX-6",
    "MT4125": "ConnectX-6 Dx",
    "MT4129": "ConnectX-7",
    "MT4131": "ConnectX-8",
    "MT41692": "BlueField-3",
}


@dataclass(frozen=True)
class IbPort:
    hca: str  # "mlx5_0"
    port: int
    state: str  # logical state, upper case: "ACTIVE", "DOWN", "INIT", "ARMED"
    phys_state: str  # "LinkUp", "Polling", "Disabled", ...
    rate_gbps: float | None  # None when the port does not report a rate
    rate_text: str  # as read, for messages: "400 Gb/sec (4X NDR)"
    link_layer: str  # "InfiniBand" or "Ethernet" (RoCE)
    # Subnet manager view (None: not read). A LID is 0 until a subnet manager has assigned one.
    lid: int | None = None
    sm_lid: int | None = None
    sm_sl: int | None = None

    @property
    def name(self) -> str:
        return f"{self.hca}/{self.port}"

    @property
    def up(self) -> bool:
        return self.state == "ACTIVE" and self.phys_state == "LinkUp"


@dataclass(frozen=True)
class IbCa:
    name: str
    ca_type: str
    firmware: str
    ports: tuple[IbPort, ...]

    @property
    def adapter(self) -> str:
        return CA_TYPES.get(self.ca_type, self.ca_type)


def _strip_code(value: str) -> str:
    # sysfs prefixes enumerations with their numeric code: "4: ACTIVE", "5: LinkUp".
    return value.split(":", 1)[1].strip() if re.match(r"^\d+:", value) else value.strip()


def _rate(value: str) -> float | None:
    match = re.match(r"^\s*(\d+(?:\.\d+)?)", value)
    return float(match.group(1)) if match else None


def _number(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip(), 0)  # "0x1a" (sysfs LIDs), "26" (ibstat, sm_sl)
    except ValueError:
        raise ParseError(f"{where}: {value.strip()!r} is not a number") from None


def parse_sysfs_ports(text: str) -> list[IbPort]:
    """Parse `grep -H . /sys/class/infiniband/*/ports/*/{state,phys_state,rate,link_layer}`, with
    `lid`, `sm_lid` and `sm_sl` when the probe read them too."""
    ports: dict[tuple[str, int], dict[str, str]] = {}
    for path, lines in split_grep_h(text, IB_SYSFS_DIR, IB_PORT_ATTRS + IB_SM_ATTRS).items():
        parts = path[len(IB_SYSFS_DIR) :].split("/")
        if len(parts) != 4 or parts[1] != "ports" or not parts[2].isdigit():
            raise ParseError(f"unexpected InfiniBand sysfs path: {path}")
        ports.setdefault((parts[0], int(parts[2])), {})[parts[3]] = lines[0].strip()
    result = []
    for (hca, port), attrs in sorted(ports.items()):
        missing = set(IB_PORT_ATTRS) - attrs.keys()
        if missing:
            raise ParseError(f"{hca} port {port}: unreadable {', '.join(sorted(missing))}")
        result.append(
            IbPort(
                hca=hca,
                port=port,
                state=_strip_code(attrs["state"]).upper(),
                phys_state=_strip_code(attrs["phys_state"]),
                rate_gbps=_rate(attrs["rate"]),
                rate_text=attrs["rate"],
                link_layer=attrs["link_layer"],
                lid=_number(attrs.get("lid"), f"{hca} port {port} lid"),
                sm_lid=_number(attrs.get("sm_lid"), f"{hca} port {port} sm_lid"),
                sm_sl=_number(attrs.get("sm_sl"), f"{hca} port {port} sm_sl"),
            )
        )
    return result


_CA = re.compile(r"^CA '([^']+)'$")
_PORT = re.compile(r"^Port (\d+):$")


def parse_ibstat(text: str) -> list[IbCa]:
    """Parse `ibstat` (all CAs): `CA 'mlx5_0'` blocks with `Key: value` lines and `Port N:`
    sub-blocks. Indentation is not relied upon: some builds print none."""
    cas: list[IbCa] = []
    ca: dict[str, str] | None = None
    ports: list[dict[str, str]] = []
    name = ""

    def close() -> None:
        if ca is not None:
            cas.append(_make_ca(name, ca, ports))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if m := _CA.match(line):
            close()
            name, ca, ports = m.group(1), {}, []
        elif ca is None:
            raise ParseError(f"ibstat output before any CA block: {line!r}")
        elif m := _PORT.match(line):
            ports.append({"Port": m.group(1)})
        else:
            key, sep, value = line.partition(":")
            if not sep:
                raise ParseError(f"unexpected ibstat line: {line!r}")
            (ports[-1] if ports else ca)[key.strip()] = value.strip()
    close()
    return cas


def _make_ca(name: str, ca: dict[str, str], ports: list[dict[str, str]]) -> IbCa:
    parsed = []
    for p in ports:
        try:
            parsed.append(
                IbPort(
                    hca=name,
                    port=int(p["Port"]),
                    state=p["State"].upper(),
                    phys_state=p["Physical state"],
                    rate_gbps=_rate(p.get("Rate", "")),
                    rate_text=f"{p.get('Rate', '?')} Gb/sec",
                    link_layer=p.get("Link layer", "InfiniBand"),
                    lid=_number(p.get("Base lid"), f"ibstat CA '{name}' port {p['Port']} Base lid"),
                    sm_lid=_number(p.get("SM lid"), f"ibstat CA '{name}' port {p['Port']} SM lid"),
                )
            )
        except KeyError as exc:
            raise ParseError(f"ibstat: CA '{name}' port {p['Port']} has no {exc.args[0]}") from exc
    return IbCa(
        name=name,
        ca_type=ca.get("CA type", ""),
        firmware=ca.get("Firmware version", ""),
        ports=tuple(parsed),
    )

"""The partnership: one country's agreement to build AI compute, as one validated document.

Everything else (sizing, stack resources, the ministry report) is derived from this model, so it
validates everything a reviewer could get wrong and says which field is wrong and why.
"""

from __future__ import annotations

import ipaddress
import math
import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

import pycountry
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    StrictBool,
    field_validator,
    model_serializer,
    model_validator,
)

from stacks.design.catalog import PLATFORMS
from stacks.design.yamldoc import short_repr as _short

SCHEMA_VERSION = 1
# Shares are written as decimals (0.6, 0.4) whose binary sum is off by ~1e-16, never by 1e-9;
# a looser tolerance lets the money split differ from the capex by whole dollars.
SHARE_TOLERANCE = 1e-9
_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
# Every field is one line of text printed on reports and consoles: no NUL, ESC, newlines or other
# control characters, and no bidirectional overrides that make a reviewer read another text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Pools a site may use without saying so: private (RFC 1918), shared (RFC 6598), benchmarking
# (RFC 2544) and documentation (RFC 5737) ranges. Anything else needs `networks.public: true`.
NON_PUBLIC = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "198.18.0.0/15",
              "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
# A canonical IPv4 CIDR (no leading zeros): parsed by hand, ~50x faster than ipaddress, which
# dominated validating thousands of sites. Anything else goes through ipaddress for its message.
_OCTET = r"(0|[1-9][0-9]{0,2})"
_CANONICAL_V4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}/([0-9]|[12][0-9]|3[0-2])")

# A count is written as a number: `true` is not 1 and "12" is not 12.
Count = Annotated[int, Strict()]
# A figure is an int or a float, finite; not a bool, not text.
Number = Annotated[float, Strict()]


class LocatedErrors(ValueError):
    """Several problems from one validator, each at its own path below the model (the loader
    reports each with its own line and field, all at once)."""

    def __init__(self, errors: list[tuple[tuple[Any, ...], str]]):
        self.errors = errors
        super().__init__("; ".join(message for _, message in errors))


class Model(BaseModel):
    # Unknown keys are typos in a reviewed document, not extensions: reject them.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and _CONTROL.search(text):
                raise ValueError("contains a control character (NUL, ESC, a newline, a bidi override...): remove it")
        return value


class Mode(StrEnum):
    EXPAND = "expand"
    GREENFIELD = "greenfield"


class Cooling(StrEnum):
    AIR = "air"
    LIQUID = "liquid"


class PartyKind(StrEnum):
    GOVERNMENT = "government"
    PARTNER = "partner"


Slug = Annotated[str, Field(pattern=_SLUG.pattern, description="lower-case name: a-z, 0-9, '-'")]
Share = Annotated[float, Strict(), Field(gt=0, le=1)]


@lru_cache(maxsize=65536)  # each pool is read by three checks
def span(cidr: str) -> tuple[int, int]:
    """First and last address of a CIDR that `_cidr` accepted, as integers."""
    address, prefix = cidr.split("/")
    a, b, c, d = (int(octet) for octet in address.split("."))
    first = (a << 24) | (b << 16) | (c << 8) | d
    return first, first + (1 << (32 - int(prefix))) - 1


def _contains(outer: tuple[int, int], inner: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


_NON_PUBLIC_SPANS = tuple(span(n) for n in NON_PUBLIC)


def _cidr(value: str) -> str:
    match = _CANONICAL_V4.fullmatch(value)
    if match and all(int(octet) <= 255 for octet in match.groups()[:4]):
        first, last = span(value)
        if first & (last - first) == 0 and int(match[5]) <= 30:  # no host bits set; big enough
            return value
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        reason = str(exc) if len(str(exc)) <= 120 else "not a network"
        raise ValueError(f"expected an IPv4 CIDR like 10.20.0.0/16, got {_short(value)} ({reason})") from None
    if net.version != 4:
        raise ValueError(f"expected an IPv4 CIDR, got {_short(value)}")
    if net.prefixlen > 30:
        raise ValueError(f"{_short(value)} is too small for a pool: use /30 or larger")
    return str(net)


class FundingShare(Model):
    party: str = Field(min_length=1, description="who pays, e.g. 'Ministry of ICT'")
    kind: PartyKind
    share: Share


class RegistryMirror(Model):
    upstream: str = Field(min_length=1, description="registry as images name it, e.g. nvcr.io")
    mirror: str = Field(pattern=r"^https://[^\s/]+(/\S*)?$", description="in-country mirror URL")


class PackageMirror(Model):
    upstream: str = Field(
        pattern=r"^[^\s/:]+(/\S*)?$",
        description="archive as host/path of its public URL, e.g. deb.debian.org/debian",
    )
    # http is usual for apt mirrors: packages are verified by the archive's signature, not TLS.
    mirror: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$", description="in-country mirror URL")


class Egress(Model):
    default: Literal["deny", "allow"] = "deny"
    allowed: list[str] = []


class Sovereignty(Model):
    data_residency: list[str] = Field(
        min_length=1, description="ISO 3166-1 alpha-2 codes where data may rest"
    )
    registries: list[RegistryMirror] = []
    package_mirrors: list[PackageMirror] = []
    egress: Egress = Egress()
    export_controls: list[str] = Field(
        default=[], description="constraints the build must respect, e.g. 'US EAR 3A090'"
    )
    chart_mirror: str | None = Field(
        default=None, pattern=r"^https://[^\s/]+(/\S*)?$",
        description="in-country Helm chart repository; absent: the charts' public repositories",
    )

    @field_validator("data_residency")
    @classmethod
    def _countries(cls, codes: list[str]) -> list[str]:
        return [_country(code) for code in codes]

    @model_serializer(mode="wrap")
    def _without_unset_mirror(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped = handler(self)  # as Site: no chart mirror dumps (and digests) as before the field
        if self.chart_mirror is None:
            dumped.pop("chart_mirror", None)
        return dumped


class Networks(Model):
    data: str = Field(description="in-band data/compute network pool (CIDR)")
    storage: str = Field(description="storage network pool (CIDR)")
    oob: str = Field(description="out-of-band (BMC) network pool (CIDR)")
    compute: str | None = Field(
        default=None,
        description="compute fabric pool (CIDR), optional: split into one subnet per rail for the GPU nodes' IPoIB addresses",
    )
    public: StrictBool = Field(default=False, description="true: the pools are the site's own public addresses")

    @field_validator("data", "storage", "oob", "compute")
    @classmethod
    def _pool(cls, value: str | None) -> str | None:
        return None if value is None else _cidr(value)

    @model_serializer(mode="wrap")
    def _without_unset_compute(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A site without a compute pool dumps as before it existed: plan digests, and so the
        # approvals signed over them, do not change for designs that do not use it.
        dumped = handler(self)
        if self.compute is None:
            dumped.pop("compute", None)
        return dumped

    def named(self) -> dict[str, str]:
        """The pools this site sets, by name."""
        pools = {"data": self.data, "storage": self.storage, "oob": self.oob}
        return pools | ({"compute": self.compute} if self.compute is not None else {})

    @model_validator(mode="after")
    def _disjoint(self) -> Networks:
        pools = {name: span(cidr) for name, cidr in self.named().items()}
        names = list(pools)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if pools[a][0] <= pools[b][1] and pools[b][0] <= pools[a][1]:
                    raise ValueError(f"pools {a} ({getattr(self, a)}) and {b} ({getattr(self, b)}) overlap")
        outside = [name for name, pool in pools.items() if not any(_contains(s, pool) for s in _NON_PUBLIC_SPANS)]
        if outside and not self.public:
            raise LocatedErrors(
                [
                    ((name,), f"{getattr(self, name)} is a public range, not a private or documentation one "
                              f"({', '.join(NON_PUBLIC)}); set networks.public: true if the site owns it")
                    for name in outside
                ]
            )
        return self


class Capacity(Model):
    platform: str = Field(description="GPU platform from the catalog, e.g. hgx-h100")
    gpus: Count | None = Field(default=None, gt=0, le=2_000_000)
    scalable_units: Count | None = Field(default=None, gt=0, le=10_000)

    @field_validator("platform")
    @classmethod
    def _known(cls, key: str) -> str:
        if key not in PLATFORMS:
            raise ValueError(f"unknown GPU platform {_short(key)}; the catalog has: {', '.join(PLATFORMS)}")
        return key

    @model_validator(mode="after")
    def _one_target(self) -> Capacity:
        if (self.gpus is None) == (self.scalable_units is None):
            raise ValueError("give exactly one of 'gpus' or 'scalable_units'")
        return self


class ExistingCluster(Model):
    name: str = Field(min_length=1)
    api_endpoint: str = Field(pattern=r"^https://\S+$")
    kubeconfig_secret: str = Field(
        default="kubeconfig", description="stack config secret holding the kubeconfig"
    )


class Existing(Model):
    """What an expand site already runs; the design subtracts it."""

    racks: Count = Field(ge=0, le=1_000_000)
    nodes: Count = Field(ge=0, le=10_000_000)
    gpus: Count = Field(ge=0, le=10_000_000)
    platform: str | None = Field(default=None, description="catalog key of the existing GPUs")
    power_mw: Number = Field(ge=0, le=5000, description="facility power already drawn (MW)")
    cluster: ExistingCluster | None = None

    @field_validator("platform")
    @classmethod
    def _known(cls, key: str | None) -> str | None:
        if key is not None and key not in PLATFORMS:
            raise ValueError(f"unknown GPU platform {_short(key)}; the catalog has: {', '.join(PLATFORMS)}")
        return key


class DriverMode(StrEnum):
    OPERATOR = "operator"  # the GPU Operator's driver container owns the driver
    HOST = "host"  # the nvidia_host role installs it; the operator leaves it alone


class GpuDriver(Model):
    """Who owns the GPU driver on a site's nodes: the node roles and the GPU Operator must agree."""

    mode: DriverMode = DriverMode.OPERATOR
    version: str | None = Field(default=None, pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$",
                                description="exact driver version; absent: the GPU Operator release's default")
    mig_strategy: Literal["none", "single", "mixed"] = "single"


class LogCollector(Model):
    """The site's log collector: every node forwards its journal and audit events there."""

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9.:-]*$",
                      description="name or address of the collector (syslog over TCP)")
    port: Count = Field(default=6514, ge=1, le=65535, description="6514: syslog over TLS (RFC 5425)")
    tls: StrictBool = Field(default=True, description="false only where the network to the collector is trusted")


class Site(Model):
    name: Slug
    city: str = Field(min_length=1)
    region: str = Field(min_length=1)
    power_budget_mw: Number = Field(gt=0, le=5000, description="facility power envelope (MW)")
    pue: Number = Field(ge=1.0, le=3.0)
    cooling: Cooling
    max_rack_kw: Number = Field(gt=0, le=400)
    rack_positions: Count | None = Field(default=None, gt=0, le=1_000_000, description="floor space, in racks")
    networks: Networks
    capacity: Capacity
    ntp_servers: list[str] = []
    gpu_driver: GpuDriver = GpuDriver()
    log_collector: LogCollector | None = None
    existing: Existing | None = None

    @model_serializer(mode="wrap")
    def _without_unset_optionals(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # As Networks.compute: a site without a collector or driver settings dumps (and digests)
        # as before, so plans approved before these fields existed stay approved.
        dumped = handler(self)
        if self.log_collector is None:
            dumped.pop("log_collector", None)
        if self.gpu_driver == GpuDriver():
            dumped.pop("gpu_driver", None)
        return dumped

    @model_validator(mode="after")
    def _existing_fits(self) -> Site:
        if self.existing and self.rack_positions is not None and self.existing.racks > self.rack_positions:
            raise LocatedErrors(
                [(("existing", "racks"), f"{self.existing.racks:,} existing racks, but the floor has only "
                                         f"{self.rack_positions:,} rack positions")]
            )
        return self


class TenantKind(StrEnum):
    AGENCY = "agency"
    UNIVERSITY = "university"
    RESEARCH = "research"
    COMPANY = "company"


class Tenant(Model):
    """An agency or university that runs work on the national compute, within a GPU quota."""

    # A namespace `tenant-<name>` carries it: a DNS label of at most 63 characters.
    name: str = Field(pattern=r"^[a-z]([a-z0-9-]{0,48}[a-z0-9])?$", description="short name, e.g. 'knbs'")
    title: str = Field(min_length=1, description="full name reviewers see")
    kind: TenantKind
    gpu_quota: Count = Field(ge=0, le=10_000_000, description="GPUs its workloads may request at once")
    admins: list[str] = Field(default=[], description="user names (as the cluster authenticates them)")


class Partnership(Model):
    schema_version: Literal[1] = Field(description="bump with a migration when the schema changes")
    name: str = Field(min_length=1, description="title reviewers see, e.g. 'Kenya National AI Compute'")
    country: str = Field(description="ISO 3166-1 alpha-2")
    languages: list[str] = Field(min_length=1, description="official languages, ISO 639-1")
    currency: str = Field(description="ISO 4217 code")
    # Bounded so money in local currency stays a finite number (1e308 passed once, then crashed).
    usd_rate: Number = Field(default=1.0, gt=0, le=1e9, description="units of currency per US dollar")
    operating_authority: str = Field(min_length=1, description="named on login banners and reports")
    mode: Mode
    funding: list[FundingShare] = Field(min_length=1)
    sovereignty: Sovereignty
    sites: list[Site] = Field(min_length=1)
    approval: Approval | None = None  # who must sign a plan before `up` applies it (issue 14)
    tenants: list[Tenant] = []

    @field_validator("country")
    @classmethod
    def _country_code(cls, code: str) -> str:
        return _country(code)

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if len(code) != 2 or pycountry.languages.get(alpha_2=code.lower()) is None:
                raise ValueError(f"{_short(code)} is not an ISO 639-1 language code (e.g. 'en', 'sw')")
        return [code.lower() for code in codes]

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, code: str) -> str:
        if pycountry.currencies.get(alpha_3=code.upper()) is None:
            raise ValueError(f"{_short(code)} is not an ISO 4217 currency code (e.g. 'KES', 'EUR')")
        return code.upper()

    @field_validator("funding")
    @classmethod
    def _shares_sum_to_one(cls, shares: list[FundingShare]) -> list[FundingShare]:
        total = math.fsum(s.share for s in shares)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"funding shares must sum to 1, they sum to {total:.12g}")
        if not any(s.kind is PartyKind.GOVERNMENT for s in shares):
            raise ValueError("a partnership is accountable to a government: add a government share")
        return shares

    @model_serializer(mode="wrap")
    def _without_unset_tenants(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped = handler(self)  # as Site: no tenants dumps (and digests) as before the field
        if not self.tenants:
            dumped.pop("tenants", None)
        return dumped

    @model_validator(mode="after")
    def _sites_consistent(self) -> Partnership:
        # Every cross-site problem at once, each at the site it concerns (see LocatedErrors).
        errors: list[tuple[tuple[Any, ...], str]] = []
        first: dict[str, int] = {}
        for index, site in enumerate(self.sites):
            if site.name in first:
                errors.append(
                    (("sites", index, "name"), f"site name {site.name!r} is already used by sites[{first[site.name]}]")
                )
            first.setdefault(site.name, index)
            if self.mode is Mode.EXPAND and site.existing is None:
                errors.append(
                    (("sites", index), f"site {site.name!r}: an expand partnership lists 'existing' assets")
                )
            if self.mode is Mode.GREENFIELD and site.existing is not None:
                errors.append(
                    (("sites", index, "existing"), f"site {site.name!r}: a greenfield site has no 'existing' assets")
                )
        errors += _pools_disjoint_across_sites(self.sites)
        named: dict[str, int] = {}
        for index, tenant in enumerate(self.tenants):
            if tenant.name in named:
                errors.append((("tenants", index, "name"),
                               f"tenant name {tenant.name!r} is already used by tenants[{named[tenant.name]}]"))
            named.setdefault(tenant.name, index)
        if errors:
            raise LocatedErrors(errors)
        return self


# --- approval: reviewers' keys (issue 14) -------------------------------------------------
# Kept in one block so schema work elsewhere merges cleanly. The keys are part of the reviewed
# document, so changing who may approve changes the plan digest and voids earlier approvals.


class Reviewer(Model):
    name: str = Field(min_length=1, description="who signs, e.g. 'Permanent Secretary, ICT'")
    kind: PartyKind = Field(description="the party this reviewer signs for")
    public_key: str = Field(description="OpenSSH ed25519 public key: 'ssh-ed25519 AAAA… comment'")

    @field_validator("public_key")
    @classmethod
    def _ed25519(cls, value: str) -> str:
        from stacks.design.signing import UnusableKey, parse_public_key

        try:
            parse_public_key(value)
        except UnusableKey as exc:
            raise ValueError(str(exc)) from None
        return value


class Approval(Model):
    reviewers: list[Reviewer] = Field(min_length=1)
    required: list[PartyKind] = Field(
        default=[PartyKind.GOVERNMENT, PartyKind.PARTNER],
        description="parties that must each approve a plan before it is applied",
    )

    @model_validator(mode="after")
    def _every_required_party_has_a_reviewer(self) -> Approval:
        kinds = {r.kind for r in self.reviewers}
        missing = [k.value for k in self.required if k not in kinds]
        if missing:
            raise ValueError(f"required part{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)} "
                             f"{'have' if len(missing) > 1 else 'has'} no reviewer: add one under approval.reviewers")
        return self


Partnership.model_rebuild()  # Approval is declared after Partnership

# --- end approval ------------------------------------------------------------------------


def _country(code: str) -> str:
    if len(code) != 2 or pycountry.countries.get(alpha_2=code.upper()) is None:
        raise ValueError(f"{_short(code)} is not an ISO 3166-1 alpha-2 country code (e.g. 'KE', 'BR')")
    return code.upper()


def _pools_disjoint_across_sites(sites: list[Site]) -> list[tuple[tuple[Any, ...], str]]:
    """Sites of one country share a routed WAN, so their pools must not overlap either.

    CIDR blocks either nest or are disjoint, so after sorting by (first address, size descending)
    a block overlaps an earlier one only if it lies inside it: a stack of the enclosing blocks
    finds every overlap in O(n log n) (10,000 sites: milliseconds, not minutes).
    """
    pools = sorted(
        (start, start - end, end, index, pool, cidr)
        for index, site in enumerate(sites)
        for pool, cidr in site.networks.named().items()
        for start, end in [span(cidr)]
    )
    errors = []
    enclosing: list[tuple[int, int, str, str]] = []
    for start, _, end, index, pool, net in pools:
        while enclosing and enclosing[-1][0] < start:
            enclosing.pop()
        # Pools of one site are disjoint (Networks checks), so the innermost block is another site's.
        outer = next((e for e in reversed(enclosing) if e[1] != index), None)
        if outer is not None:
            _, other, other_pool, other_net = outer
            errors.append(
                (
                    ("sites", index, "networks", pool),
                    f"site {sites[index].name!r} pool {pool} ({net}) overlaps "
                    f"site {sites[other].name!r} pool {other_pool} ({other_net})",
                )
            )
        enclosing.append((end, index, pool, net))
    return sorted(errors)

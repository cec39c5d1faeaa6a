"""The partnership: one country's agreement to build AI compute, as one validated document.

Everything else (sizing, stack resources, the ministry report) is derived from this model, so it
validates everything a reviewer could get wrong and says which field is wrong and why.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stacks.design.catalog import PLATFORMS

SCHEMA_VERSION = 1
SHARE_TOLERANCE = 1e-6
_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")


class Model(BaseModel):
    # Unknown keys are typos in a reviewed document, not extensions: reject them.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


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
Share = Annotated[float, Field(gt=0, le=1)]


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"expected an IPv4 CIDR like 10.20.0.0/16, got {value!r} ({exc})") from None
    if net.version != 4:
        raise ValueError(f"expected an IPv4 CIDR, got {value!r}")
    if net.prefixlen > 30:
        raise ValueError(f"{value!r} is too small for a pool: use /30 or larger")
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

    @field_validator("data_residency")
    @classmethod
    def _countries(cls, codes: list[str]) -> list[str]:
        return [_country(code) for code in codes]


class Networks(Model):
    data: str = Field(description="in-band data/compute network pool (CIDR)")
    storage: str = Field(description="storage network pool (CIDR)")
    oob: str = Field(description="out-of-band (BMC) network pool (CIDR)")

    @field_validator("data", "storage", "oob")
    @classmethod
    def _pool(cls, value: str) -> str:
        return _cidr(value)

    @model_validator(mode="after")
    def _disjoint(self) -> Networks:
        pools = {name: ipaddress.ip_network(getattr(self, name)) for name in ("data", "storage", "oob")}
        names = list(pools)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if pools[a].overlaps(pools[b]):
                    raise ValueError(f"pools {a} ({pools[a]}) and {b} ({pools[b]}) overlap")
        return self


class Capacity(Model):
    platform: str = Field(description="GPU platform from the catalog, e.g. hgx-h100")
    gpus: int | None = Field(default=None, gt=0, le=2_000_000)
    scalable_units: int | None = Field(default=None, gt=0, le=10_000)

    @field_validator("platform")
    @classmethod
    def _known(cls, key: str) -> str:
        if key not in PLATFORMS:
            raise ValueError(f"unknown GPU platform {key!r}; the catalog has: {', '.join(PLATFORMS)}")
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

    racks: int = Field(ge=0)
    nodes: int = Field(ge=0)
    gpus: int = Field(ge=0)
    platform: str | None = Field(default=None, description="catalog key of the existing GPUs")
    power_mw: float = Field(ge=0, description="facility power already drawn (MW)")
    cluster: ExistingCluster | None = None


class Site(Model):
    name: Slug
    city: str = Field(min_length=1)
    region: str = Field(min_length=1)
    power_budget_mw: float = Field(gt=0, le=5000, description="facility power envelope (MW)")
    pue: float = Field(ge=1.0, le=3.0)
    cooling: Cooling
    max_rack_kw: float = Field(gt=0, le=400)
    rack_positions: int | None = Field(default=None, gt=0, description="floor space, in racks")
    networks: Networks
    capacity: Capacity
    ntp_servers: list[str] = []
    existing: Existing | None = None


class Partnership(Model):
    schema_version: Literal[1] = Field(description="bump with a migration when the schema changes")
    name: str = Field(min_length=1, description="title reviewers see, e.g. 'Kenya National AI Compute'")
    country: str = Field(description="ISO 3166-1 alpha-2")
    languages: list[str] = Field(min_length=1, description="official languages, ISO 639-1")
    currency: str = Field(description="ISO 4217 code")
    usd_rate: float = Field(default=1.0, gt=0, description="units of currency per US dollar")
    operating_authority: str = Field(min_length=1, description="named on login banners and reports")
    mode: Mode
    funding: list[FundingShare] = Field(min_length=1)
    sovereignty: Sovereignty
    sites: list[Site] = Field(min_length=1)

    @field_validator("country")
    @classmethod
    def _country_code(cls, code: str) -> str:
        return _country(code)

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if len(code) != 2 or pycountry.languages.get(alpha_2=code.lower()) is None:
                raise ValueError(f"{code!r} is not an ISO 639-1 language code (e.g. 'en', 'sw')")
        return [code.lower() for code in codes]

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, code: str) -> str:
        if pycountry.currencies.get(alpha_3=code.upper()) is None:
            raise ValueError(f"{code!r} is not an ISO 4217 currency code (e.g. 'KES', 'EUR')")
        return code.upper()

    @field_validator("funding")
    @classmethod
    def _shares_sum_to_one(cls, shares: list[FundingShare]) -> list[FundingShare]:
        total = sum(s.share for s in shares)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"funding shares must sum to 1, they sum to {total:.6g}")
        if not any(s.kind is PartyKind.GOVERNMENT for s in shares):
            raise ValueError("a partnership is accountable to a government: add a government share")
        return shares

    @model_validator(mode="after")
    def _sites_consistent(self) -> Partnership:
        names = [s.name for s in self.sites]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"site names must be unique, repeated: {', '.join(dupes)}")
        for site in self.sites:
            if self.mode is Mode.EXPAND and site.existing is None:
                raise ValueError(f"site {site.name!r}: an expand partnership lists 'existing' assets")
            if self.mode is Mode.GREENFIELD and site.existing is not None:
                raise ValueError(f"site {site.name!r}: a greenfield site has no 'existing' assets")
        _pools_disjoint_across_sites(self.sites)
        return self


def _country(code: str) -> str:
    if len(code) != 2 or pycountry.countries.get(alpha_2=code.upper()) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. 'KE', 'BR')")
    return code.upper()


def _pools_disjoint_across_sites(sites: list[Site]) -> None:
    # Sites of one country share a routed WAN, so their pools must not overlap either.
    seen: list[tuple[str, str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for site in sites:
        for pool in ("data", "storage", "oob"):
            net = ipaddress.ip_network(getattr(site.networks, pool))
            for other_site, other_pool, other in seen:
                if other_site != site.name and net.overlaps(other):
                    raise ValueError(
                        f"site {site.name!r} pool {pool} ({net}) overlaps "
                        f"site {other_site!r} pool {other_pool} ({other})"
                    )
            seen.append((site.name, pool, net))

"""Starter partnerships for `sovereign new`: a valid placeholder document, rendered from a template.

A starter must pass `sovereign validate` as written, so people start from a file that works and
replace the placeholders the comments mark with FILL IN. Country facts that public data can give
(the country's name, official languages, currency) come from ISO 3166 (pycountry) and the Unicode
CLDR (babel); everything else is a plausible placeholder the person must replace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

import jinja2
import pycountry
import yaml
from babel.languages import get_official_languages
from babel.numbers import get_territory_currencies
from pydantic import TypeAdapter, ValidationError

from stacks.design.assets import asset_dir
from stacks.design.partnership import (
    Capacity,
    Cooling,
    Egress,
    Existing,
    ExistingCluster,
    FundingShare,
    Mode,
    Networks,
    Partnership,
    PartyKind,
    RegistryMirror,
    Site,
    Slug,
    Sovereignty,
)

# Shipped inside the package, found the same way from a checkout and from an installed wheel.
TEMPLATES_DIR = asset_dir("templates")
TEMPLATE_FILE = "stack.yaml.j2"
DEFAULT_ENV = "staging"
DEFAULT_SITE = "site-1"
_ENV = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_SLUG = TypeAdapter(Slug)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: ~10x faster

# Each site gets three consecutive /16s from 10.<first octet>.0.0; 10.0-9 are left to whatever the
# country's WAN already uses. Placeholders all the same: the comments ask for the real plan.
_FIRST_POOL_OCTET = 10
MAX_SITES = (255 - _FIRST_POOL_OCTET + 1) // 3

# Registries every platform layer pulls from (GPU Operator, Network Operator, Kubernetes itself).
_UPSTREAM_REGISTRIES = {"nvcr": "nvcr.io", "dockerhub": "docker.io", "k8s": "registry.k8s.io"}


class StarterError(ValueError):
    """An argument to `new` is wrong; `param` names it (country, template, env, site)."""

    def __init__(self, param: str, message: str):
        self.param = param
        self.message = message
        super().__init__(f"{param}: {message}")


@dataclass(frozen=True, slots=True)
class Starter:
    """What a template renders: the starter partnership plus what the templates must flag."""

    partnership: Partnership
    env: str
    country_name: str
    # Fields CLDR could not answer, so they hold a fallback ('languages', 'currency').
    guessed: frozenset[str] = frozenset()

    @property
    def mode(self) -> str:
        return self.partnership.mode.value

    @property
    def stack(self) -> str:
        return f"{self.partnership.country.lower()}-{self.env}"

    @property
    def template(self) -> str:
        return f"{self.mode}/{TEMPLATE_FILE}"


def build_starter(
    country: str,
    template: str | Mode,
    env: str = DEFAULT_ENV,
    sites: Sequence[str] = (),
) -> Starter:
    code, name = _country(country)
    mode = _mode(template)
    if not _ENV.fullmatch(env):
        raise StarterError("env", f"{env!r} is not a slug: lower-case a-z, 0-9 and '-', e.g. 'staging'")
    site_names = _site_names(sites)
    languages, languages_guessed = _languages(code)
    currency, currency_guessed = _currency(code)
    government = f"Government of {_with_article(name)}"
    domain = f"registry.{code.lower()}.example"  # RFC 2606 reserved: cannot be mistaken for real
    partnership = Partnership(
        schema_version=1,
        name=f"{name} National AI Compute",
        country=code,
        languages=list(languages),
        currency=currency,
        usd_rate=1.0,
        operating_authority=government,
        mode=mode,
        funding=[FundingShare(party=government, kind=PartyKind.GOVERNMENT, share=1.0)],
        sovereignty=Sovereignty(
            data_residency=[code],
            registries=[
                RegistryMirror(upstream=upstream, mirror=f"https://{domain}/{path}")
                for path, upstream in _UPSTREAM_REGISTRIES.items()
            ],
            egress=Egress(default="deny", allowed=[domain]),
        ),
        sites=list(
            _site(site, index, mode, code, shared_secret=len(site_names) == 1)
            for index, site in enumerate(site_names)
        ),
    )
    guessed = {"languages"} if languages_guessed else set()
    guessed |= {"currency"} if currency_guessed else set()
    return Starter(partnership=partnership, env=env, country_name=name, guessed=frozenset(guessed))


def _site(name: str, index: int, mode: Mode, country: str, *, shared_secret: bool) -> Site:
    octet = _FIRST_POOL_OCTET + 3 * index
    networks = Networks(
        data=f"10.{octet}.0.0/16", storage=f"10.{octet + 1}.0.0/16", oob=f"10.{octet + 2}.0.0/16"
    )
    if mode is Mode.GREENFIELD:
        # An air-cooled hall of 4 HGX nodes per rack (rear-door heat exchangers), like DGX SuperPOD.
        return Site(
            name=name,
            city="TBD",
            region="TBD",
            power_budget_mw=20.0,
            pue=1.4,
            cooling=Cooling.AIR,
            max_rack_kw=42.0,
            rack_positions=400,
            networks=networks,
            capacity=Capacity(platform="hgx-h200", scalable_units=16),
        )
    # An existing enterprise hall: lower rack power (2 HGX nodes per rack), a CPU cluster in place.
    return Site(
        name=name,
        city="TBD",
        region="TBD",
        power_budget_mw=20.0,
        pue=1.5,
        cooling=Cooling.AIR,
        max_rack_kw=25.0,
        rack_positions=300,
        networks=networks,
        capacity=Capacity(platform="hgx-h200", scalable_units=4),
        existing=Existing(
            racks=40,
            nodes=200,
            gpus=0,
            power_mw=2.0,
            cluster=ExistingCluster(
                name=f"{country.lower()}-{name}-existing",
                api_endpoint=f"https://api.{name}.{country.lower()}.example:6443",
                # One cluster per site, so one secret each once there are several.
                kubeconfig_secret="kubeconfig" if shared_secret else f"kubeconfig-{name}",
            ),
        ),
    )


def _country(value: str) -> tuple[str, str]:
    country = pycountry.countries.get(alpha_2=value.upper()) if len(value) == 2 else None
    if country is None:
        hint = "e.g. KE, BR, DE"
        try:
            match = pycountry.countries.lookup(value)
        except LookupError:
            pass
        else:
            hint = f"for {_common_name(match)} that is {match.alpha_2}"
        raise StarterError("country", f"{value!r} is not an ISO 3166-1 alpha-2 country code ({hint})")
    return country.alpha_2, _common_name(country)


def _common_name(country: Any) -> str:
    # 'Korea, Republic of' reads badly in a title; pycountry keeps the everyday name apart.
    return getattr(country, "common_name", None) or country.name


def _with_article(name: str) -> str:
    # "Government of the United States", "... of the Philippines", but "... of Kenya".
    plural = name.endswith(("Islands", "lands", "pines", "Bahamas", "Gambia", "Maldives", "Comoros"))
    return f"the {name}" if name.startswith("United ") or name.endswith("Republic") or plural else name


def _mode(template: str | Mode) -> Mode:
    try:
        return Mode(template)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise StarterError("template", f"{template!r} is not a template; choose one of: {choices}") from None


def _site_names(sites: Sequence[str]) -> tuple[str, ...]:
    names = tuple(sites) or (DEFAULT_SITE,)
    for name in names:
        try:
            _SLUG.validate_python(name)
        except ValidationError:
            raise StarterError(
                "site", f"{name!r} is not a site name: 2-40 of a-z, 0-9, '-', starting with a letter"
            ) from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StarterError("site", f"site names must be unique, repeated: {', '.join(repeated)}")
    if len(names) > MAX_SITES:
        raise StarterError("site", f"{len(names)} sites; a starter holds at most {MAX_SITES}")
    return names


def _languages(code: str) -> tuple[tuple[str, ...], bool]:
    # Partnerships use ISO 639-1 (two letters); CLDR also lists 639-3 codes and script variants.
    for de_facto in (False, True):
        found = tuple(
            lang
            for lang in get_official_languages(code, de_facto=de_facto)
            if len(lang) == 2 and pycountry.languages.get(alpha_2=lang) is not None
        )
        if found:
            return found, False
    return ("en",), True


def _currency(code: str) -> tuple[str, bool]:
    for currency in get_territory_currencies(code):
        if pycountry.currencies.get(alpha_3=currency) is not None:
            return currency, False
    return "USD", True


# Rendering ------------------------------------------------------------------------------------


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # YAML, not HTML: the `yaml` filter does the quoting
    )
    env.filters["yaml"] = to_yaml
    return env


def render(template: str, starter: Any) -> str:
    """Render one template; a value the template needs but `starter` lacks raises UndefinedError."""
    return environment().get_template(template).render(starter=starter, p=starter.partnership)


def render_stack_config(starter: Starter) -> str:
    """The stack config file text for the starter's variant (its partnership's mode)."""
    return render(starter.template, starter)


def to_yaml(value: Any) -> str:
    """One value as inline YAML, quoted only where YAML needs it, safe inside `{...}` and `[...]`."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    plain = _plain(value)
    if isinstance(plain, (list, dict)):
        return _flow(plain)
    # Dumped as a one-item list, so a scalar is quoted for flow context too: a party named
    # "Bonaire, Sint Eustatius and Saba" must stay one value inside a `{party: ...}` mapping.
    return _flow([plain])[1:-1]


def _flow(value: list | dict) -> str:
    text = yaml.dump(
        value, Dumper=_DUMPER, default_flow_style=True, width=10**6, allow_unicode=True, sort_keys=False
    )
    return text.removesuffix("\n")


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value

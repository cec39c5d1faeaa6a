"""What a node is expected to be, read from the same variables the roles consume.

Ansible resolves a role's variables from (low to high) the role's defaults/main.yml, the
inventory (group_vars, host_vars), then the role's vars/ files. The acceptance suite has no play
to run, so it rebuilds that order here: role defaults < inventory variables < role vars, and
renders the simple templates ("{{ other_var }}") that defaults often contain. A value that still
needs facts to render cannot be an expectation; reading it is an error that names the variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, overload

import jinja2
import yaml
from jinja2.nativetypes import NativeEnvironment

from nodeconfig.acceptance.burnin_checks import BurnInExpectations
from nodeconfig.acceptance.gpu_checks import GpuExpectations
from nodeconfig.acceptance.ib_checks import IbExpectations
from nodeconfig.settings import PLAYBOOKS, ROLES_PATH

# Which inventory groups get which role, when there is no site playbook to read it from. A role's
# checks run only on hosts in one of its groups ("all": every host).
ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "baseline": ("all",),
    "hardening": ("all",),
    "time_sync": ("all",),
    "monitoring_agent": ("all",),
    "container_runtime": ("gpu", "management"),
    "nvidia_host": ("gpu",),
    "infiniband": ("gpu", "storage"),
}
ROLES: tuple[str, ...] = tuple(ROLE_GROUPS)

DEFAULT_ROLES_DIR = ROLES_PATH
SITE_PLAYBOOK = PLAYBOOKS / "site.yml"

# GpuExpectations / IbExpectations field -> the inventory variable it is read from.
GPU_VARS: dict[str, str] = {
    "count": "nvidia_host_expected_gpu_count",
    "model": "nvidia_host_expected_gpu_model",
    "driver_branch": "nvidia_host_driver_branch",
    "driver_version": "nvidia_host_driver_version",
    "ecc": "nvidia_host_ecc_enabled",
    "persistence": "nvidia_host_persistence_mode",
    "fabric_manager": "nvidia_host_nvswitch",  # auto | true | false, set from the platform profile
    "driver_mode": "nvidia_host_driver_mode",
}
# As roles/infiniband/defaults/main.yml documents them ("read by the acceptance suite").
IB_VARS: dict[str, str] = {
    "port_count": "infiniband_expected_port_count",
    "rate_gbps": "infiniband_expected_rate_gbps",
    "link_layer": "infiniband_link_layer",  # InfiniBand, or Ethernet for a RoCE fabric
    "hcas": "infiniband_expected_hcas",
}
# Burn-in link figures (roles' defaults: unset, no constraint; the inventory sets them per platform).
BURNIN_VARS: dict[str, str] = {
    "nvlinks_per_gpu": "nvidia_host_expected_nvlinks_per_gpu",
    "gpu_pcie_gen": "nvidia_host_expected_pcie_gen",
    "gpu_pcie_width": "nvidia_host_expected_pcie_width",
    "hca_pcie_gen": "infiniband_expected_pcie_gen",
    "hca_pcie_width": "infiniband_expected_pcie_width",
    "hca_firmware": "infiniband_expected_firmware",
    "all_reduce_gbytes": "nvidia_host_expected_all_reduce_gbytes_per_s",
    "write_bw_gbps": "infiniband_expected_write_bw_gbps",
    "all_reduce_perf": "nvidia_host_burnin_all_reduce_perf",
    "ib_write_bw": "infiniband_burnin_ib_write_bw",
    "gpudirect": "nvidia_host_gpudirect_rdma",
    "rails": "infiniband_interfaces",  # entries with `pci` and `rail`: the compute rails
}
_LINK_LAYERS = ("InfiniBand", "Ethernet")


_REQUIRED = object()  # sentinel: the accessor's caller gave no default


class ExpectationError(ValueError):
    """An expectation cannot be read: which variable, what value, what was wanted."""


def role_groups(playbook: Path = SITE_PLAYBOOK) -> dict[str, tuple[str, ...]]:
    """Role -> groups as the site playbook applies them (`hosts:` of each play that lists the
    role without a condition), so the suite checks what configuration actually ran; ROLE_GROUPS
    without a playbook."""
    if not playbook.is_file():
        return dict(ROLE_GROUPS)
    plays = yaml.safe_load(playbook.read_text()) or []
    found: dict[str, set[str]] = {}
    for play in plays if isinstance(plays, list) else []:
        if not isinstance(play, dict) or "hosts" not in play:
            continue  # import_playbook and the like
        hosts = play["hosts"]
        patterns = hosts if isinstance(hosts, list) else re.split(r"[,:]", str(hosts))
        groups = {p.strip() for p in patterns if p.strip() and not p.strip().startswith(("!", "&"))}
        for entry in play.get("roles", []) or []:
            name = entry.get("role", entry.get("name")) if isinstance(entry, dict) else entry
            if isinstance(entry, dict) and "when" in entry:
                continue  # applied only when configure passes what it needs (a cluster to join)
            if name in ROLE_GROUPS:
                found.setdefault(str(name), set()).update(groups)
    return {role: tuple(sorted(found.get(role, ROLE_GROUPS[role]))) for role in ROLES}


def applies(role: str, group_names: Iterable[str], mapping: Mapping[str, tuple[str, ...]] = ROLE_GROUPS) -> bool:
    groups = mapping[role]
    return "all" in groups or bool(set(groups) & set(group_names))


def os_family(distribution: str) -> str:
    """Ansible's ansible_os_family for testinfra's system_info.distribution."""
    d = distribution.lower()
    if d in {"debian", "ubuntu", "linuxmint", "raspbian"}:
        return "Debian"
    if d in {"rhel", "redhat", "centos", "rocky", "almalinux", "fedora", "ol", "oracle"}:
        return "RedHat"
    return distribution.capitalize()


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ExpectationError(f"{path}: expected a mapping of variables")
    return data


def role_layers(roles_dir: Path, family: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(defaults, vars) of all roles: defaults/main.yml and vars/main.yml + vars/<family>.yml."""
    defaults: dict[str, Any] = {}
    role_vars: dict[str, Any] = {}
    for role in ROLES:
        base = roles_dir / role
        defaults.update(_load_yaml(base / "defaults" / "main.yml"))
        role_vars.update(_load_yaml(base / "vars" / "main.yml"))
        if family:
            role_vars.update(_load_yaml(base / "vars" / f"{family}.yml"))
    return defaults, role_vars


def _combine(*dicts: Mapping[str, Any], recursive: bool = False) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for d in dicts:
        for key, value in d.items():
            if recursive and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = _combine(merged[key], value, recursive=True)
            else:
                merged[key] = value
    return merged


# Native types, as Ansible renders: "{{ a | combine(b) }}" is a dict and "{{ n }}" of 8 an int.
# Only the filters role defaults use in practice; a value needing another one (or facts) stays
# unrendered, and reading it is an ExpectationError that names the variable.
_ENV = NativeEnvironment(undefined=jinja2.StrictUndefined)
_ENV.filters.update(
    bool=lambda v: _to_bool(v),
    int=int,
    combine=_combine,
    dirname=lambda p: str(Path(p).parent),
    basename=lambda p: Path(p).name,
)


def _render(value: Any, context: Mapping[str, Any], errors: list[str], depth: int = 0) -> Any:
    """Render templates inside value; what cannot be rendered stays as is, its reason in errors."""
    if isinstance(value, str) and "{{" in value and depth < 5:
        try:
            rendered = _ENV.from_string(value).render(context)
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            errors.append(str(exc))
            return value
        return _render(rendered, context, errors, depth + 1)
    if isinstance(value, list):
        return [_render(v, context, errors, depth) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context, errors, depth) for k, v in value.items()}
    return value


class Vars(Mapping[str, Any]):
    """A host's effective variables with typed, error-naming accessors."""

    def __init__(
        self,
        hostvars: Mapping[str, Any],
        *,
        roles_dir: Path | None = DEFAULT_ROLES_DIR,
        family: str | None = None,
    ):
        defaults, role_vars = role_layers(roles_dir, family) if roles_dir else ({}, {})
        merged = {**defaults, **hostvars, **role_vars}
        self._data: dict[str, Any] = {}
        self._errors: dict[str, str] = {}  # variable -> why it could not be rendered
        for key, value in merged.items():
            errors: list[str] = []
            self._data[key] = _render(value, merged, errors)
            if errors:
                self._errors[key] = errors[0]

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def groups(self) -> list[str]:
        return list(self._data.get("group_names", []))

    def _raw(self, name: str, default: Any) -> Any:
        value = self._data.get(name)
        if value is None:
            if default is _REQUIRED:
                raise ExpectationError(f"{name} is undefined: set it in the inventory or the role's defaults")
            return default
        if name in self._errors:
            # Usually a variable the inventory must provide, or one only facts can give.
            raise ExpectationError(f"{name} cannot be rendered: {self._errors[name]}")
        return value

    # Each accessor raises when the variable is undefined unless a default is given: a check
    # must not pass vacuously because its expectation was never set.
    @overload
    def get_str(self, name: str) -> str: ...
    @overload
    def get_str(self, name: str, default: str) -> str: ...
    @overload
    def get_str(self, name: str, default: None) -> str | None: ...
    def get_str(self, name: str, default: Any = _REQUIRED) -> str | None:
        value = self._raw(name, default)
        return value if value is None else str(value)

    @overload
    def get_int(self, name: str) -> int: ...
    @overload
    def get_int(self, name: str, default: int) -> int: ...
    @overload
    def get_int(self, name: str, default: None) -> int | None: ...
    def get_int(self, name: str, default: Any = _REQUIRED) -> int | None:
        value = self._raw(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not str(value).strip().isdigit():
            raise ExpectationError(f"{name} = {value!r}: expected a whole number")
        return int(value)

    @overload
    def get_float(self, name: str) -> float: ...
    @overload
    def get_float(self, name: str, default: float) -> float: ...
    @overload
    def get_float(self, name: str, default: None) -> float | None: ...
    def get_float(self, name: str, default: Any = _REQUIRED) -> float | None:
        value = self._raw(name, default)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ExpectationError(f"{name} = {value!r}: expected a number") from None

    @overload
    def get_bool(self, name: str) -> bool: ...
    @overload
    def get_bool(self, name: str, default: bool) -> bool: ...
    @overload
    def get_bool(self, name: str, default: None) -> bool | None: ...
    def get_bool(self, name: str, default: Any = _REQUIRED) -> bool | None:
        value = self._raw(name, default)
        if value is None:
            return None
        try:
            return _to_bool(value)
        except ValueError:
            raise ExpectationError(f"{name} = {value!r}: expected true or false") from None

    def get_map(self, name: str, default: Any = _REQUIRED) -> dict[str, Any]:
        value = self._raw(name, default)
        if not isinstance(value, dict):
            raise ExpectationError(f"{name} = {value!r}: expected a mapping")
        return value

    def get_list(self, name: str, default: Any = _REQUIRED) -> list[Any]:
        value = self._raw(name, default)
        if isinstance(value, str) or not isinstance(value, list):
            raise ExpectationError(f"{name} = {value!r}: expected a list")
        return value


def _to_bool(value: Any) -> bool:
    """Ansible's truthy spellings."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "on", "1", "y"}:
        return True
    if text in {"false", "no", "off", "0", "n", ""}:
        return False
    raise ValueError(value)


def gpu_expectations(v: Vars) -> GpuExpectations:
    """Unset GPU variables mean "no GPU expected" and "no constraint": a GPU node whose inventory
    lacks the count then fails loudly (GPUs found where none are expected)."""
    n = GPU_VARS
    return GpuExpectations(
        count=v.get_int(n["count"], 0),
        model=v.get_str(n["model"], None),
        driver_branch=v.get_str(n["driver_branch"], None),
        driver_version=v.get_str(n["driver_version"], None),
        ecc=v.get_bool(n["ecc"], True),
        persistence=v.get_bool(n["persistence"], True),
        fabric_manager=_auto_bool(v, n["fabric_manager"]),
        driver_mode=_choice(v.get_str(n["driver_mode"], "host"), n["driver_mode"], ("host", "operator")),
        sources=dict(n),
    )


def ib_expectations(v: Vars) -> IbExpectations:
    n = IB_VARS
    return IbExpectations(
        port_count=v.get_int(n["port_count"], 0),
        rate_gbps=v.get_float(n["rate_gbps"], None),
        link_layer=_link_layer(v.get_str(n["link_layer"], "InfiniBand"), n["link_layer"]),
        hcas=tuple(str(h) for h in v.get_list(n["hcas"], [])),
        sources=dict(n),
    )


def _auto_bool(v: Vars, var: str) -> bool | None:
    """The role's auto/true/false choice: None for auto (or unset), else the boolean."""
    if str(v.get_str(var, "auto")).strip().lower() == "auto":
        return None
    return v.get_bool(var)


def _link_layer(value: str, var: str) -> str:
    for layer in _LINK_LAYERS:  # sysfs spells them so; accept any case from the inventory
        if value.lower() == layer.lower():
            return layer
    raise ExpectationError(f"{var} = {value!r}: expected one of {', '.join(_LINK_LAYERS)}")


def _choice(value: str, var: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ExpectationError(f"{var} = {value!r}: expected one of {', '.join(choices)}")
    return value


def burnin_expectations(v: Vars) -> BurnInExpectations:
    n = BURNIN_VARS
    return BurnInExpectations(
        nvlinks_per_gpu=v.get_int(n["nvlinks_per_gpu"], None),
        gpu_pcie_gen=v.get_int(n["gpu_pcie_gen"], None),
        gpu_pcie_width=v.get_int(n["gpu_pcie_width"], None),
        hca_pcie_gen=v.get_int(n["hca_pcie_gen"], None),
        hca_pcie_width=v.get_int(n["hca_pcie_width"], None),
        hca_firmware=v.get_str(n["hca_firmware"], None),
        all_reduce_gbytes=v.get_float(n["all_reduce_gbytes"], None),
        write_bw_gbps=v.get_float(n["write_bw_gbps"], None),
        all_reduce_perf=v.get_str(n["all_reduce_perf"], "all_reduce_perf"),
        ib_write_bw=v.get_str(n["ib_write_bw"], "ib_write_bw"),
        gpudirect=_choice(v.get_str(n["gpudirect"], "dmabuf"), n["gpudirect"], ("dmabuf", "peermem", "none")),
        rails=_rails(v.get_list(n["rails"], []), n["rails"]),
        sources=dict(n),
    )


def _rails(interfaces: list[Any], var: str) -> dict[str, int]:
    """PCI address -> rail of the interfaces that name both (the design's compute ports)."""
    rails = {}
    for index, entry in enumerate(interfaces):
        if not isinstance(entry, dict):
            raise ExpectationError(f"{var}[{index}] = {entry!r}: expected a mapping")
        if entry.get("pci") is None or entry.get("rail") is None:
            continue
        rail = entry["rail"]
        if isinstance(rail, bool) or not str(rail).isdigit():
            raise ExpectationError(f"{var}[{index}].rail = {rail!r}: expected a whole number")
        rails[str(entry["pci"]).lower()] = int(rail)
    return rails

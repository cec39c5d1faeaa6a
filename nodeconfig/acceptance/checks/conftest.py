"""Fixtures shared by the per-role acceptance checks.

Run through `sovereign verify` (nodeconfig.acceptance.run), or directly:

    pytest nodeconfig/acceptance/checks --hosts='ansible://all' --ansible-inventory=inv.yml
    pytest nodeconfig/acceptance/checks --hosts=local:// --sovereign-vars=node.yml

A host's expectations are its Ansible variables: from the inventory with the ansible backend, or
from a YAML file of variables (group_names included) with any other backend, e.g. local:// on a
real GPU box. A role's checks run only on hosts in the groups that get the role.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodeconfig.acceptance.expectations import (
    DEFAULT_ROLES_DIR,
    ExpectationError,
    Vars,
    applies,
    os_family,
    role_groups,
)
from nodeconfig.acceptance.findings import Finding, summarize

# Reachability and OS family, once per host for the whole session rather than once per module.
_REACHED: dict[str, str | None] = {}
_FAMILY: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sovereign")
    group.addoption(
        "--sovereign-vars",
        help="YAML file of the node's variables (incl. group_names) for non-ansible backends",
    )
    group.addoption(
        "--sovereign-inventory-json",
        help="`ansible-inventory --list` output already computed for --ansible-inventory",
    )
    group.addoption(
        "--sovereign-burn-in",
        action="store_true",
        help="also run the functional burn-in tier (tests marked burn_in: dcgmi diag -r 3, ...)",
    )
    group.addoption(
        "--sovereign-roles-dir",
        default=str(DEFAULT_ROLES_DIR),
        help="where the roles' defaults/ and vars/ are read from (default: the project's roles/)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Reuse the runner's parsed inventory: `ansible-inventory` takes seconds, and the runner
    starts one pytest per host. testinfra caches the parse per inventory path; prime that cache."""
    cached = config.getoption("sovereign_inventory_json")
    inventory = config.getoption("ansible_inventory")
    if cached and inventory:
        from testinfra.utils.ansible_runner import AnsibleRunner

        runner = AnsibleRunner.get_runner(inventory)
        if "inventory" in type(runner).__dict__:  # a cached_property in testinfra 10; else no-op
            runner.__dict__["inventory"] = json.loads(Path(cached).read_text())


def role_of(item: pytest.Item) -> str:
    return Path(str(item.path)).stem.removeprefix("test_")


def host_of(item: pytest.Item) -> Any | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("_testinfra_host") if callspec else None


def hostvars(host: Any, config: pytest.Config) -> dict[str, Any]:
    """Inventory variables (ansible backend) or the --sovereign-vars file (any other)."""
    if host.backend.get_connection_type() == "ansible":
        return dict(host.backend.get_variables())
    path = config.getoption("sovereign_vars")
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise pytest.UsageError(f"{path}: expected a mapping of variables")
    return data


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop role checks for hosts outside the role's groups: they are not part of the design for
    that host, so they are neither passes nor skips in the report."""
    mapping = role_groups()
    groups: dict[str, list[str]] = {}
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    burn_in = bool(config.getoption("sovereign_burn_in"))
    for item in items:
        if item.get_closest_marker("burn_in") and not burn_in:
            drop.append(item)  # the functional tier runs only when asked for (`verify --burn-in`)
            continue
        host = host_of(item)
        if host is None:
            keep.append(item)
            continue
        key = host.backend.get_pytest_id()
        if key not in groups:
            groups[key] = list(hostvars(host, config).get("group_names", []))
        (keep if applies(role_of(item), groups[key], mapping) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class Unreachable(Exception):
    """The host did not answer a trivial command; every check on it is an error, not a failure."""


@pytest.fixture(scope="module", autouse=True)
def reachable(host: Any) -> None:
    key = host.backend.get_pytest_id()
    if key not in _REACHED:
        try:
            out = host.run("true")
        except RuntimeError as exc:  # testinfra's ssh backend raises when ssh itself fails (255)
            out = exc.args[0] if exc.args and hasattr(exc.args[0], "rc") else None
            if out is None:
                raise
        _REACHED[key] = None if out.rc == 0 else (out.stderr.strip() or f"exit status {out.rc}")
    if _REACHED[key] is not None:
        raise Unreachable(f"cannot run commands on {host.backend.get_hostname()}: {_REACHED[key]}")


@pytest.fixture(scope="module")
def node_vars(host: Any, request: pytest.FixtureRequest) -> Vars:
    """The host's effective variables: role defaults < inventory < role vars/<os family>.yml."""
    key = host.backend.get_pytest_id()
    if key not in _FAMILY:
        _FAMILY[key] = os_family(host.system_info.distribution or "")
    roles_dir = Path(request.config.getoption("sovereign_roles_dir"))
    try:
        return Vars(hostvars(host, request.config), roles_dir=roles_dir, family=_FAMILY[key])
    except ExpectationError as exc:
        raise ExpectationError(f"{host.backend.get_hostname()}: {exc}") from None


@pytest.fixture(scope="module")
def container(host: Any) -> str | None:
    """The container technology the node runs in ("lxc", ...), or None on a VM or bare metal.
    Roles leave kernel-wide state (sysctls, auditd, modules) to the host inside a container,
    so checks of that state read the configuration there instead of the live kernel."""
    out = host.run("systemd-detect-virt --container")
    return out.stdout.strip() if out.rc == 0 and out.stdout.strip() not in ("", "none") else None


@pytest.fixture
def conclude(record_property: Callable[[str, object], None]) -> Callable[[Iterable[Finding]], None]:
    """Turn findings into the test's outcome; passing findings' messages go to the report."""

    def _conclude(findings: Iterable[Finding]) -> None:
        items = list(findings)
        if not items:
            raise AssertionError("the check produced no finding")  # a bug in the check
        ok, message = summarize(items)
        record_property("message", message)
        if ok and any(f.pending for f in items):
            record_property("status", "pending")
        if not ok:
            pytest.fail(message, pytrace=False)

    return _conclude

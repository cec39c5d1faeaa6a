"""Run the acceptance checks against the hosts of an inventory: the library behind `sovereign verify`.

Each host gets its own pytest process (testinfra over SSH, or local), run in parallel: a host
that hangs or crashes the run costs only its own rows, and no extra dependency (pytest-xdist)
is needed for the parallelism. The processes report through plugin.py into JSON files that are
merged into one VerifyReport.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nodeconfig.acceptance.expectations import ROLES
from nodeconfig.acceptance.plugin import read_rows
from nodeconfig.acceptance.report import ReportRow, VerifyReport

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_TAIL = 600  # characters of pytest's own output kept when it produced no report


class VerifyError(Exception):
    """The verification could not start: a tool it needs is missing (or, as VerifyInputError,
    its input is wrong)."""


class VerifyInputError(VerifyError, ValueError):
    """Bad input: the inventory or variables file, a role name, a limit matching no host."""


def verify(
    inventory_path: str | os.PathLike[str],
    *,
    ssh_config: str | os.PathLike[str] | None = None,
    limit: str | None = None,
    roles: Sequence[str] | None = None,
    jobs: int = 8,
    timeout_s: float = 900,
    roles_dir: str | os.PathLike[str] | None = None,
    burn_in: bool = False,
) -> VerifyReport:
    """Check every host of the inventory (or those matching `limit`) against its role variables.

    `limit`: comma-separated host or group names, shell wildcards allowed ("gpu", "node*").
    `roles`: only these roles' checks (default: all, each on the hosts whose groups get it).
    `jobs`: hosts checked at once; `timeout_s`: per host, after which its checks count as errors.
    `burn_in`: also the functional tier (tests marked burn_in: dcgmi diag -r 3, all_reduce_perf,
    GPUDirect ib_write_bw), minutes per node.
    """
    inventory = Path(inventory_path)
    if not inventory.exists():
        raise VerifyInputError(f"inventory not found: {inventory}")
    selected = select_roles(roles)
    parsed = load_inventory(inventory)
    hosts = match_hosts(parsed, limit)
    if not hosts:
        raise VerifyInputError(f"no host in {inventory} matches {limit or 'all'!r}")
    with tempfile.TemporaryDirectory(prefix="sovereign-verify-") as tmp:
        cached = Path(tmp) / "inventory.json"
        cached.write_text(json.dumps(parsed))
        common = [f"--ansible-inventory={inventory.resolve()}", f"--sovereign-inventory-json={cached}"]
        if ssh_config:
            common.append(f"--ssh-config={Path(ssh_config).resolve()}")

        def one(host: str) -> list[ReportRow]:
            return _run_checks(host, [f"--hosts=ansible://{host}", *common], selected, timeout_s, roles_dir, burn_in)

        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(hosts)))) as pool:
            rows = [row for batch in pool.map(one, hosts) for row in batch]
    return VerifyReport(tuple(rows)).sorted()


def verify_local(
    vars_path: str | os.PathLike[str],
    *,
    roles: Sequence[str] | None = None,
    timeout_s: float = 900,
    roles_dir: str | os.PathLike[str] | None = None,
    burn_in: bool = False,
) -> VerifyReport:
    """Check this machine (local://) against the variables in a YAML file, e.g. on a GPU box that
    is not in any inventory; the file's `group_names` decides which roles apply."""
    path = Path(vars_path)
    if not path.is_file():
        raise VerifyInputError(f"variables file not found: {path}")
    args = ["--hosts=local://", f"--sovereign-vars={path.resolve()}"]
    return VerifyReport(tuple(_run_checks("local", args, select_roles(roles), timeout_s, roles_dir, burn_in))).sorted()


def select_roles(roles: Iterable[str] | None) -> list[str]:
    if roles is None:
        return list(ROLES)
    chosen = list(dict.fromkeys(roles))
    unknown = [r for r in chosen if r not in ROLES]
    if unknown:
        raise VerifyInputError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")
    return chosen


def _tool(name: str) -> str:
    # Prefer the tool next to this interpreter (the project's venv), then PATH.
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise VerifyError(f"{name} not found: install ansible-core (a project dependency)")
    return found


def load_inventory(inventory: Path) -> dict[str, Any]:
    """`ansible-inventory --list`: groups with hosts/children, and merged hostvars in _meta."""
    out = subprocess.run(
        [_tool("ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_VERBOSITY": "0"},
        check=False,
    )
    if out.returncode != 0:
        raise VerifyInputError(f"ansible-inventory could not read {inventory}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def _group_hosts(inventory: dict[str, Any], group: str, seen: set[str] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if group in seen:
        return set()
    seen.add(group)
    entry = inventory.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= _group_hosts(inventory, child, seen)
    return hosts


def match_hosts(inventory: dict[str, Any], limit: str | None) -> list[str]:
    """Hosts matching comma-separated patterns over group and host names (as testinfra does)."""
    patterns = [p.strip() for p in (limit or "all").split(",") if p.strip()]
    every = _group_hosts(inventory, "all")
    chosen: set[str] = set()
    for pattern in patterns:
        for group in inventory:
            if group != "_meta" and fnmatch.fnmatchcase(group, pattern):
                chosen |= _group_hosts(inventory, group)
        chosen |= {h for h in every if fnmatch.fnmatchcase(h, pattern)}
    return sorted(chosen)


def _run_checks(
    host: str,
    target_args: list[str],
    roles: list[str],
    timeout_s: float,
    roles_dir: str | os.PathLike[str] | None,
    burn_in: bool = False,
) -> list[ReportRow]:
    with tempfile.TemporaryDirectory(prefix="sovereign-verify-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable, "-m", "pytest",
            *(str(CHECKS_DIR / f"test_{role}.py") for role in roles),
            *target_args,
            "-p", "nodeconfig.acceptance.plugin",
            f"--sovereign-report={report}",
            "-q", "--no-header", "-p", "no:cacheprovider",
        ]  # fmt: skip
        if roles_dir:
            cmd.append(f"--sovereign-roles-dir={Path(roles_dir).resolve()}")
        if burn_in:
            cmd.append("--sovereign-burn-in")
        env = {
            **os.environ,
            # the checks import this package; ansible-inventory must be the venv's
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")])),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        }
        # Own session, so a timeout kills pytest and the ssh processes it started, nothing else.
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        ) as proc:
            try:
                output, _ = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                return [ReportRow(host, "-", "run", "error", f"checks did not finish within {timeout_s:g} s")]
        if report.exists():
            rows = read_rows(report)
            if rows or proc.returncode == 5:  # 5: no check applies to this host
                return rows
        tail = output.strip()[-_TAIL:]
        return [ReportRow(host, "-", "run", "error", f"pytest exited {proc.returncode}: {tail}")]

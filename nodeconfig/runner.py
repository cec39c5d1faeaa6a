"""Run the site playbook through ansible-runner: one process per shard, events to a progress sink.

A large site is split into shards (one per scalable unit, plus storage and management) that run as
parallel ansible-runner processes sharing a bounded total of forks. Secrets reach Ansible through
a 0600 vars file in memory-backed storage that is removed when the run ends: ansible-runner writes
its command line and environment into the artifacts, so neither may carry a secret.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml
from ansible_runner.utils import signal_handler

from lab import sockets
from nodeconfig import hostkeys
from nodeconfig.settings import PLAYBOOKS, TUNED, Profile, SshAccess, ansible_env
from stacks.design import atomic

EventSink = Callable[[str, dict[str, Any]], None]  # (shard, ansible-runner event)


# nvidia_host sets this fact on each node it configures, and clears it after rebooting the node.
REBOOT_FACT = "nvidia_host_reboot_required"


@dataclass
class HostResult:
    host: str
    shard: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    messages: list[str] = field(default_factory=list)
    # A change waits for a reboot the run did not do (nvidia_host with reboots off, e.g. --no-reboot).
    reboot_required: bool = False

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"


@dataclass
class RunResult:
    run_dir: Path
    profile: str
    check: bool
    shards: dict[str, str]  # shard -> ansible-runner status (successful, failed, ...)
    hosts: dict[str, HostResult]
    seconds: float
    stopped: str | None = None  # why the whole run was stopped (a changed host key)

    @property
    def ok(self) -> bool:
        if self.stopped or not self.hosts:
            return False
        return all(h.status in ("ok", "changed") for h in self.hosts.values()) and all(
            s == "successful" for s in self.shards.values()
        )

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "profile": self.profile,
            "check": self.check,
            "seconds": round(self.seconds, 2),
            "artifacts": str(self.run_dir),
            "stopped": self.stopped,
            "shards": self.shards,
            "hosts": [
                {
                    "host": h.host, "shard": h.shard, "status": h.status, "ok": h.ok,
                    "changed": h.changed, "failed": h.failed, "unreachable": h.unreachable,
                    "skipped": h.skipped, "reboot_required": h.reboot_required, "messages": h.messages,
                }
                for h in sorted(self.hosts.values(), key=lambda h: h.host)
            ],
        }


@dataclass(frozen=True)
class Shard:
    name: str
    limit: str  # an inventory group or host pattern


def run_playbook(
    *,
    inventory: Mapping[str, Any],
    shards: list[Shard],
    run_dir: Path,
    state_dir: Path,
    access: SshAccess,
    secrets: Mapping[str, Any] | None = None,
    playbook: str = "site.yml",
    profile: Profile = TUNED,
    total_forks: int | None = None,
    check: bool = False,
    diff: bool = False,
    tags: str | None = None,
    limit: str | None = None,
    on_event: EventSink | None = None,
) -> RunResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "facts"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    if profile.control_persist:
        sockets.ensure(Path(access.control_path).parent)
    inventory_file = run_dir / "inventory.yml"
    atomic.write_file(inventory_file, yaml.safe_dump(dict(inventory), sort_keys=False))
    forks = max(1, (total_forks or profile.forks) // max(len(shards), 1))
    env = ansible_env(profile, access=access, state_dir=state_dir, forks=forks)

    hosts: dict[str, HostResult] = {}
    lock = threading.Lock()
    stop: list[str] = []  # set once: why every shard must stop
    # Ctrl-C / SIGTERM stop every shard while the run lasts (None off the main thread); the
    # handlers that were there before come back afterwards, so Ctrl-C works as usual again.
    previous = _signal_handlers()
    interrupted = signal_handler()

    def cancel() -> bool:
        return bool(stop) or bool(interrupted and interrupted())

    addresses = _addresses(inventory)  # host -> ansible_host: known_hosts lines are by address
    started = time.monotonic()
    secrets_dir = Path(tempfile.mkdtemp(prefix="sovereign-", dir=_memory_dir()))
    try:
        cmdline = []
        if secrets:
            secrets_file = secrets_dir / "secrets.json"
            fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(secrets), handle)
            cmdline += ["-e", f"@{secrets_file}"]
        if check:
            cmdline.append("--check")
        if diff:
            cmdline.append("--diff")

        runs = []
        for shard in _limited(shards, inventory_file, limit):
            pattern = shard.limit
            (run_dir / shard.name).mkdir(exist_ok=True)
            thread, runner = ansible_runner.run_async(
                private_data_dir=str(run_dir / shard.name),
                artifact_dir=str(run_dir / "artifacts"),
                ident=shard.name,
                project_dir=str(PLAYBOOKS),
                playbook=playbook,
                inventory=str(inventory_file),
                limit=pattern,
                tags=tags,
                envvars=env,
                cmdline=" ".join(cmdline) or None,
                suppress_env_files=True,  # no env/ files: they could hold secrets
                quiet=True,
                event_handler=_collector(shard.name, hosts, lock, on_event, access, stop, addresses),
                cancel_callback=cancel,
            )
            runs.append((shard, thread, runner))
        statuses = {}
        for shard, thread, runner in runs:
            thread.join()
            statuses[shard.name] = runner.status
            _merge_stats(shard.name, runner, hosts)
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)
        for number, handler in previous.items():
            signal.signal(number, handler)
    return RunResult(
        run_dir=run_dir,
        profile=profile.name,
        check=check,
        shards=statuses,
        hosts=hosts,
        seconds=time.monotonic() - started,
        stopped=stop[0] if stop else None,
    )


def _limited(shards: list[Shard], inventory_file: Path, limit: str | None) -> list[Shard]:
    """Each shard narrowed to the hosts `limit` selects, by Ansible's own pattern rules; shards left
    empty drop out. (`<shard>:&<limit>` would be wrong for a limit of several terms: Ansible applies
    every union before any intersection, so `su01:&storage:gpu` selects nothing.)"""
    if not limit:
        return shards
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[str(inventory_file)])
    wanted = {host.name for host in manager.get_hosts(limit)}
    narrowed = []
    for shard in shards:
        hosts = [host.name for host in manager.get_hosts(shard.limit) if host.name in wanted]
        if hosts:
            narrowed.append(Shard(shard.name, ",".join(hosts)))
    return narrowed


def _signal_handlers() -> dict[signal.Signals, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}


def _memory_dir() -> str | None:
    # /dev/shm keeps the secrets file off disk where the machine has it.
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _collector(
    shard: str,
    hosts: dict[str, HostResult],
    lock: threading.Lock,
    on_event: EventSink | None,
    access: SshAccess,
    stop: list[str],
    addresses: Mapping[str, str],
):
    def handle(event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        name = event.get("event", "")
        host = data.get("host")
        if host and name in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            result = data.get("res") or {}
            kind = hostkeys.verdict(str(result.get("msg") or "")) if name == "runner_on_unreachable" else None
            address = addresses.get(host)
            reason = hostkeys.explain(kind, host, address, access.known_hosts) if kind else _reason(result)
            with lock:
                entry = hosts.setdefault(host, HostResult(host, shard))
                entry.messages.append(f"{data.get('task', '?')}: {reason}")
                if kind == hostkeys.CHANGED and not stop:
                    stop.append(reason)
        facts = (data.get("res") or {}).get("ansible_facts") or {}
        if host and name == "runner_on_ok" and REBOOT_FACT in facts:
            with lock:  # the last word counts: set when the driver waits, cleared once rebooted
                hosts.setdefault(host, HostResult(host, shard)).reboot_required = facts[REBOOT_FACT] is True
        if on_event is not None:
            on_event(shard, event)
        return True  # keep the event in the run's artifacts (job_events/)

    return handle


def _addresses(group: Mapping[str, Any]) -> dict[str, str]:
    """`ansible_host` of every host in a YAML-style inventory, through all nested groups."""
    found: dict[str, str] = {}
    for child in group.values():
        if not isinstance(child, Mapping):
            continue
        for host, host_vars in (child.get("hosts") or {}).items():
            if isinstance(host_vars, Mapping) and host_vars.get("ansible_host"):
                found[host] = str(host_vars["ansible_host"])
        found.update(_addresses(child.get("children") or {}))
    return found


def _reason(result: dict[str, Any]) -> str:
    if result.get("_ansible_no_log") or result.get("censored"):
        return "(output hidden: the task handles a secret)"
    text = result.get("msg") or result.get("stderr") or result.get("reason") or "failed"
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else "failed"


def _merge_stats(shard: str, runner: Any, hosts: dict[str, HostResult]) -> None:
    stats = runner.stats or {}
    keys = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
            "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}
    for stat_key, attr in keys.items():
        for host, count in (stats.get(stat_key) or {}).items():
            entry = hosts.setdefault(host, HostResult(host, shard))
            setattr(entry, attr, count)

"""Live progress of a run, driven by ansible-runner events; a summary table at the end."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from nodeconfig.runner import RunResult

_COUNTED = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


class RunProgress:
    """An EventSink: live table on a terminal, one line per task and failure elsewhere (CI logs)."""

    def __init__(self, console: Console):
        self.console = console
        self.lock = threading.Lock()
        self.tasks: dict[str, str] = {}
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.live = Live(self._table(), console=console, refresh_per_second=4, transient=True) if console.is_terminal else None

    def __enter__(self) -> RunProgress:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def __call__(self, shard: str, event: dict[str, Any]) -> None:
        name, data = event.get("event", ""), event.get("event_data") or {}
        with self.lock:
            if name == "playbook_on_task_start":
                self.tasks[shard] = data.get("task", "")
                if not self.live:
                    self.console.print(f"[{shard}] {data.get('task', '')}", markup=False)
            elif name in _COUNTED and data.get("host"):
                kind = _COUNTED[name]
                if kind == "ok" and (data.get("res") or {}).get("changed"):
                    kind = "changed"
                self.counts[data["host"]][kind] += 1
                if kind in ("failed", "unreachable") and not data.get("ignore_errors") and not self.live:
                    self.console.print(f"[{shard}] {data['host']}: {kind} in {data.get('task', '')}", markup=False)
            if self.live:
                self.live.update(self._table())

    def _table(self) -> Table:
        table = Table(title="configure (live)", title_justify="left")
        table.add_column("host")
        for col in ("ok", "changed", "failed", "unreachable", "skipped"):
            table.add_column(col, justify="right")
        for host in sorted(self.counts):
            c = self.counts[host]
            table.add_row(host, *(str(c[k]) for k in ("ok", "changed", "failed", "unreachable", "skipped")))
        for shard, task in sorted(self.tasks.items()):
            table.caption = (table.caption or "") + f"[{shard}] {task}  "
        return table


def summary_table(result: RunResult) -> Table:
    mode = " (check mode: nothing was changed)" if result.check else ""
    table = Table(title=f"configure: {result.seconds:.1f} s, profile {result.profile}{mode}", title_justify="left")
    for col in ("host", "shard", "status", "ok", "changed", "failed", "unreachable", "skipped", "first problem"):
        table.add_column(col, justify="right" if col in ("ok", "changed", "failed", "unreachable", "skipped") else "left")
    style = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red"}
    for host in sorted(result.hosts.values(), key=lambda h: h.host):
        table.add_row(
            host.host, host.shard, f"[{style[host.status]}]{host.status}[/]", str(host.ok), str(host.changed),
            str(host.failed), str(host.unreachable), str(host.skipped),
            host.messages[0] if host.messages else ("reboot required" if host.reboot_required else ""),
        )
    table.caption = f"artifacts: {result.run_dir}"
    return table

"""Configure 1 and 8 lab nodes, first run and idempotent rerun, tuned vs stock Ansible settings.

    sudo .venv/bin/python benchmarks/configure_nodes.py [--stack ke-staging] [--sizes 1,8]
                                                        [--profiles tuned,stock[,no-reuse]]

Each (profile, size) gets fresh nodes from the cached image, so every first run starts from the
same state. Targets (issues 3, 10): 8 nodes <= 1.3x the time of 1; rerun <= 25 % of the first run;
tuned >= 2x faster than stock (Ansible's shipped defaults). Lab nodes share this machine's cores,
so next to wall time it prints the controller's CPU seconds (ansible-runner and everything it
spawned) per host and per task result: the part that grows with the fleet. For each rerun it
prints the tasks that took longest, summed over hosts (the profile to act on). Prints figures and
ratios for runs that converged; a run that did not converge prints, instead of a time, each
failing host and task read from its artifacts, and the benchmark exits 1: a time of a failed run
is not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.nodes import NodeLab
from nodeconfig.configure import configure, plan_target
from nodeconfig.runner import RunResult
from nodeconfig.settings import PROFILES

_MESSAGE = 300  # characters of a failure message worth printing


@dataclass(frozen=True)
class Measured:
    first: RunResult
    rerun: RunResult | None  # None: the first run failed, so a rerun measures nothing
    first_cpu: float = 0.0  # controller CPU seconds
    rerun_cpu: float = 0.0

    @property
    def converged(self) -> bool:
        return self.first.ok and self.rerun is not None and self.rerun.ok and self.rerun.changed == 0


def measure(stack: str, profile: str, size: int, prefix: str = "bench") -> Measured:
    lab = NodeLab(f"{prefix}-{profile[:5]}{size}")
    lab.down()
    try:
        lab.up(size)
        target = plan_target(stack, lab=lab.name)
        first, first_cpu = _with_cpu(lambda: configure(target, profile=PROFILES[profile]))
        if not first.ok:
            return Measured(first, None, first_cpu)
        rerun, rerun_cpu = _with_cpu(lambda: configure(target, profile=PROFILES[profile]))
        return Measured(first, rerun, first_cpu, rerun_cpu)
    finally:
        lab.down()


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _with_cpu(run: Callable[[], RunResult]) -> tuple[RunResult, float]:
    """The run and the controller's CPU seconds for it: this process (ansible-runner's event
    handling) and every process it waited for (ansible-playbook, its forks, their ssh clients)."""
    before = _cpu_seconds()
    result = run()
    return result, _cpu_seconds() - before


_RESULTS = ("runner_on_ok", "runner_on_skipped", "runner_on_failed", "runner_on_unreachable")


def task_times(run_dir: Path) -> dict[str, tuple[int, float]]:
    """Per task (`role: task`), how many host results it had and their summed seconds."""
    from datetime import datetime

    times: dict[str, tuple[int, float]] = {}
    for event in job_events(run_dir):
        data = event.get("event_data") or {}
        if event.get("event") not in _RESULTS or not data.get("start") or not data.get("end"):
            continue
        seconds = (datetime.fromisoformat(data["end"]) - datetime.fromisoformat(data["start"])).total_seconds()
        name = f"{data.get('role') or 'play'}: {data.get('task', '?')}"
        count, total = times.get(name, (0, 0.0))
        times[name] = (count + 1, total + seconds)
    return times


def job_events(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event of a run, shard by shard in order, from ansible-runner's artifacts."""
    for events in sorted((run_dir / "artifacts").glob("*/job_events")):
        files = sorted(events.glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
        for path in files:
            try:
                yield json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a half-written event of a killed run tells nothing


def failures(result: RunResult, *, rerun: bool = False) -> list[str]:
    """`host: task: message` for each failed or unreachable task in the run's artifacts; for a
    rerun, also each task that still changed something (the roles are not idempotent there)."""
    found = []
    for event in job_events(result.run_dir):
        kind, data = event.get("event", ""), event.get("event_data") or {}
        res = data.get("res") or {}
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            what = "unreachable" if kind == "runner_on_unreachable" else "failed"
            found.append(f"{data.get('host', '?')}: {data.get('task', '?')}: {what}: {_message(res)}")
        elif rerun and kind == "runner_on_ok" and res.get("changed"):
            found.append(f"{data.get('host', '?')}: {data.get('task', '?')}: changed on the rerun")
    if result.stopped:
        found.append(f"run stopped: {result.stopped}")
    if not found and not result.ok:
        found.append(f"no failing task in the artifacts; shard status: {result.shards}")
    return found


def _message(res: dict[str, Any]) -> str:
    if res.get("_ansible_no_log") or res.get("censored"):
        return "(output hidden: the task handles a secret)"
    text = str(res.get("msg") or res.get("stderr") or res.get("reason") or "").strip()
    return " ".join(text.split())[:_MESSAGE] or "(no message)"


def report_failure(label: str, measured: Measured, out=print) -> None:
    run = measured.first if measured.rerun is None or not measured.first.ok else measured.rerun
    which = "first run" if run is measured.first else "rerun"
    lines = failures(run, rerun=run is measured.rerun)
    out(f"{label}: {which} did NOT converge — no figures; artifacts: {run.run_dir}")
    for line in lines[:20]:
        out(f"    {line}")
    if len(lines) > 20:
        out(f"    ... {len(lines) - 20} more")


def main(argv: list[str] | None = None, run: Callable[[str, str, int, str], Measured] = measure) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", default="ke-staging")
    parser.add_argument("--sizes", default="1,8")
    parser.add_argument("--profiles", default="tuned,stock")
    parser.add_argument("--name-prefix", default="bench", help="lab names: <prefix>-<profile><size>")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    profiles = args.profiles.split(",")
    print(f"load average at start: {_load()}")
    results: dict[tuple[str, int], tuple[float, float]] = {}
    failed = []
    print(f"{'profile':>8} {'nodes':>5} {'first s':>8} {'rerun s':>8} {'rerun/first':>11} "
          f"{'cpu first':>9} {'cpu rerun':>9} {'cpu/host':>8} {'ms/task':>7}")
    for profile in profiles:
        for size in sizes:
            started = time.monotonic()
            measured = run(args.stack, profile, size, args.name_prefix)
            if not measured.converged or measured.rerun is None:
                failed.append((profile, size))
                report_failure(f"{profile:>8} {size:>5}", measured)
                continue
            first, rerun = measured.first.seconds, measured.rerun.seconds
            results[(profile, size)] = (first, rerun)
            tasks = task_times(measured.rerun.run_dir)
            results_count = sum(count for count, _ in tasks.values())
            per_task_ms = 1000 * measured.rerun_cpu / results_count if results_count else 0.0
            print(f"{profile:>8} {size:>5} {first:>8.1f} {rerun:>8.1f} {rerun / first:>11.2f} "
                  f"{measured.first_cpu:>9.1f} {measured.rerun_cpu:>9.1f} {measured.rerun_cpu / size:>8.1f} "
                  f"{per_task_ms:>7.0f}   ({time.monotonic() - started:.0f} s with lab up/down; load {_load()})",
                  flush=True)
            slowest = sorted(tasks.items(), key=lambda item: -item[1][1])[:5]
            print("         rerun's slowest tasks (summed over hosts): "
                  + "; ".join(f"{name} {total:.1f} s/{count}" for name, (count, total) in slowest), flush=True)
    lo, hi = min(sizes), max(sizes)
    for profile in profiles:
        if (profile, lo) in results and (profile, hi) in results and lo != hi:
            ratio = results[(profile, hi)][0] / results[(profile, lo)][0]
            print(f"{profile}: {hi} nodes / {lo} node, first run: {ratio:.2f}x (target <= 1.3x)")
    if ("tuned", hi) in results and ("stock", hi) in results:
        for i, label in ((0, "first run"), (1, "rerun")):
            speedup = results[("stock", hi)][i] / results[("tuned", hi)][i]
            print(f"tuned vs stock, {hi} nodes, {label}: {speedup:.2f}x faster (target >= 2x)")
    print(f"load average at end: {_load()}")
    if failed:
        print(f"{len(failed)} of {len(profiles) * len(sizes)} measurement(s) did not converge: "
              + ", ".join(f"{p} {s} node(s)" for p, s in failed), file=sys.stderr)
        return 1
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())

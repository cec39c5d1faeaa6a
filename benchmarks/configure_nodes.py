"""Configure 1 and 8 lab nodes, first run and idempotent rerun, tuned vs stock Ansible settings.

    sudo .venv/bin/python benchmarks/configure_nodes.py [--stack ke-staging] [--sizes 1,8]

Each (profile, size) gets fresh nodes from the cached image, so every first run starts from the
same state. Targets (issue 3): 8 nodes <= 1.3x the time of 1; rerun <= 25 % of the first run;
tuned >= 2x faster than stock. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

from lab.nodes import NodeLab
from nodeconfig.configure import configure, plan_target
from nodeconfig.settings import PROFILES


def measure(stack: str, profile: str, size: int) -> tuple[float, float, bool]:
    lab = NodeLab(f"bench-{profile[:5]}{size}")
    lab.down()
    try:
        lab.up(size)
        target = plan_target(stack, lab=lab.name)
        first = configure(target, profile=PROFILES[profile])
        rerun = configure(target, profile=PROFILES[profile])
        ok = first.ok and rerun.ok and rerun.changed == 0
        return first.seconds, rerun.seconds, ok
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", default="ke-staging")
    parser.add_argument("--sizes", default="1,8")
    parser.add_argument("--profiles", default="tuned,stock")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[tuple[str, int], tuple[float, float, bool]] = {}
    print(f"{'profile':>8} {'nodes':>5} {'first s':>8} {'rerun s':>8} {'rerun/first':>11} {'converged':>9}")
    for profile in args.profiles.split(","):
        for size in sizes:
            started = time.monotonic()
            first, rerun, ok = measure(args.stack, profile, size)
            results[(profile, size)] = (first, rerun, ok)
            print(f"{profile:>8} {size:>5} {first:>8.1f} {rerun:>8.1f} {rerun / first:>11.2f} {ok!s:>9}"
                  f"   ({time.monotonic() - started:.0f} s with lab up/down)", flush=True)
    lo, hi = min(sizes), max(sizes)
    for profile in args.profiles.split(","):
        if (profile, lo) in results and (profile, hi) in results:
            ratio = results[(profile, hi)][0] / results[(profile, lo)][0]
            print(f"{profile}: {hi} nodes / {lo} node, first run: {ratio:.2f}x (target <= 1.3x)")
    if ("tuned", hi) in results and ("stock", hi) in results:
        for i, label in ((0, "first run"), (1, "rerun")):
            speedup = results[("stock", hi)][i] / results[("tuned", hi)][i]
            print(f"tuned vs stock, {hi} nodes, {label}: {speedup:.2f}x faster (target >= 2x)")


if __name__ == "__main__":
    main()

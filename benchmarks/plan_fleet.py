"""Plan a fleet of 10 countries totalling 1,000,000 GPUs: wall time, peak memory, growth.

    .venv/bin/python benchmarks/plan_fleet.py

Runs the whole path a `sovereign fleet` takes — YAML text, validation, sizing, plan summary — for
fleets of three sizes, so the time per 100k GPUs shows whether planning grows linearly.
Targets (issue 2): the 1M-GPU fleet in under 3 s and 1 GiB on the 2-core CI machine.
"""

from __future__ import annotations

import resource
import time

import yaml

from nodeconfig.nodes import iter_nodes
from stacks.design.loader import parse
from stacks.design.sizing import design
from stacks.design.summary import plan_summary

COUNTRIES = ("KE", "BR", "DE", "IN", "ID", "ZA", "MX", "VN", "EG", "CL")
PLATFORMS = ("hgx-h100", "hgx-h200", "hgx-b200", "gb200-nvl72", "gb300-nvl72")
SITES_PER_COUNTRY = 2


def fleet_texts(total_gpus: int) -> list[str]:
    per_site = total_gpus // (len(COUNTRIES) * SITES_PER_COUNTRY)
    texts = []
    for c, country in enumerate(COUNTRIES):
        sites = []
        for s in range(SITES_PER_COUNTRY):
            platform = PLATFORMS[(c + s) % len(PLATFORMS)]
            k = c * SITES_PER_COUNTRY + s  # pools disjoint across the whole fleet
            sites.append(
                {
                    "name": f"site-{s + 1}", "city": "City", "region": "Region",
                    "power_budget_mw": 5000, "pue": 1.2, "cooling": "liquid", "max_rack_kw": 150,
                    "networks": {
                        "data": f"10.{4 * k}.0.0/14",
                        "storage": f"10.{100 + 4 * k}.0.0/14",
                        "oob": f"10.{200 + k}.0.0/16",
                    },
                    "capacity": {"platform": platform, "gpus": per_site},
                }
            )
        doc = {
            "schema_version": 1, "name": f"{country} AI", "country": country, "languages": ["en"],
            "currency": "USD", "operating_authority": "Ministry", "mode": "greenfield",
            "funding": [
                {"party": "Government", "kind": "government", "share": 0.5},
                {"party": "Partner", "kind": "partner", "share": 0.5},
            ],
            "sovereignty": {"data_residency": [country]},
            "sites": sites,
        }
        texts.append(yaml.safe_dump({"config": {"sovereign:partnership": doc}}))
    return texts


def plan_fleet(texts: list[str]) -> int:
    gpus = 0
    for i, text in enumerate(texts):
        partnership = parse(text, f"country-{i}.yaml")
        planned = design(partnership)
        gpus += plan_summary(partnership, planned)["totals"]["new_gpus"]
    return gpus


def address_every_node(texts: list[str]) -> int:
    """Per-node names and addresses for the whole fleet: what the inventories are built from."""
    count = 0
    for i, text in enumerate(texts):
        for site in design(parse(text, f"country-{i}.yaml")).sites:
            for _ in iter_nodes(site):
                count += 1
    return count


def main() -> None:
    print(f"{'fleet GPUs':>12} {'planned':>10} {'plan s':>8} {'s/100k GPUs':>12}"
          f" {'nodes':>8} {'addressing s':>13} {'s/100k GPUs':>12}")
    results = []
    for total in (100_000, 300_000, 1_000_000):
        texts = fleet_texts(total)
        start = time.perf_counter()
        planned = plan_fleet(texts)
        middle = time.perf_counter()
        nodes = address_every_node(texts)
        end = time.perf_counter()
        wall, addressing = middle - start, end - middle
        results.append((total, wall + addressing))
        per = planned / 100_000
        print(f"{total:>12,} {planned:>10,} {wall:>8.3f} {wall / per:>12.4f}"
              f" {nodes:>8,} {addressing:>13.3f} {addressing / per:>12.4f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall_1m = results[-1][1]
    growth = (results[-1][1] / results[0][1]) / (results[-1][0] / results[0][0])
    print(f"1M-GPU fleet, plan + every node addressed: {wall_1m:.3f} s "
          f"(target < 3 s, ratio {wall_1m / 3:.3f} of target)")
    print(f"peak RSS: {peak_mib:.0f} MiB (target < 1024 MiB, ratio {peak_mib / 1024:.3f} of target)")
    print(f"growth 100k -> 1M: time ratio / size ratio = {growth:.2f} (1.0 = linear, < 1 sublinear)")


if __name__ == "__main__":
    main()

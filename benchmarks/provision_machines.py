"""Provision N emulated servers with the real engine; servers per minute and overhead vs the floor.

    .venv/bin/python benchmarks/provision_machines.py [--servers 100 1000] [--wave 8] [--pools 8]

For each N: a fresh lab with N BMCs on sushy-tools' emulator (lab.bmc). The floor first: exactly
the work a provisioning does at the BMC — the provider's own create (session, inventory, both
media, boot override, power on and the wait for it) — for every server, straight from as many
threads as the engine's provider pools run, without the engine; the servers are then put back
(off, ejected). Then `sovereign up` of ke-staging with the lab's BMC settings, timed: the same
work plus the engine's (program, state, gRPC, each server's seed ISO). The emulator's power delays
(1–11 s) are in both; `up` provisions each scalable unit's servers in a stack of its own, two units
at a time sharing the pools (stacks.machine_stacks), so the floor's threads are the same. With the
floor it prints the emulator's own cost, read from its request log
and its process's CPU time: requests and CPU seconds per server. The emulator is one Python process
for all servers, so that CPU bounds how fast any client can provision here. Targets (issue 13):
engine overhead ≤ 2× the floor; 1,000 servers in under 10 minutes. Prints one JSON document per N,
with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import paths  # noqa: E402
from lab.bmc import BmcLab, site_bmcs_down, site_bmcs_up  # noqa: E402
from stacks.bmc_config import BmcSettings  # noqa: E402
from stacks.design import atomic  # noqa: E402
from stacks.design.bmc_plan import BmcServer, bmc_servers  # noqa: E402
from stacks.design.catalog import PLATFORMS  # noqa: E402
from stacks.design.loader import load_and_design  # noqa: E402
from stacks.design.sizing import SiteDesign  # noqa: E402
from stacks.providers import redfish_machine as provider  # noqa: E402

STACK = "ke-staging"


class Emulator:
    """The emulator's own cost: requests it logged and CPU seconds its process spent. It is one
    Python process for every server of the lab, so its CPU per server bounds the floor."""

    def __init__(self, lab_dir: Path):
        self.bmcs = BmcLab(lab_dir)
        self.daemon = self.bmcs.daemon

    def requests(self) -> int:
        return self.bmcs.requests_served()

    def cpu_s(self) -> float:
        pid = self.daemon.pid()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def floor(settings: dict[str, Any], site: SiteDesign, count: int, emulator: Emulator) -> dict[str, Any]:
    """Seconds per server of the provider's own create for every server, without the engine."""
    servers = bmc_servers(site, settings["url"], settings["system"], count)
    pools = int(settings.get("pools", BmcSettings.pools))
    threads = max(1, min(pools, len({s.rack for s in servers}))) * 4  # as stacks.components.machines
    password = Path(settings["password_file"]).read_text().strip()
    ca_pem = Path(settings["ca_file"]).read_text()
    image = settings["install_image"]

    def props(server: BmcServer) -> dict[str, Any]:
        return {"name": server.name, "url": server.url, "system": server.system, "rack": server.rack,
                "username": settings["username"], "password": password, "ca_pem": ca_pem,
                "image_url": image["url"], "image_sha256": image["sha256"],
                "seed_url": image["url"], "seed_sha256": image["sha256"],  # a second medium, as a seed ISO is
                "gpu_model": site.gpu_model, "gpus": PLATFORMS[site.platform].gpus_per_node,
                "deadline_s": settings["deadline_s"], "wave": settings["wave"], "generation": 0}

    def provision(server: BmcServer) -> str | None:
        try:
            provider._provision(props(server))
            return None
        except provider.BmcError as exc:  # fails alone, as in the engine's run
            return str(exc)

    requests, cpu, started = emulator.requests(), emulator.cpu_s(), time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        failed = [reason for reason in pool.map(provision, servers) if reason]
    seconds = time.monotonic() - started
    requests, cpu = emulator.requests() - requests, emulator.cpu_s() - cpu
    def put_back(server: BmcServer) -> None:
        try:
            provider.RedfishMachineProvider().delete("", props(server))
        except provider.BmcError:
            pass  # the engine's create resets a running server anyway

    with ThreadPoolExecutor(threads) as pool:  # back to off and ejected for the engine's run
        list(pool.map(put_back, servers))
    return {"seconds": seconds, "per_server_s": seconds / len(servers), "threads": threads,
            "emulator_requests_per_server": round(requests / len(servers), 1),
            "emulator_ms_per_request": round(cpu / max(requests, 1) * 1000, 1),
            "emulator_cpu_s_per_server": round(cpu / len(servers), 3),
            "failed": len(failed), "first_failure": failed[0] if failed else None}


def run(count: int, wave: int, pools: int) -> dict[str, object]:
    state = Path(tempfile.mkdtemp(prefix="sovbench-", dir="/tmp"))
    name = f"p{secrets.token_hex(3)}"
    lab_dir = paths.lab_dir(name, state)
    env = {**os.environ, "SOVEREIGN_STATE": str(state)}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    _, planned = load_and_design(STACK)
    try:
        settings_file = site_bmcs_up(lab_dir, planned.sites[0], count, deadline_s=300, wave=wave)
        settings = {**json.loads(settings_file.read_text()), "pools": pools}
        atomic.write_file(settings_file, json.dumps(settings))
        load_at_start = os.getloadavg()
        base = floor(settings, planned.sites[0], count, Emulator(lab_dir))
        print(json.dumps({"servers": count, "floor": base}), file=sys.stderr, flush=True)  # before the long `up`
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "cli", "up", STACK, "--lab", name, "--allow-unapproved", "--json"],
                                env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        out = result.stdout
        doc: dict[str, Any] = json.loads(out) if out.strip().startswith("{") else {"raw": out[-2000:]}
        if result.returncode != 0:  # servers whose BMC failed fail alone; the time still counts
            problems = doc.get("problems") or []
            return {"servers": count, "ok": False, "up_s": round(seconds, 1), "floor_s": round(base["seconds"], 1),
                    "floor_failed": base["failed"], "problems": len(problems),
                    "first_problem": problems[0] if problems else doc}
        per_server = seconds / count
        stacks = state / "pulumi" / ".pulumi" / "stacks"
        # the site's stack and its scalable units' machine stacks (stacks.machine_stacks)
        checkpoints = [next(stacks.rglob(f"{STACK}.json")), *sorted(stacks.rglob(f"{STACK}-machines-su*.json"))]
        state_bytes = sum(c.stat().st_size for c in checkpoints)
        if os.environ.get("SOVEREIGN_BENCH_KEEP"):  # a copy of the largest, to read where the state's bytes go
            shutil.copy(max(checkpoints, key=lambda c: c.stat().st_size), os.environ["SOVEREIGN_BENCH_KEEP"])
        return {
            "servers": count, "ok": True, "up_s": round(seconds, 1),
            "servers_per_min": round(count / seconds * 60, 1),
            "engine_s_per_server": round(per_server, 3),
            "floor_s_per_server": round(base["per_server_s"], 3),
            "floor_s": round(base["seconds"], 1), "threads": base["threads"],
            "floor_failed": base["failed"], "floor_first_failure": base["first_failure"],
            "emulator_requests_per_server": base["emulator_requests_per_server"],
            "emulator_ms_per_request": base["emulator_ms_per_request"],
            "emulator_cpu_s_per_server": base["emulator_cpu_s_per_server"],
            "overhead_vs_floor": round(per_server / base["per_server_s"], 2),
            "state_kib": round(state_bytes / 1024),
            "largest_checkpoint_kib": round(max(c.stat().st_size for c in checkpoints) / 1024),
            "state_bytes_per_server": round(state_bytes / count),
            "unit_stacks": len(checkpoints) - 1,
            "powered_on": doc.get("outputs", {}).get("machines", {}).get("powered_on"),
            "load_average": [load_at_start, os.getloadavg()],
        }
    finally:
        site_bmcs_down(lab_dir)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--wave", type=int, default=8)
    parser.add_argument("--pools", type=int, default=BmcSettings.pools, help="provider processes (the stack's bmc.pools)")
    args = parser.parse_args()
    for count in args.servers:
        print(json.dumps(run(count, args.wave, args.pools)), flush=True)


if __name__ == "__main__":
    main()

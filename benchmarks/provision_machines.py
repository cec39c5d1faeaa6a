"""Provision N emulated servers with the real engine; servers per minute and overhead vs the floor.

    .venv/bin/python benchmarks/provision_machines.py [--servers 100 1000] [--wave 8]

For each N: a fresh lab with N BMCs on sushy-tools' emulator (lab.bmc), then `sovereign up` of
ke-staging with the lab's BMC settings, timed. The floor is the emulator's own rate: the same
Redfish requests one server's provisioning makes (system, virtual media, boot override, reset and
a power poll), issued straight with sushy from as many threads as the engine may use, without
the engine; the power delay the emulator adds (1–11 s) is the same for both and is not part of
the floor's request time. Targets (issue 13): engine overhead ≤ 2× the floor; 1,000 servers in
under 10 minutes. Prints one JSON document per N.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sushy  # noqa: E402

from lab import paths  # noqa: E402
from lab.bmc import SYSTEM_PATH, BmcLab, site_bmcs_down, site_bmcs_up  # noqa: E402
from stacks.design.bmc_plan import system_uuid  # noqa: E402
from stacks.design.loader import load_and_design  # noqa: E402

STACK = "ke-staging"


def floor(lab_dir: Path, servers: list[str], threads: int) -> dict[str, float]:
    """Seconds per server of the Redfish requests a provisioning makes, straight to the emulator."""
    ep = BmcLab(lab_dir).endpoint()
    settings = json.loads((lab_dir / "bmc" / "stack.json").read_text())
    image = settings["install_image"]["url"]

    def one(server: str) -> int:
        root = sushy.Sushy(ep.url + "/redfish/v1/", username=ep.username, password=ep.password(), verify=str(ep.ca))
        system = root.get_system(SYSTEM_PATH.format(system_uuid=system_uuid(server)))
        media = next(m for m in system.virtual_media.get_members() if m.identity == "Cd")
        media.insert_media(image, inserted=True, write_protected=True)
        system.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_CD, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE)
        system.refresh(force=True)
        media.eject_media()  # leave the server as it was for the engine's run
        return 6

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        requests = sum(pool.map(one, servers))
    seconds = time.monotonic() - started
    return {"seconds": seconds, "per_server_s": seconds / len(servers), "requests_per_s": requests / seconds}


def run(count: int, wave: int) -> dict[str, object]:
    state = Path(tempfile.mkdtemp(prefix="sovbench-", dir="/tmp"))
    name = f"p{secrets.token_hex(3)}"
    lab_dir = paths.lab_dir(name, state)
    env = {**os.environ, "SOVEREIGN_STATE": str(state)}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    _, planned = load_and_design(STACK)
    try:
        site_bmcs_up(lab_dir, planned.sites[0], count, deadline_s=300, wave=wave)
        servers = json.loads((lab_dir / "bmc" / "bmc.json").read_text())["servers"]
        base = floor(lab_dir, servers, threads=wave * 4)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "cli", "up", STACK, "--lab", name, "--allow-unapproved", "--json"],
                                env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        doc = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {"raw": result.stdout[-2000:]}
        if result.returncode != 0:
            return {"servers": count, "ok": False, "error": doc}
        per_server = seconds / count
        return {
            "servers": count, "ok": True, "up_s": round(seconds, 1),
            "servers_per_min": round(count / seconds * 60, 1),
            "engine_s_per_server": round(per_server, 3),
            "floor_s_per_server": round(base["per_server_s"], 3),
            "emulator_requests_per_s": round(base["requests_per_s"], 1),
            "overhead_vs_floor": round(per_server / base["per_server_s"], 2),
            "powered_on": doc.get("outputs", {}).get("machines", {}).get("powered_on"),
            "load_average": os.getloadavg(),
        }
    finally:
        site_bmcs_down(lab_dir)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--wave", type=int, default=8)
    args = parser.parse_args()
    for count in args.servers:
        print(json.dumps(run(count, args.wave)), flush=True)


if __name__ == "__main__":
    main()

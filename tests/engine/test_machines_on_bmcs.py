"""Real tier: servers provisioned by the real Pulumi engine through sushy-tools' Redfish emulator.

34 emulated servers of in-staging's first site (HGX H100, 32 a scalable unit, 2 a rack within the
site's power: two units' machine stacks, of 16 racks and of 1) behind the lab's BMC endpoint (TLS
from the lab's CA, bcrypt basic auth, the emulator unpatched: power changes land
1–11 s late). Every check reads the emulator through Redfish (sushy), not Pulumi's view of it. The tests run in order on one lab.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sushy

from lab import paths
from lab.bmc import BmcLab, site_bmcs_down, site_bmcs_up
from lab.pki import LabCA
from stacks.design.bmc_plan import system_uuid
from stacks.design.loader import load_and_design
from toolchain.build import install

pytestmark = pytest.mark.lab

STACK = "in-staging"
SERVERS = 34
UNITS = (f"{STACK}-machines-su01", f"{STACK}-machines-su02")
SOVEREIGN = str(Path(sys.executable).parent / "sovereign")


@dataclass
class BmcLabHandle:
    name: str
    state: Path
    dir: Path
    settings: Path
    env: dict[str, str]
    servers: list[str]
    transcript: list[str] = field(default_factory=list)

    @property
    def bmcs(self) -> BmcLab:
        return BmcLab(self.dir)

    def sovereign(self, *args: str, timeout: float = 600) -> tuple[int, dict]:
        result = subprocess.run([SOVEREIGN, *args, "--lab", self.name, "--json"], env=self.env, capture_output=True,
                                text=True, timeout=timeout, check=False)
        self.transcript.append(result.stdout + result.stderr)
        return result.returncode, json.loads(result.stdout)

    def up(self) -> dict:
        code, doc = self.sovereign("up", STACK, "--allow-unapproved")
        assert code == 0, json.dumps(doc, indent=1)
        return doc

    def redfish(self) -> sushy.Sushy:
        ep = self.bmcs.endpoint()
        return sushy.Sushy(ep.url + "/redfish/v1/", username=ep.username, password=ep.password(), verify=str(ep.ca))

    def system(self, server: str):
        return self.redfish().get_system(f"/redfish/v1/Systems/{system_uuid(server)}")

    def edit_settings(self, **changes) -> dict:
        """Change the lab's BMC settings the stack reads; returns the old values."""
        data = json.loads(self.settings.read_text())
        old = {k: data.get(k) for k in changes}
        data.update(changes)
        self.settings.write_text(json.dumps(data))
        return old


@pytest.fixture(scope="module")
def bmc_lab() -> Iterator[BmcLabHandle]:
    install()  # the pinned engine (cached); a build failure fails the tier
    state = Path(tempfile.mkdtemp(prefix="sovbmc-", dir="/tmp"))
    name = f"b{secrets.token_hex(3)}"
    env = {**os.environ, "SOVEREIGN_STATE": str(state)}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    lab_dir = paths.lab_dir(name, state)
    _, planned = load_and_design(STACK)
    try:
        settings = site_bmcs_up(lab_dir, planned.sites[0], SERVERS, deadline_s=60)
        servers = json.loads((lab_dir / "bmc" / "bmc.json").read_text())["servers"]
        yield BmcLabHandle(name, state, lab_dir, settings, env, servers)
    finally:
        site_bmcs_down(lab_dir)
        shutil.rmtree(state, ignore_errors=True)


def checkpoint(handle: BmcLabHandle, stack: str) -> Path:
    return next((handle.state / "pulumi" / ".pulumi" / "stacks").rglob(f"{stack}.json"))


def wait_power(handle: BmcLabHandle, server: str, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while handle.system(server).power_state.value != state:
        assert time.monotonic() < deadline, f"{server} did not reach {state}"
        time.sleep(0.5)


def test_up_provisions_every_server(bmc_lab):
    before = bmc_lab.bmcs.requests_served()
    doc = bmc_lab.up()
    # One session per server, each document read once: connect (3), inventory from the system
    # already read, the two devices (3), two inserts, the boot override, the reset, the power polls
    # (about 4 for the emulator's 1-11 s), the devices read back (2). Re-reading every device on
    # each power poll, as sushy's forced refresh does, was 41 a server.
    per_server = (bmc_lab.bmcs.requests_served() - before) / SERVERS
    assert per_server <= 22, per_server
    # Each scalable unit's servers are in a stack of their own (stacks.machine_stacks), none in the site's
    site = json.loads(checkpoint(bmc_lab, STACK).read_text())["checkpoint"]["latest"]["resources"]
    assert not [r for r in site if "machines" in r["type"] or "dynamic" in r["type"]], [r["urn"] for r in site]
    units = {name: json.loads(checkpoint(bmc_lab, name).read_text())["checkpoint"]["latest"]["resources"] for name in UNITS}
    servers = {name: {r["urn"].rsplit("::", 1)[-1] for r in res if r["type"] == "pulumi-python:dynamic:Resource"
                      and not r["urn"].endswith("-seed")} for name, res in units.items()}
    assert servers[UNITS[0]] == set(bmc_lab.servers[:32]) and servers[UNITS[1]] == set(bmc_lab.servers[32:]), servers
    # The registrations' stack traces in the state are the project's frames only (stacks.registration_trace)
    resources = units[UNITS[0]]
    frames = [f.get("sourcePosition", "") for r in resources if r["type"] != "pulumi:pulumi:Stack"  # the SDK's own
              for f in r.get("stackTrace", [])]
    assert frames and all(f.startswith("project:///") and "site-packages" not in f and "/../" not in f
                          for f in frames), sorted(set(frames))[:5]
    machine = next(r for r in resources if r["urn"].endswith(f"::{bmc_lab.servers[0]}"))
    assert machine["stackTrace"][0]["sourcePosition"].startswith("project:///stacks/providers/redfish_machine.py#")
    assert doc["changes"]["create"] >= SERVERS
    # 2 units at once share the 8 pools: 4 for the first unit's 16 racks, 1 for the second's one rack
    assert doc["outputs"]["machines"] == {"servers": SERVERS, "racks": 17, "wave": 8, "pools": 5, "powered_on": SERVERS,
                                          "stacks": 2}
    settings = json.loads(bmc_lab.settings.read_text())
    for server in bmc_lab.servers:
        system = bmc_lab.system(server)
        assert system.power_state == sushy.POWER_STATE_ON, server
        assert system.boot.target == sushy.BOOT_SOURCE_TARGET_CD, server
        inserted = {m.identity: m.image for m in system.virtual_media.get_members() if m.inserted}
        seed = f"{settings['artifacts_url']}/seeds/{server}-seed.iso"
        assert inserted == {"Cd": settings["install_image"]["url"], "Floppy": seed}, server
    downloaded = list(bmc_lab.bmcs.media_dir.rglob("*.iso"))  # in the lab, which `down` removes; not in /tmp
    assert len(downloaded) >= 2 * SERVERS, len(downloaded)
    iso = Path(settings["artifacts_dir"]) / "seeds" / f"{bmc_lab.servers[0]}-seed.iso"
    listing = subprocess.run(["xorriso", "-indev", str(iso), "-pvd_info", "-ls", "/"], capture_output=True,
                             text=True, check=True)
    assert "cidata" in listing.stdout + listing.stderr
    assert {"'user-data'", "'meta-data'", "'preseed.cfg'"} <= set(listing.stdout.split())


def test_the_emulator_closes_its_sqlite_connections(bmc_lab):
    """lab/bmc_emulator.py: sushy-tools leaves each state connection to the garbage collector, and
    under load they piled up to the machine's 20,000 open files. Four sessions' worth of reads at
    once must leave the emulator with a handful open, not one per read."""
    pid = bmc_lab.bmcs.daemon.pid()
    assert pid is not None

    def read(server: str) -> None:
        for _ in range(10):
            assert bmc_lab.system(server).power_state

    peak = 0
    with ThreadPoolExecutor(4) as pool:
        reads = [pool.submit(read, server) for server in bmc_lab.servers[:4]]
        while not all(r.done() for r in reads):
            peak = max(peak, len(os.listdir(f"/proc/{pid}/fd")))
            time.sleep(0.01)
        for r in reads:
            r.result()
    assert peak < 48, peak


def test_preview_after_up_has_no_changes(bmc_lab):
    code, doc = bmc_lab.sovereign("preview", STACK, "--allow-unapproved", "--expect-no-changes")
    assert code == 0, doc


def test_a_changed_seed_is_a_visible_diff(bmc_lab):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8sLd0vbbK3vMgkbQfWq2Gk8D0zHc3v7c8j7yJmNW2k new-admin"
    old = bmc_lab.edit_settings(admin_keys=[key])
    try:
        code, doc = bmc_lab.sovereign("preview", STACK, "--allow-unapproved")
        # every seed is repacked, and every server re-provisioned from it
        assert code == 0 and doc["changes"].get("update") == 2 * SERVERS, doc
    finally:
        bmc_lab.edit_settings(**old)


def test_server_powered_off_by_hand_is_drift_that_up_fixes(bmc_lab):
    server = bmc_lab.servers[2]
    bmc_lab.system(server).reset_system(sushy.RESET_FORCE_OFF)
    wait_power(bmc_lab, server, "Off")
    code, doc = bmc_lab.sovereign("preview", STACK, "--allow-unapproved")
    assert code == 0 and doc["changes"].get("update") == 1, doc
    doc = bmc_lab.up()
    assert doc["changes"].get("update") == 1 and "create" not in doc["changes"], doc
    assert bmc_lab.system(server).power_state == sushy.POWER_STATE_ON


def test_rotated_credential_401_then_success(bmc_lab):
    old = bmc_lab.bmcs.endpoint().password()
    new = secrets.token_urlsafe(18)
    bmc_lab.bmcs.set_bmc_password(new)  # rotated on the BMCs, the stack still has the old one
    code, doc = bmc_lab.sovereign("up", STACK, "--allow-unapproved")
    message = json.dumps(doc)
    assert code != 0 and "refused the credentials" in message, message
    assert all(f"server {server}:" in message for server in bmc_lab.servers), message  # each failure, each reason
    assert "Traceback" not in message and old not in message and new not in message
    (bmc_lab.dir / "bmc" / "password").write_text(new + "\n")  # the stack's copy follows
    doc = bmc_lab.up()
    # The new password goes into the pools' configuration (5 pools over the two units); no server changes
    assert doc["changes"].get("update") == 5 and set(doc["changes"]) <= {"update", "same"}, doc


def test_untrusted_certificate_is_refused(bmc_lab):
    stranger = LabCA(bmc_lab.state / "stranger-ca", "stranger")
    old = bmc_lab.edit_settings(ca_file=str(stranger.ca.cert))
    try:
        code, doc = bmc_lab.sovereign("up", STACK, "--allow-unapproved")
        assert code != 0 and "not signed by the configured CA" in json.dumps(doc), doc
    finally:
        bmc_lab.edit_settings(**old)  # state kept the trusted CA: the next test's `up` runs as before


def test_bmc_slower_than_the_deadline_is_a_clear_error(bmc_lab):
    server = bmc_lab.servers[5]
    bmc_lab.system(server).reset_system(sushy.RESET_FORCE_OFF)
    wait_power(bmc_lab, server, "Off")
    old = bmc_lab.edit_settings(deadline_s=0.5)  # the emulator applies power changes 1–11 s late
    try:
        code, doc = bmc_lab.sovereign("up", STACK, "--allow-unapproved")
        message = json.dumps(doc)
        assert code != 0 and f"server {server}" in message and "after the deadline of 0.5 s" in message, message
    finally:
        bmc_lab.edit_settings(**old)
    bmc_lab.up()
    assert bmc_lab.system(server).power_state == sushy.POWER_STATE_ON


def test_emulator_stopped_mid_run_then_rerun_converges_without_reprovisioning(bmc_lab):
    # Reinstall every server, two BMC sessions at a time, and stop the emulator once some have
    # finished: they must not be reinstalled again by the rerun.
    bmc_lab.edit_settings(generation=1, wave=2)
    proc = subprocess.Popen([SOVEREIGN, "up", STACK, "--allow-unapproved", "--lab", bmc_lab.name, "--json"],
                            env=bmc_lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_off: set[str] = set()
    cycled: set[str] = set()
    deadline = time.monotonic() + 300
    try:
        while len(cycled) < 2:
            assert proc.poll() is None, "up ended before the emulator could be stopped"
            assert time.monotonic() < deadline, "no server was reinstalled"
            root = bmc_lab.redfish()
            for server in bmc_lab.servers:
                power = root.get_system(f"/redfish/v1/Systems/{system_uuid(server)}").power_state.value
                if power == "Off":
                    seen_off.add(server)
                elif server in seen_off:
                    cycled.add(server)
            time.sleep(0.3)
        time.sleep(6)  # the provider's last power poll (backoff ≤ 5 s) lands for the cycled servers
        bmc_lab.bmcs.stop()
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    bmc_lab.transcript.append(out + err)
    assert proc.returncode != 0 and "does not answer" in out, out
    bmc_lab.bmcs.start()  # its sqlite state survives, as a BMC's does a BMC reboot
    code, doc = bmc_lab.sovereign("preview", STACK, "--allow-unapproved")
    pending = doc["changes"].get("update", 0)
    assert code == 0 and 0 < pending <= SERVERS - len(cycled), (doc, sorted(cycled))
    doc = bmc_lab.up()
    assert doc["changes"].get("update") == pending, doc  # the finished servers were left alone
    code, doc = bmc_lab.sovereign("preview", STACK, "--allow-unapproved", "--expect-no-changes")
    assert code == 0, doc


def test_destroy_powers_off_and_ejects(bmc_lab):
    code, doc = bmc_lab.sovereign("destroy", STACK, "--yes")
    assert code == 0, doc
    # the units' stacks are gone with their servers, and their configs with them
    assert not list((bmc_lab.state / "pulumi" / ".pulumi" / "stacks").rglob(f"{STACK}-machines-*.json"))
    assert not list((bmc_lab.state / "machines").glob("Pulumi.*.yaml"))
    for server in bmc_lab.servers:
        system = bmc_lab.system(server)
        assert system.power_state == sushy.POWER_STATE_OFF, server
        assert not [m for m in system.virtual_media.get_members() if m.inserted], server


def test_canary_password_appears_nowhere(bmc_lab):
    password = bmc_lab.bmcs.endpoint().password()
    assert len(password) >= 20
    places = [bmc_lab.state / "pulumi", bmc_lab.state / "machines", bmc_lab.dir / "artifacts", bmc_lab.dir / "bmc" / "log"]
    for root in places:
        for path in root.rglob("*"):
            if path.is_file():
                assert password.encode() not in path.read_bytes(), path
    assert not any(password in text for text in bmc_lab.transcript)

"""Real tier: SSH masters and host keys over real SSH to lab nodes (issue 6, issue 7 item 9).

State paths and stack names are deliberately long: a ControlPath under the state dir would be
far over the unix socket limit, so these runs reach the nodes only if every master the project
opens lives in lab.sockets' short directory. The "site" runs treat the lab nodes as a real site
(strict host keys from a design known_hosts file); one of them runs as an unprivileged user.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from lab.nodes import NodeLab
from nodeconfig import hostkeys
from nodeconfig.configure import Target, configure, plan_target
from nodeconfig.settings import SshAccess
from tests.lab.leftovers import leftovers

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
STACK = "ke-staging-a-deliberately-long-stack-name"
LONG = "a-deliberately-long-state-directory-" + "x" * 40
NOBODY = 65534


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="sovssh-", dir="/tmp"))
    root.chmod(0o755)  # the unprivileged user works below it
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def long_root(scratch: Path) -> Path:
    return scratch / LONG


@pytest.fixture(scope="module")
def lab(long_root: Path) -> Iterator[NodeLab]:
    old = os.environ.get("SOVEREIGN_STATE")
    os.environ["SOVEREIGN_STATE"] = str(long_root)
    node_lab = NodeLab(f"ssh-{secrets.token_hex(2)}", state_root=long_root)
    described = None
    try:
        node_lab.up(2)
        described = node_lab.status().to_json()
        yield node_lab
    finally:
        node_lab.down()
        if old is None:
            os.environ.pop("SOVEREIGN_STATE", None)
        else:
            os.environ["SOVEREIGN_STATE"] = old
    assert described and leftovers(described) == []  # Ansible's masters were the lab's: down closed them


@pytest.fixture(scope="module")
def stack_file(scratch: Path) -> Path:
    path = scratch / f"Pulumi.{STACK}.yaml"
    shutil.copy(REPO / "countries" / "Pulumi.ke-staging.yaml", path)
    path.chmod(0o644)
    return path


def test_lab_run_with_a_long_state_path_and_stack_name(lab: NodeLab, long_root: Path, stack_file: Path) -> None:
    spec = lab.spec()
    assert spec is not None
    old_place = long_root / "configure" / f"lab-{lab.name}" / "cp" / ("c" * 40 + "." + "r" * 16)
    assert len(str(old_place)) > 107  # where Ansible's masters used to go: unusable here
    args = ["configure", str(stack_file), "--lab", lab.name, "--check", "--tags", "time_sync", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] and len(report["hosts"]) == 2, report
    masters = sorted(p.name for p in spec.control_dir.iterdir() if p.is_socket())
    assert masters == [f"cm-root@{n.ip}:22" for n in spec.nodes]


def site_inventory(lab: NodeLab, key: Path) -> dict[str, Any]:
    """The lab's nodes as a real site would list them: connection settings in the inventory."""
    inventory = copy.deepcopy(plan_target("ke-staging", lab=lab.name).inventory)
    inventory["all"]["vars"].update(ansible_user="root", ansible_ssh_private_key_file=str(key))
    return inventory


def site_run(inventory: dict[str, Any], state: Path, design: Path | None, accept_new: bool = False) -> dict[str, Any]:
    """configure() as on a real site (strict host keys, short masters), summarised as plain data.
    Also run by the unprivileged user, in its own process."""
    access = SshAccess(
        ssh_config=hostkeys.site_ssh_config(STACK, state, design),
        control_path=hostkeys.site_control_path(state),
        known_hosts=(*([design] if design else []), hostkeys.recorded(state)),
        accept_new_host_keys=accept_new,
    )
    # --check --tags time_sync: reaches every node (facts, then one role) and changes nothing
    result = configure(Target(STACK, inventory, access, state), tags="time_sync", check=True)
    control_dir = Path(access.control_path).parent
    return {
        "ok": result.ok,
        "stopped": result.stopped,
        "hosts": {h.host: (h.status, h.messages) for h in result.hosts.values()},
        "control_dir": str(control_dir),
        "sockets": sorted(p.name for p in control_dir.iterdir() if p.is_socket()),
        "recorded": hostkeys.recorded(state).read_text(),
    }


def close_masters(control_dir: Path) -> None:
    for sock in control_dir.glob("*"):
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, check=False)
    shutil.rmtree(control_dir, ignore_errors=True)


def keys_of(known_hosts: Path) -> dict[str, str]:
    """ip -> key type and key, from the lab's pinned `name,ip type key` lines."""
    out = {}
    for line in known_hosts.read_text().splitlines():
        names, kind, key = line.split()[:3]
        out[names.split(",")[1]] = f"{kind} {key}"
    return out


def test_site_run_as_root_checks_keys_and_keeps_masters_short(lab: NodeLab, long_root: Path, scratch: Path) -> None:
    spec = lab.spec()
    assert spec is not None
    state = long_root / "configure" / STACK / "konza-1"
    run = site_run(site_inventory(lab, spec.ssh_key), state, spec.known_hosts)
    try:
        assert run["ok"], run
        assert len(run["sockets"]) == 2 and all(len(s) == 40 for s in run["sockets"])
        assert run["control_dir"].startswith("/run/sovereign/ssh/")
        assert len(str(state)) + len("/cp/") + 40 + 17 > 107  # the state dir itself could not hold them
    finally:
        close_masters(Path(run["control_dir"]))


def test_a_changed_host_key_stops_the_run(lab: NodeLab, long_root: Path, scratch: Path) -> None:
    spec = lab.spec()
    assert spec is not None
    victim = spec.nodes[0]
    other = scratch / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    design = scratch / "design_known_hosts_changed"
    lines = spec.known_hosts.read_text().splitlines()
    forged = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    design.write_text("".join(f"{ln.split()[0]} {forged}\n" if victim.ip in ln else f"{ln}\n" for ln in lines))
    state = long_root / "configure" / STACK / "changed"
    run = site_run(site_inventory(lab, spec.ssh_key), state, design)
    close_masters(Path(run["control_dir"]))
    assert not run["ok"] and run["stopped"], run
    assert run["stopped"].startswith(f"host key of {victim.name} ({victim.ip}) CHANGED"), run["stopped"]
    assert str(design) in run["stopped"] and "run stopped" in run["stopped"]


def test_first_contact_records_keys_only_when_asked(lab: NodeLab, long_root: Path) -> None:
    spec = lab.spec()
    assert spec is not None
    state = long_root / "configure" / STACK / "first-contact"
    inventory = site_inventory(lab, spec.ssh_key)
    refused = site_run(inventory, state, None)
    assert not refused["ok"] and not refused["stopped"], refused
    for node in spec.nodes:
        status, messages = refused["hosts"][node.name]
        assert status == "unreachable" and "no known host key" in messages[0] and "--accept-new-host-keys" in messages[0]
    accepted = site_run(inventory, state, None, accept_new=True)
    again = site_run(inventory, state, None)  # strict again: the recorded keys are now trusted
    close_masters(Path(again["control_dir"]))
    assert accepted["ok"] and again["ok"], (accepted, again)
    recorded = {ln.split()[0]: " ".join(ln.split()[1:3]) for ln in again["recorded"].splitlines()}
    assert recorded == keys_of(spec.known_hosts)  # exactly the nodes' real keys


def python_for_others(where: Path) -> Path:
    """An interpreter another user can run, with this venv's packages.

    The venv's own python may live under /root (0700: a pyenv build), which no other user can
    execute. So: a pip-less venv from the system's python of the same version, this venv's
    site-packages on a .pth, and the ansible entry points pointed at it.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    assert system, f"no system {version} for the unprivileged user (apt-get install {version})"
    venv = where / "venv"
    subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    packages = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "sovereign.pth").write_text("\n".join([*packages, str(REPO)]) + "\n")
    for tool in ("ansible-playbook", "ansible-inventory", "ansible-runner"):
        source = Path(sys.executable).parent / tool
        body = source.read_text().split("\n", 1)[1]
        (venv / "bin" / tool).write_text(f"#!{venv / 'bin' / 'python'}\n{body}")
        (venv / "bin" / tool).chmod(0o755)
    return venv / "bin" / "python"


def test_site_run_as_an_unprivileged_user_with_a_long_home(lab: NodeLab, scratch: Path) -> None:
    spec = lab.spec()
    assert spec is not None
    home = scratch / "home" / ("an-ordinary-user-with-a-long-home-" + "h" * 30)
    home.mkdir(parents=True)
    key, design, inventory_file = home / "id_ed25519", home / "known_hosts_design", home / "inventory.json"
    shutil.copy(spec.ssh_key, key)
    shutil.copy(spec.known_hosts, design)
    inventory_file.write_text(json.dumps(site_inventory(lab, key)))
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(home)], check=True)
    script = (
        "import json, pathlib, sys\n"
        "from lab.paths import state_root\n"
        "from tests.nodeconfig.test_ssh_access_lab import STACK, site_run\n"
        "home = pathlib.Path.home()\n"
        "state = state_root() / 'configure' / STACK / 'konza-1'\n"
        "inventory = json.loads((home / 'inventory.json').read_text())\n"
        "print(json.dumps(site_run(inventory, state, home / 'known_hosts_design')))\n"
    )
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
    proc = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-all", str(python_for_others(scratch)), "-c", script],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(proc.stdout.strip().splitlines()[-1])
    try:
        assert run["ok"], run
        assert run["control_dir"].startswith(f"/tmp/sovereign-{NOBODY}/")  # no XDG_RUNTIME_DIR: /tmp
        assert len(run["sockets"]) == 2
        state = home / ".local/state/sovereign/configure" / STACK / "konza-1"
        assert len(str(state)) + len("/cp/") + 40 + 17 > 107
        assert Path(run["control_dir"]).stat().st_uid == NOBODY
    finally:
        close_masters(Path(run["control_dir"]))
        shutil.rmtree(f"/tmp/sovereign-{NOBODY}", ignore_errors=True)

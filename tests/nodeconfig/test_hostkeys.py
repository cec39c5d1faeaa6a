"""Fast tier: which host keys a real-site run trusts, and how ssh's refusals read to people."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from nodeconfig import hostkeys
from nodeconfig.configure import plan_target
from stacks.design.loader import InputError

REPO = Path(__file__).resolve().parents[2]
# What OpenSSH 9 writes on stderr (Ansible puts it into an unreachable result's msg).
CHANGED_STDERR = (
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n"
    "Host key verification failed."
)
UNKNOWN_STDERR = (
    "No ED25519 host key is known for 10.0.0.17 and you have requested strict checking.\r\n"
    "Host key verification failed."
)


def effective(ssh_config: Path) -> dict[str, str]:
    """What ssh itself makes of the file (`ssh -G`), lower-case keys as ssh prints them."""
    out = subprocess.run(["ssh", "-G", "-F", str(ssh_config), "gpu-0001"], capture_output=True, text=True, check=True)
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def stack_with(tmp_path: Path, extra: dict) -> Path:
    data = yaml.safe_load((REPO / "countries" / "Pulumi.ke-staging.yaml").read_text())
    data["config"].update(extra)
    path = tmp_path / "Pulumi.ke-staging.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_site_ssh_config_trusts_the_design_and_first_contact_only(tmp_path: Path) -> None:
    design = tmp_path / "design_known_hosts"
    design.write_text("gpu-0001 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBjrQ2lXJ0lC0a1JkS1s7cE1m6mV6g2hJ0hYk5Q7k9x\n")
    config = effective(hostkeys.site_ssh_config("ke-staging", tmp_path / "state", design))
    assert config["userknownhostsfile"] == str(tmp_path / "state" / "known_hosts")
    assert config["globalknownhostsfile"] == str(design)  # not /etc/ssh/ssh_known_hosts
    assert config["stricthostkeychecking"] in ("true", "yes")
    assert config["batchmode"] == "yes"
    assert (tmp_path / "state" / "known_hosts").stat().st_mode & 0o077 == 0
    without = effective(hostkeys.site_ssh_config("ke-staging", tmp_path / "state", None))
    assert without["globalknownhostsfile"] == "/dev/null"


def test_ssh_refusals_are_classified_and_explained() -> None:
    assert hostkeys.verdict(f"Failed to connect to the host via ssh: {CHANGED_STDERR}") == hostkeys.CHANGED
    assert hostkeys.verdict(f"Failed to connect to the host via ssh: {UNKNOWN_STDERR}") == hostkeys.UNKNOWN
    assert hostkeys.verdict("Failed to connect to the host via ssh: Connection timed out") is None
    files = (Path("/site/known_hosts"), Path("/state/known_hosts"))
    changed = hostkeys.explain(hostkeys.CHANGED, "gpu-0001", "10.0.0.17", files)
    assert "host key of gpu-0001 (10.0.0.17) CHANGED" in changed and "run stopped" in changed
    assert "/site/known_hosts or /state/known_hosts" in changed
    assert "ssh-keygen -R 10.0.0.17 -f" in changed  # known_hosts lines are by the address ssh was given
    unknown = hostkeys.explain(hostkeys.UNKNOWN, "gpu-0001", None, files)
    assert "--accept-new-host-keys" in unknown and "sovereign:known_hosts" in unknown


def test_a_site_target_checks_keys_and_keeps_sockets_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOVEREIGN_STATE", str(tmp_path / ("long-state-" * 8)))
    design = tmp_path / "keys" / "ke-staging"
    design.parent.mkdir()
    design.write_text("")
    stack = stack_with(tmp_path, {"sovereign:known_hosts": "keys/ke-staging"})
    target = plan_target(str(stack), accept_new_host_keys=True)
    access = target.access
    assert not access.lab and access.accept_new_host_keys
    assert access.known_hosts == (design, target.state_dir / "known_hosts")
    assert len(access.control_path.replace("%C", "c" * 40)) + 17 <= 107
    assert effective(access.ssh_config)["globalknownhostsfile"] == str(design)


def test_a_missing_design_known_hosts_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOVEREIGN_STATE", str(tmp_path / "state"))
    stack = stack_with(tmp_path, {"sovereign:known_hosts": "keys/nowhere"})
    with pytest.raises(InputError, match=r"sovereign:known_hosts.*no such file"):
        plan_target(str(stack))
    result = CliRunner().invoke(cli, ["configure", str(stack), "--json"])
    assert result.exit_code == 2 and "config.sovereign:known_hosts" in result.output


def test_a_changed_key_stops_the_run_an_unknown_one_only_its_host(tmp_path: Path) -> None:
    import threading

    from nodeconfig.runner import _addresses, _collector
    from nodeconfig.settings import SshAccess

    access = SshAccess(tmp_path / "ssh_config", "/run/x/%C", (tmp_path / "known_hosts",))
    hosts: dict = {}
    stop: list[str] = []
    addresses = _addresses({"all": {"children": {"gpu": {"children": {"su01": {"hosts": {
        "gpu-0001": {"ansible_host": "10.0.0.17"}, "gpu-0002": {"ansible_host": "10.0.0.18"}}}}}}}})
    assert addresses == {"gpu-0001": "10.0.0.17", "gpu-0002": "10.0.0.18"}
    handle = _collector("su01", hosts, threading.Lock(), None, access, stop, addresses)

    def unreachable(host: str, stderr: str) -> dict:
        msg = f"Failed to connect to the host via ssh: {stderr}"
        data = {"host": host, "remote_addr": host, "task": "Gathering Facts", "res": {"msg": msg}}
        return {"event": "runner_on_unreachable", "event_data": data}

    handle(unreachable("gpu-0002", UNKNOWN_STDERR))
    assert not stop and "no known host key for gpu-0002 (10.0.0.18)" in hosts["gpu-0002"].messages[0]
    handle(unreachable("gpu-0001", CHANGED_STDERR))
    assert len(stop) == 1 and stop[0].startswith("host key of gpu-0001 (10.0.0.17) CHANGED")
    assert hosts["gpu-0001"].messages == [f"Gathering Facts: {stop[0]}"]

"""The run summary from ansible-runner events: failures, and nodes left waiting for a reboot."""

from __future__ import annotations

import threading
from pathlib import Path

from nodeconfig.configure import with_reboot
from nodeconfig.runner import REBOOT_FACT, HostResult, _collector
from nodeconfig.settings import SshAccess


def _ok(host: str, facts: dict) -> dict:
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": "t", "res": {"ansible_facts": facts}}}


def test_reboot_required_is_the_last_word_of_nvidia_host() -> None:
    hosts: dict[str, HostResult] = {}
    access = SshAccess(ssh_config=Path("/nonexistent/ssh_config"), control_path="/run/x/%C", known_hosts=(), lab=True)
    handle = _collector("su01", hosts, threading.Lock(), None, access, [], {})
    handle(_ok("gpu1", {REBOOT_FACT: True}))  # driver installed, not loaded
    handle(_ok("gpu2", {REBOOT_FACT: True}))
    handle(_ok("gpu2", {REBOOT_FACT: False}))  # then rebooted by the run
    handle(_ok("gpu3", {"other": True}))
    handle({"event": "runner_on_failed", "event_data": {"host": "gpu3", "task": "Install", "res": {"msg": "no mirror"}}})
    assert hosts["gpu1"].reboot_required and not hosts["gpu2"].reboot_required
    assert not hosts["gpu3"].reboot_required and hosts["gpu3"].messages == ["Install: no mirror"]


def test_no_reboot_reaches_the_role_through_the_inventory() -> None:
    inventory = {"all": {"vars": {"x": 1}, "children": {}}}
    assert with_reboot(inventory, False)["all"]["vars"] == {"x": 1, "nvidia_host_reboot": False}
    assert with_reboot(inventory, True)["all"]["vars"]["nvidia_host_reboot"] is True
    assert "nvidia_host_reboot" not in inventory["all"]["vars"]  # the target's inventory is left alone

from __future__ import annotations

from nodeconfig.acceptance import os_checks as oc


def test_sysctl_values_compare_by_words() -> None:
    observed = oc.parse_sysctl("net.ipv4.tcp_rmem = 4096\t87380\t134217728\nvm.max_map_count = 65530\n")
    (finding,) = oc.sysctl_findings(
        "sysctls", observed, {"net.ipv4.tcp_rmem": "4096 87380 134217728", "vm.max_map_count": 1048576, "fs.nope": 1}
    )
    assert not finding.ok
    assert finding.message == "fs.nope unreadable (want 1); vm.max_map_count = 65530 (want 1048576)"


def test_sysctl_all_as_designed() -> None:
    (finding,) = oc.sysctl_findings("sysctls", {"a.b": "1"}, {"a.b": 1})
    assert finding.ok and finding.message == "1 kernel settings as designed"


def test_lines_in_a_config_file() -> None:
    text = "# managed\n*  -  memlock  unlimited\nroot - nofile 1048576\n"
    ok = oc.lines_findings("limits", "/etc/x", text, ["* - memlock unlimited"])
    assert ok[0].ok
    bad = oc.lines_findings("limits", "/etc/x", text, ["* - nofile 1048576"])
    assert not bad[0].ok and "lacks: * - nofile 1048576" in bad[0].message
    assert oc.lines_findings("limits", "/etc/x", None, [])[0].message == "/etc/x is missing"


def test_systemd_properties() -> None:
    observed = oc.parse_properties("DefaultLimitMEMLOCK=infinity\nDefaultLimitNOFILE=524288\n")
    (finding,) = oc.properties_findings(
        "limits", observed, {"DefaultLimitMEMLOCK": "infinity", "DefaultLimitNOFILE": "1048576"}
    )
    assert not finding.ok and finding.message == "DefaultLimitNOFILE=524288 (want 1048576)"


SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


def test_swap_off_now_and_at_boot() -> None:
    fstab = "# /swapfile none swap sw 0 0  # swap off for kubelet\nUUID=1 / ext4 defaults 0 1\n"
    (finding,) = oc.swap_findings("swap", SWAPS_HEADER, fstab, "masked\n", None)
    assert finding.ok and finding.message.startswith("no swap in use")


def test_swap_on_or_coming_back_at_boot_fails() -> None:
    swaps = SWAPS_HEADER + "/swapfile                               file\t\t8388604\t\t0\t\t-2\n"
    fstab = "/swapfile none swap sw 0 0\n"
    (finding,) = oc.swap_findings("swap", swaps, fstab, "static\n", None)
    assert not finding.ok
    assert finding.message == (
        "swap is on: /swapfile; /etc/fstab swaps on at boot: /swapfile; swap.target is static (want masked)"
    )


def test_swap_of_the_host_is_not_a_containers_fault() -> None:
    swaps = SWAPS_HEADER + "/dev/sda2 partition 8388604 0 -2\n"
    (finding,) = oc.swap_findings("swap", swaps, "", "masked", "lxc")
    assert finding.ok and "lxc" in finding.message

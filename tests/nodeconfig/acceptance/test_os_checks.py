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

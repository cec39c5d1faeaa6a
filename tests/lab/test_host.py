"""Fast tier: mirror discovery, names and paths, host-wide claims, cgroup matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import host, lxc, mirror, paths
from lab.errors import LabInputError
from lab.registry import Claim, Registry

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_and_one_line_sources_are_parsed(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(DEB822)
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] https://mirror.example/debian bookworm main\n"
        "deb-src http://ignored/ bookworm main\n"
    )
    assert mirror.host_uris(tmp_path, one_line) == [
        "http://deb.debian.org/debian",
        "http://security.debian.org/debian-security",
        "https://mirror.example/debian",
    ]


def test_no_sources_falls_back_to_deb_debian_org(tmp_path: Path) -> None:
    assert mirror.host_uris(tmp_path / "none", tmp_path / "none.list") == [mirror.DEFAULT_URI]


def test_mirror_picks_the_archive_not_security_for_debootstrap() -> None:
    m = mirror.Mirror(
        ("http://security.debian.org/debian-security", "http://deb.debian.org/debian"),
        {"deb.debian.org": ("203.0.113.80",), "security.debian.org": ("203.0.113.81", "203.0.113.80")},
    )
    assert m.archive_uri == "http://deb.debian.org/debian"
    assert m.ips == ("203.0.113.80", "203.0.113.81")


@pytest.mark.parametrize("bad", ["", "Default", "1lab", "a" * 21, "lab_1", "lab-", "lab.x"])
def test_invalid_lab_names_are_rejected(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOVEREIGN_LAB", raising=False)
    if bad == "":
        assert paths.lab_name(bad) == "default"  # empty means "not given"
        return
    with pytest.raises(LabInputError, match="invalid lab name"):
        paths.lab_name(bad)


def test_lab_name_and_dirs_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOVEREIGN_LAB", "ci-2")
    monkeypatch.setenv("SOVEREIGN_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("SOVEREIGN_CACHE", str(tmp_path / "cache"))
    assert paths.lab_name() == "ci-2"
    assert paths.lab_name("x") == "x"
    assert paths.lab_dir("ci-2") == tmp_path / "state" / "lab" / "ci-2"
    assert paths.cache_root() == tmp_path / "cache"


def test_registry_drops_claims_whose_lab_dir_is_gone(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "run")
    live = tmp_path / "live"
    live.mkdir()
    with reg.lock():
        reg.put(Claim("live", str(live), 5))
        reg.put(Claim("gone", str(tmp_path / "gone"), 6))
    assert reg.claims() == [Claim("live", str(live), 5)]
    reg.release("live")
    assert reg.claims() == []


def test_missing_packages_maps_tools_to_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        host, "which", lambda tool: None if tool in ("ssh", "ssh-keygen", "lxc-start") else "/x"
    )
    assert host.missing_packages() == ["lxc", "openssh-client"]


def test_cgroup_leftovers_match_exact_names_and_lxc_suffixes(tmp_path: Path) -> None:
    for d in (
        "cpu/lxc.payload.ci-node1",
        "cpu/lxc.payload.ci-node1-1",
        "cpu/lxc.payload.ci-node10",
        "cpu/lxc.monitor.ci-node1",
        "unified/lxc.payload.ci-node1",
        "cpu/lxc.pivot",
        "cpu/lxc.payload.other-node1",
    ):
        (tmp_path / d).mkdir(parents=True)
    found = {str(p.relative_to(tmp_path)) for p in lxc.cgroup_leftovers(["ci-node1"], root=tmp_path)}
    assert found == {
        "cpu/lxc.payload.ci-node1",
        "cpu/lxc.payload.ci-node1-1",
        "cpu/lxc.monitor.ci-node1",
        "unified/lxc.payload.ci-node1",
    }
    with_pivot = lxc.cgroup_leftovers([], pivot=True, root=tmp_path)
    assert [p.name for p in with_pivot] == ["lxc.pivot"]


def test_a_cgroup_tree_with_a_task_is_never_removed(tmp_path: Path) -> None:
    busy = tmp_path / "lxc.payload.x"
    (busy / "system.slice").mkdir(parents=True)
    (busy / "cgroup.procs").write_text("")
    (busy / "system.slice" / "cgroup.procs").write_text("1234\n")
    assert lxc.remove_cgroups([busy]) == [busy]
    assert (busy / "system.slice").is_dir()


class FakeApt:
    """Records apt-get calls; `installs_after` says which install attempt makes the tools appear."""

    def __init__(self, installs_after: int | None) -> None:
        self.calls: list[str] = []
        self.installs_after = installs_after

    def run(self, cmd, **_kw):
        import subprocess

        verb = "update" if "update" in cmd else "install"
        self.calls.append(verb)
        ok = verb == "update" or self.calls.count("install") == self.installs_after
        return subprocess.CompletedProcess(
            cmd, 0 if ok else 100, "", "" if ok else "E: Unable to locate package lxc"
        )

    def which(self, tool: str) -> str | None:
        if tool == "apt-get":
            return "/usr/bin/apt-get"
        done = self.installs_after is not None and self.calls.count("install") >= self.installs_after
        return "/x" if done or tool != "lxc-start" else None


@pytest.mark.parametrize(
    ("lists", "installs_after", "expected"),
    [
        (True, 1, ["install"]),
        (False, 1, ["update", "install"]),
        (True, 2, ["install", "update", "install"]),  # stale lists: refresh once, retry
    ],
)
def test_host_packages_are_installed_when_missing(
    monkeypatch: pytest.MonkeyPatch, lists: bool, installs_after: int, expected: list[str]
) -> None:
    apt = FakeApt(installs_after)
    monkeypatch.setattr(host, "run", apt.run)
    monkeypatch.setattr(host, "which", apt.which)
    monkeypatch.setattr(host, "require_root", lambda: None)
    monkeypatch.setattr(host, "_apt_lists_present", lambda: lists)
    assert host.ensure_host_packages() == ["lxc"]
    assert apt.calls == expected


def test_host_packages_that_cannot_be_installed_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.errors import LabEnvironmentError

    apt = FakeApt(None)
    monkeypatch.setattr(host, "run", apt.run)
    monkeypatch.setattr(host, "which", apt.which)
    monkeypatch.setattr(host, "require_root", lambda: None)
    monkeypatch.setattr(host, "_apt_lists_present", lambda: True)
    with pytest.raises(LabEnvironmentError, match="could not install lxc: E: Unable to locate package lxc"):
        host.ensure_host_packages()

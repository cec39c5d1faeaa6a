"""The runner end to end on this machine: ansible-inventory, testinfra's ansible backend, one
pytest process per host, the reporting plugin and the merged report. The node under test is
this machine over local:// (no SSH needed) or an address where nothing answers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from nodeconfig.acceptance.burnin_checks import IB_CHECKS as BURNIN_IB_CHECKS
from nodeconfig.acceptance.expectations import ROLES
from nodeconfig.acceptance.gpu_checks import CHECKS as GPU_CHECKS
from nodeconfig.acceptance.ib_checks import CHECKS as IB_CHECKS
from nodeconfig.acceptance.report import VerifyReport
from nodeconfig.acceptance.run import CHECKS_DIR, VerifyInputError, match_hosts, select_roles, verify, verify_local

# The checks each module runs: the hardware findings, then the role's own.
IB_MODULE = [*IB_CHECKS, "rdma_packages", "fabric_interfaces", *BURNIN_IB_CHECKS]
GPU_MODULE = [*GPU_CHECKS, "nouveau_blacklisted", "host_services", "ecc_errors", "xid", "gpu_pcie", "nvlink", "pcie_acs"]

INVENTORY = {
    "all": {
        "children": {
            "gpu": {"hosts": {"gpu-a": None, "gpu-b": None}},
            "storage": {"hosts": {"stor-1": None}},
            "management": {"hosts": {"mgmt-1": None}},
        }
    }
}


def write_inventory(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_role_has_a_check_module() -> None:
    assert sorted(p.stem.removeprefix("test_") for p in CHECKS_DIR.glob("test_*.py")) == sorted(ROLES)


def test_match_hosts_by_group_host_and_wildcard(tmp_path: Path) -> None:
    from nodeconfig.acceptance.run import load_inventory

    inv = load_inventory(write_inventory(tmp_path, INVENTORY))
    assert match_hosts(inv, None) == ["gpu-a", "gpu-b", "mgmt-1", "stor-1"]
    assert match_hosts(inv, "gpu") == ["gpu-a", "gpu-b"]
    assert match_hosts(inv, "stor*,mgmt-1") == ["mgmt-1", "stor-1"]
    assert match_hosts(inv, "nothing") == []


def test_unknown_role_is_refused() -> None:
    with pytest.raises(VerifyInputError, match=r"unknown role.*gpu_magic.*known: baseline"):
        select_roles(["nvidia_host", "gpu_magic"])
    assert select_roles(["infiniband", "infiniband"]) == ["infiniband"]


def test_missing_inventory_and_empty_limit(tmp_path: Path) -> None:
    with pytest.raises(VerifyInputError, match="inventory not found"):
        verify(tmp_path / "absent.yml")
    with pytest.raises(VerifyInputError, match=r"no host .* matches 'nothing'"):
        verify(write_inventory(tmp_path, INVENTORY), limit="nothing")


def local_inventory(tmp_path: Path, **gpu_vars: object) -> Path:
    return write_inventory(
        tmp_path,
        {"all": {"children": {"gpu": {"hosts": {"here": {"ansible_connection": "local", **gpu_vars}}}}}},
    )


@pytest.fixture(scope="module")
def local_report(tmp_path_factory: pytest.TempPathFactory) -> VerifyReport:
    """One run over three names for this machine: a GPU node, a management node (which gets
    neither role) and a GPU node whose inventory holds an unreadable expectation."""
    local = {"ansible_connection": "local"}
    inventory = {
        "all": {
            "children": {
                "gpu": {"hosts": {"here": local, "bad": {**local, "nvidia_host_expected_gpu_count": "eight"}}},
                "management": {"hosts": {"mgmt": local}},
            }
        }
    }
    return verify(write_inventory(tmp_path_factory.mktemp("inv"), inventory), roles=["nvidia_host", "infiniband"])


def test_verify_local_node_through_the_ansible_backend(local_report: VerifyReport) -> None:
    rows = [r for r in local_report.rows if r.host == "here"]
    assert [r.check for r in rows] == [*IB_MODULE, *GPU_MODULE]  # sorted by role, defined order
    # Whether this machine has GPUs or HCAs decides pass or fail; that the checks ran does not.
    assert all(r.status in ("passed", "failed") and r.message for r in rows), local_report.to_json()


def test_roles_only_run_on_their_groups(local_report: VerifyReport) -> None:
    assert "mgmt" not in local_report.hosts


def test_unreadable_expectation_is_an_error_naming_the_variable(local_report: VerifyReport) -> None:
    rows = [r for r in local_report.rows if r.host == "bad" and r.role == "nvidia_host"]
    assert rows and {r.status for r in rows} == {"error"}
    assert "nvidia_host_expected_gpu_count = 'eight': expected a whole number" in rows[0].message


def test_nothing_checked_is_not_a_pass(tmp_path: Path) -> None:
    inv = write_inventory(
        tmp_path, {"all": {"children": {"management": {"hosts": {"m": {"ansible_connection": "local"}}}}}}
    )
    report = verify(inv, roles=["nvidia_host"])
    assert report.rows == () and not report.ok


def test_unreachable_host_is_an_error_not_a_failure(tmp_path: Path) -> None:
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        "Host *\n  BatchMode yes\n  ConnectTimeout 3\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
    )
    inv = write_inventory(
        tmp_path, {"all": {"children": {"gpu": {"hosts": {"ghost": {"ansible_host": "127.0.0.1", "ansible_port": 1}}}}}}
    )
    report = verify(inv, ssh_config=ssh_config, roles=["nvidia_host"])
    assert [r.check for r in report.rows] == GPU_MODULE
    assert {r.status for r in report.rows} == {"error"}
    assert all(r.message.startswith("Unreachable: cannot run commands on ghost") for r in report.rows), report.rows


def test_a_host_that_does_not_finish_in_time_is_an_error(tmp_path: Path) -> None:
    report = verify(local_inventory(tmp_path), roles=["nvidia_host"], timeout_s=0.01)
    (row,) = report.rows
    assert (row.host, row.status) == ("here", "error") and "did not finish within" in row.message


def test_verify_local_with_a_vars_file(tmp_path: Path) -> None:
    node = tmp_path / "node.yml"
    node.write_text(yaml.safe_dump({"group_names": ["storage"], "infiniband_expected_port_count": 0}))
    report = verify_local(node, roles=["infiniband", "nvidia_host"])  # nvidia_host: not a storage role
    assert {(r.host, r.role) for r in report.rows} == {("local", "infiniband")}
    assert [r.check for r in report.rows] == IB_MODULE


def test_burn_in_tier_runs_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The functional tier goes through the real probe: a `dcgmi` on PATH prints DCGM's JSON report
    (a recorded-format fixture with one failing GPU), and the check names that GPU."""
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "gpu" / "burnin" / "dcgm-diag-r3-fail.json"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dcgmi").write_text(f"#!/bin/sh\n[ \"$*\" = 'diag -r 3 -j' ] || exit 64\ncat {fixture}\n")
    (bin_dir / "dcgmi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    node = tmp_path / "node.yml"
    node.write_text(yaml.safe_dump({"group_names": ["gpu", "su01"], "nvidia_host_expected_gpu_count": 8}))
    quick = verify_local(node, roles=["nvidia_host"])
    assert [r.check for r in quick.rows] == GPU_MODULE  # the read-only checks, without the tier
    full = verify_local(node, roles=["nvidia_host"], burn_in=True)
    assert [r.check for r in full.rows] == [*GPU_MODULE, "dcgm_diag", "all_reduce_bw"]
    (diag,) = [r for r in full.rows if r.check == "dcgm_diag"]
    assert diag.status == "failed" and diag.message == "Hardware/GPU Memory GPU 3: Error using CUDA API cudaMalloc (2) [GPU 3]"
    # No nccl-tests on this machine, in operator mode (the role's default): pending, saying where it runs.
    (nccl,) = [r for r in full.rows if r.check == "all_reduce_bw"]
    assert nccl.status == "pending" and "run all_reduce_perf in a pod with the GPUs" in nccl.message
    # The site's build, named by the inventory: run through the real probe, judged against the floor.
    slow = Path(__file__).resolve().parents[2] / "fixtures" / "gpu" / "burnin" / "all-reduce-slow.txt"
    (bin_dir / "all_reduce_perf").write_text(f"#!/bin/sh\n[ \"$*\" = '-b 1G -e 8G -f 2 -g 8' ] || exit 64\ncat {slow}\n")
    (bin_dir / "all_reduce_perf").chmod(0o755)
    node.write_text(yaml.safe_dump({"group_names": ["gpu", "su01"], "nvidia_host_expected_gpu_count": 8,
                                    "nvidia_host_burnin_all_reduce_perf": str(bin_dir / "all_reduce_perf"),
                                    "nvidia_host_expected_all_reduce_gbytes_per_s": 360}))
    (nccl,) = [r for r in verify_local(node, roles=["nvidia_host"], burn_in=True).rows if r.check == "all_reduce_bw"]
    assert (nccl.status, nccl.message) == ("failed", "Avg bus bandwidth 292.973 GB/s, the platform expects at least 360 GB/s")

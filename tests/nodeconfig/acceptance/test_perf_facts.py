"""The functional tier's bandwidth tests (perf_facts, perf_checks) on fixtures shaped from nccl-tests'
and perftest's documented output and source (tests/fixtures/{gpu,ib}/burnin/README.md: not
recorded from hardware). The ib_write_bw loopback script itself runs here, in sh, against a
stand-in ib_write_bw that prints a fixture's client output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nodeconfig.acceptance import perf_facts as pf
from nodeconfig.acceptance.burnin_checks import BurnInExpectations
from nodeconfig.acceptance.expectations import ExpectationError, Vars, burnin_expectations
from nodeconfig.acceptance.gpu_checks import GpuExpectations
from nodeconfig.acceptance.ib_checks import IbExpectations
from nodeconfig.acceptance.perf_checks import all_reduce_findings_from, write_bw_findings_from, write_bw_plan
from nodeconfig.acceptance.probes import ProbeResult
from stacks.design.hcas import HCA_LAYOUTS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GPU = FIXTURES / "gpu" / "burnin"
IB = FIXTURES / "ib" / "burnin"
H100 = BurnInExpectations(all_reduce_gbytes=360.0, write_bw_gbps=360.0)
DGX_RAILS = ["mlx5_0", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_9", "mlx5_10", "mlx5_11"]
FABRIC = [f"{h}/1" for h in DGX_RAILS]
HOST = GpuExpectations(count=8)
PORTS = IbExpectations(port_count=8)


def text(path: Path) -> ProbeResult:
    return ProbeResult(0, path.read_text())


# --- all_reduce_perf ---


def test_all_reduce_output_parses_ranks_sizes_and_the_summary():
    run = pf.parse_all_reduce((GPU / "all-reduce-healthy.txt").read_text())
    assert run == pf.AllReduceRun(ranks=8, sizes=4, out_of_bounds=0, avg_busbw=445.321)
    assert pf.all_reduce_command("/opt/nccl-tests/build/all_reduce_perf", 8) == \
        "/opt/nccl-tests/build/all_reduce_perf -b 1G -e 8G -f 2 -g 8"


def test_a_healthy_node_clears_the_platform_floor():
    (finding,) = all_reduce_findings_from(text(GPU / "all-reduce-healthy.txt"), HOST, H100)
    assert finding.ok and finding.message == ("8 GPUs, 4 sizes of 1-8 GiB: Avg bus bandwidth 445.321 GB/s "
                                              "(the platform expects at least 360 GB/s), no wrong values")


def test_slow_wrong_short_and_aborted_runs_fail_saying_why():
    (slow,) = all_reduce_findings_from(text(GPU / "all-reduce-slow.txt"), HOST, H100)
    assert not slow.ok and slow.message == "Avg bus bandwidth 292.973 GB/s, the platform expects at least 360 GB/s"
    (wrong,) = all_reduce_findings_from(ProbeResult(1, (GPU / "all-reduce-wrong.txt").read_text()), HOST, H100)
    assert not wrong.ok and wrong.message == "3 wrong value(s): the reduction returned corrupted data"
    (short,) = all_reduce_findings_from(text(GPU / "all-reduce-healthy.txt"), GpuExpectations(count=16), H100)
    assert not short.ok and short.message == "ran on 8 GPU(s), the node has 16"
    (aborted,) = all_reduce_findings_from(ProbeResult(3, (GPU / "all-reduce-nccl-error.txt").read_text()), HOST, H100)
    assert not aborted.ok
    assert aborted.message == "all_reduce_perf did not finish (.. gpu-01 pid 4711: Test failure common.cu:891)"


def test_a_missing_all_reduce_perf_is_named_not_a_traceback():
    missing = ProbeResult(127, "", "sh: 1: all_reduce_perf: not found")
    expected = burnin_expectations(Vars({}))
    (finding,) = all_reduce_findings_from(missing, HOST, expected)
    assert not finding.ok and finding.message == (
        "all_reduce_perf is not installed (nccl-tests is not packaged: build it and name it in "
        "nvidia_host_burnin_all_reduce_perf)")
    (finding,) = all_reduce_findings_from(missing, GpuExpectations(count=8, driver_mode="operator"), expected)
    assert finding.pending and "GPU Operator" in finding.message
    (finding,) = all_reduce_findings_from(ProbeResult(0, ""), GpuExpectations(count=0), expected)
    assert finding.ok and finding.message == "no GPUs expected"


# --- ib_write_bw ---


def test_rails_in_pci_order_are_the_published_rails():
    """The pairing rule (HCA i beside GPU i, HCAs in PCI order) holds for every published port table."""
    for layout in HCA_LAYOUTS.values():
        by_pci = sorted(layout.compute(), key=lambda h: h.pci)
        assert [h.rail for h in by_pci] == list(range(len(by_pci)))


def test_the_ring_pairs_each_rail_with_the_next_one():
    addresses = pf.parse_hca_pci((IB / "hca-pci.out").read_text())
    assert addresses["mlx5_10"] == "0000:ce:00.0" and addresses["mlx5_2"] == "0000:29:00.1"
    pairs = pf.write_bw_pairs(addresses, DGX_RAILS, gpus=8, gpudirect=True)
    assert [p.label for p in pairs[:2]] == ["mlx5_0 (GPU 0) -> mlx5_3 (GPU 1)", "mlx5_3 (GPU 1) -> mlx5_4 (GPU 2)"]
    assert pairs[-1].label == "mlx5_11 (GPU 7) -> mlx5_0 (GPU 0)"
    assert [p.port for p in pairs] == list(range(18515, 18523))
    host_memory = pf.write_bw_pairs(addresses, DGX_RAILS[:2], gpus=8, gpudirect=False)
    assert [p.label for p in host_memory] == ["mlx5_0 (host memory) -> mlx5_3 (host memory)",
                                              "mlx5_3 (host memory) -> mlx5_0 (host memory)"]


def test_with_the_design_rail_table_storage_ports_stay_out_and_gpu_follows_the_rail():
    """DGX H100: ten InfiniBand HCAs (eight rails, two storage cards), the rails from the port table."""
    addresses = pf.parse_hca_pci((IB / "hca-pci.out").read_text())
    rails = {h.pci: h.rail for h in HCA_LAYOUTS["hgx-h100"].compute() if h.rail is not None}
    fabric = ["mlx5_0", "mlx5_1", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_7", "mlx5_9", "mlx5_10", "mlx5_11"]
    pairs = pf.write_bw_pairs(addresses, fabric, gpus=8, gpudirect=True, rails=rails)
    assert [(p.client_hca, p.client_gpu) for p in pairs] == [(h, i) for i, h in enumerate(DGX_RAILS)]
    assert pairs[4].label == "mlx5_6 (GPU 4) -> mlx5_9 (GPU 5)"
    # Without the table, PCI order would put the storage card's mlx5_1 (0000:29) second.
    assert [p.client_hca for p in pf.write_bw_pairs(addresses, fabric, 8, True)][:2] == ["mlx5_0", "mlx5_1"]
    one_rail = BurnInExpectations(rails={"0000:18:00.0": 0})
    plan = write_bw_plan(PORTS, HOST, one_rail, ["mlx5_0/1", "mlx5_1/1"], text(IB / "hca-pci.out"))
    assert plan.done and plan.done[0].pending and "fewer than two on the design's compute rails" in plan.done[0].message


def test_healthy_runs_pass_against_the_per_port_floor():
    plan = write_bw_plan(PORTS, HOST, H100, FABRIC, text(IB / "hca-pci.out"))
    assert len(plan.pairs) == 8 and "--use_cuda=0 --use_cuda_dmabuf" in plan.script
    (finding,) = write_bw_findings_from(text(IB / "write-bw-healthy.out"), plan, H100)
    assert finding.ok and finding.message == ("8 loopback runs over the fabric ports, GPUDirect RDMA (dmabuf): "
                                              "390.96-392.41 Gb/s average (the platform expects at least 360 Gb/s)")


def test_a_slow_port_and_a_failed_registration_are_named_by_hca_and_gpu():
    plan = write_bw_plan(PORTS, HOST, H100, FABRIC, text(IB / "hca-pci.out"))
    (finding,) = write_bw_findings_from(text(IB / "write-bw-degraded.out"), plan, H100)
    assert not finding.ok
    assert finding.message == (
        "mlx5_4 (GPU 2) -> mlx5_5 (GPU 3): 196.18 Gb/s, the platform expects at least 360 Gb/s; "
        "mlx5_9 (GPU 5) -> mlx5_10 (GPU 6): exit status 1: Couldn't create IB resources")


def test_perftest_without_cuda_is_told_apart():
    plan = write_bw_plan(PORTS, HOST, H100, FABRIC, text(IB / "hca-pci.out"))
    (finding,) = write_bw_findings_from(text(IB / "write-bw-no-cuda.out"), plan, H100)
    assert not finding.ok and finding.message.count("perftest built without CUDA") == 8


def test_mb_per_second_is_converted_from_mebibytes():
    lines = [" #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]",
             " 65536      5000             11725.32            11724.95\t\t   0.187599"]
    assert pf.write_bw_average(lines) == pytest.approx(11724.95 * 2**20 * 8 / 1e9)
    assert pf.write_bw_average(["Couldn't allocate MR"]) is None


@pytest.mark.parametrize(("ib", "gpu", "fabric", "status", "words"), [
    (IbExpectations(port_count=0), HOST, [], "passed", "no fabric ports expected"),
    (IbExpectations(port_count=1), GpuExpectations(count=0), ["mlx5_0/1"], "passed", "runs on GPU nodes"),
    (PORTS, GpuExpectations(count=8, driver_mode="operator"), FABRIC, "pending", "GPU Operator"),
    (IbExpectations(port_count=1), HOST, ["mlx5_0/1"], "pending", "the loopback run needs two"),
])
def test_what_cannot_run_says_why(ib, gpu, fabric, status, words):
    plan = write_bw_plan(ib, gpu, H100, fabric, text(IB / "hca-pci.out"))
    assert plan.script == ""
    (finding,) = write_bw_findings_from(ProbeResult(0, ""), plan, H100)
    assert ("pending" if finding.pending else "passed" if finding.ok else "failed") == status
    assert words in finding.message


def test_unreadable_sysfs_and_a_missing_tool_fail():
    plan = write_bw_plan(PORTS, HOST, H100, FABRIC, ProbeResult(0, "mlx5_0 /sys/devices/nowhere\n"))
    (finding,) = write_bw_findings_from(ProbeResult(0, ""), plan, H100)
    assert not finding.ok and "unreadable output" in finding.message
    plan = write_bw_plan(PORTS, HOST, burnin_expectations(Vars({})), FABRIC, text(IB / "hca-pci.out"))
    (finding,) = write_bw_findings_from(ProbeResult(127, "", "ib_write_bw: command not found"), plan, H100)
    assert not finding.ok and finding.message == "ib_write_bw is not installed (perftest; ib_write_bw names it)"


def test_gpudirect_is_read_from_the_role_and_checked():
    assert burnin_expectations(Vars({})).gpudirect == "dmabuf"  # nvidia_host's default
    assert burnin_expectations(Vars({"nvidia_host_gpudirect_rdma": "none"})).gpudirect == "none"
    with pytest.raises(ExpectationError, match="nvidia_host_gpudirect_rdma = 'magic'"):
        burnin_expectations(Vars({"nvidia_host_gpudirect_rdma": "magic"}))
    interfaces = [{"name": "ibp24s0", "pci": "0000:18:00.0", "rail": 0}, {"name": "ibp41s0f0", "pci": "0000:29:00.0"}]
    assert burnin_expectations(Vars({"infiniband_interfaces": interfaces})).rails == {"0000:18:00.0": 0}
    with pytest.raises(ExpectationError, match=r"infiniband_interfaces\[0\]\.rail = 'first'"):
        burnin_expectations(Vars({"infiniband_interfaces": [{"pci": "0000:18:00.0", "rail": "first"}]}))


def test_the_loopback_script_runs_in_sh_and_frames_each_pair(tmp_path):
    """Server in the background, client over localhost, per pair; a stand-in ib_write_bw answers as
    perftest's client does (the fixture's first run) and checks it was given the same options."""
    client = (IB / "write-bw-healthy.out").read_text().split("### exit 0")[0].split("\n", 1)[1]
    (tmp_path / "client.txt").write_text(client)
    fake = tmp_path / "ib_write_bw"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo \"$*\" >> {tmp_path}/calls\n"
        "case \"$*\" in *'-s 1048576 -D 5 -F --report_gbits'*) ;; *) exit 64;; esac\n"
        f"[ \"$(eval echo \\${{$#}})\" = localhost ] && cat {tmp_path}/client.txt\n"
        "exit 0\n")
    fake.chmod(0o755)
    pairs = pf.write_bw_pairs({"mlx5_0": "0000:18:00.0", "mlx5_3": "0000:40:00.0"}, ["mlx5_3", "mlx5_0"], 8, True)
    script = pf.write_bw_script(pairs, str(fake), dmabuf=False)
    done = subprocess.run(["sh", "-c", script], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    runs = pf.parse_write_bw_runs(done.stdout)
    assert [(r.label, r.rc, r.avg_gbps) for r in runs] == [
        ("mlx5_0 (GPU 0) -> mlx5_3 (GPU 1)", 0, 392.41), ("mlx5_3 (GPU 1) -> mlx5_0 (GPU 0)", 0, 392.41)]
    calls = sorted((tmp_path / "calls").read_text().splitlines())
    assert calls[0] == "-d mlx5_0 --use_cuda=0 -s 1048576 -D 5 -F --report_gbits -p 18515 localhost"
    assert "-d mlx5_3 --use_cuda=1 -s 1048576 -D 5 -F --report_gbits -p 18515" in calls
    missing = subprocess.run(["sh", "-c", pf.write_bw_script(pairs, str(tmp_path / "nowhere"), True)],
                             check=False, capture_output=True, text=True, timeout=30)
    assert missing.returncode == 127 and ProbeResult(missing.returncode, missing.stdout).missing

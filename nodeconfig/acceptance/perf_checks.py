"""The functional tier's bandwidth tests as findings from raw probe output (pure, like burnin_checks).

`all_reduce_findings_from(result, gpu, expected)`: nccl-tests all_reduce_perf on the node's GPUs.
`write_bw_plan(...)` decides what the ib_write_bw loopback runs (or why it cannot), and
`write_bw_findings_from(result, plan, expected)` judges what it printed. A missing tool is a failed
finding naming the variable that points at it; in operator mode, where CUDA lives in the GPU
Operator's containers rather than on the host, both are pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nodeconfig.acceptance import perf_facts as pf
from nodeconfig.acceptance.burnin_checks import BurnInExpectations
from nodeconfig.acceptance.burnin_facts import BurnInParseError
from nodeconfig.acceptance.findings import Finding, failed, passed, pending
from nodeconfig.acceptance.gpu_checks import GpuExpectations
from nodeconfig.acceptance.ib_checks import IbExpectations
from nodeconfig.acceptance.probes import ProbeResult

_OPERATOR = ("operator mode: CUDA is in the GPU Operator's driver container, not on the host; "
             "run {tool} in a pod with the GPUs{rdma}")


def _var(expected: BurnInExpectations, name: str) -> str:
    return expected.sources.get(name, name)


def _last_line(result: ProbeResult) -> str:
    for text in (result.stderr, result.stdout):
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        if lines:
            return lines[-1]
    return ""


def all_reduce_findings_from(result: ProbeResult, gpu: GpuExpectations, expected: BurnInExpectations) -> list[Finding]:
    if gpu.count == 0:
        return [passed(pf.ALL_REDUCE_CHECK, "no GPUs expected")]
    if result.missing:
        if gpu.driver_mode == "operator":
            return [pending(pf.ALL_REDUCE_CHECK, _OPERATOR.format(tool="all_reduce_perf", rdma=""))]
        return [failed(pf.ALL_REDUCE_CHECK, f"{expected.all_reduce_perf} is not installed (nccl-tests is not packaged: "
                                            f"build it and name it in {_var(expected, 'all_reduce_perf')})")]
    try:
        run = pf.parse_all_reduce(result.stdout)
    except BurnInParseError as exc:
        return [failed(pf.ALL_REDUCE_CHECK, f"unreadable output: {exc}")]
    return pf.all_reduce_findings(run, result.rc, gpu.count, expected.all_reduce_gbytes, _last_line(result))


@dataclass(frozen=True)
class WriteBwPlan:
    pairs: list[pf.WriteBwPair] = field(default_factory=list)
    script: str = ""
    mode: str = ""
    done: list[Finding] = field(default_factory=list)  # not empty: nothing to run, the outcome is known


def write_bw_plan(
    ib: IbExpectations,
    gpu: GpuExpectations,
    expected: BurnInExpectations,
    fabric_ports: list[str],
    hca_pci: ProbeResult,
) -> WriteBwPlan:
    """`fabric_ports`: `<hca>/<port>` of the design's fabric ports found on the node (mlx5 exposes one
    port per RDMA device, so the HCA names the port)."""
    check = pf.WRITE_BW_CHECK
    if ib.port_count == 0:
        return WriteBwPlan(done=[passed(check, "no fabric ports expected")])
    if gpu.count == 0:
        return WriteBwPlan(done=[passed(check, "no GPUs expected: the GPUDirect RDMA test runs on GPU nodes")])
    if gpu.driver_mode == "operator":
        return WriteBwPlan(done=[pending(check, _OPERATOR.format(tool="ib_write_bw --use_cuda", rdma=" and the HCAs"))])
    hcas = sorted({p.split("/", 1)[0] for p in fabric_ports})
    if len(hcas) < 2:
        shown = ", ".join(fabric_ports) or "none found"
        return WriteBwPlan(done=[pending(check, f"fabric ports: {shown}; the loopback run needs two "
                                                "(a peer on another node is not built)")])
    if hca_pci.rc != 0:
        return WriteBwPlan(done=[failed(check, f"cannot read the HCAs' PCI addresses: {_last_line(hca_pci) or hca_pci.rc}")])
    try:
        addresses = pf.parse_hca_pci(hca_pci.stdout)
    except BurnInParseError as exc:
        return WriteBwPlan(done=[failed(check, f"unreadable output: {exc}")])
    gpudirect = expected.gpudirect != "none"
    pairs = pf.write_bw_pairs(addresses, hcas, gpu.count, gpudirect, expected.rails)
    if not pairs:
        return WriteBwPlan(done=[pending(check, f"{len(hcas)} fabric HCAs but fewer than two on the design's compute "
                                                f"rails ({_var(expected, 'rails')}); the loopback run needs two")])
    mode = f"GPUDirect RDMA ({expected.gpudirect})" if gpudirect else \
        f"host memory ({_var(expected, 'gpudirect')} is none)"
    return WriteBwPlan(pairs, pf.write_bw_script(pairs, expected.ib_write_bw, expected.gpudirect == "dmabuf"), mode)


def write_bw_findings_from(result: ProbeResult, plan: WriteBwPlan, expected: BurnInExpectations) -> list[Finding]:
    if plan.done:
        return plan.done
    if result.missing:
        return [failed(pf.WRITE_BW_CHECK, f"{expected.ib_write_bw} is not installed (perftest; "
                                          f"{_var(expected, 'ib_write_bw')} names it)")]
    try:
        runs = pf.parse_write_bw_runs(result.stdout)
    except BurnInParseError as exc:
        return [failed(pf.WRITE_BW_CHECK, f"unreadable output: {exc}")]
    if not runs:
        return [failed(pf.WRITE_BW_CHECK, f"the loopback script printed no run: {_last_line(result) or result.rc}")]
    return pf.write_bw_findings(runs, len(plan.pairs), expected.write_bw_gbps, plan.mode)

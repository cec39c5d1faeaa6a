"""The functional burn-in's bandwidth tests (`verify --burn-in`): the commands, parsers of what the
tools print, and the judgement against the platform's floors (stacks/design/burnin_figures.py).
Pure: fixtures in tests/fixtures/{gpu,ib}/burnin/ are shaped from the tools' documented output and
source, not recorded from hardware.

nccl-tests `all_reduce_perf` (NVIDIA/nccl-tests README and src/common.cu): `-g <gpus>` runs one
process over all the node's GPUs; it prints `#  Rank  <r> Group ... device <d> [<bus>] <name>` per
GPU, one row per message size (size, count, type, redop, root, then time, algbw, busbw, #wrong
out of place and in place), `# Out of bounds values : <n> OK|FAILED` and
`# Avg bus bandwidth    : <GB/s>`, the mean bus bandwidth over the sizes run. Sizes 1-8 GiB
saturate NVLink, so the mean is a bandwidth and not a latency figure.

perftest `ib_write_bw` (linux-rdma/perftest README and perftest_parameters.h): server
`ib_write_bw <options>`, client `ib_write_bw <options> <server>`, the same options on both;
`--use_cuda=<gpu>` puts the buffer in GPU memory (GPUDirect RDMA; `--use_cuda_dmabuf` registers it
through DMA-BUF instead of nvidia-peermem); `--report_gbits` prints `BW average[Gb/sec]` (without
it, MB/sec of 2^20 bytes); the client measures, on one row under the
`#bytes #iterations BW peak[..] BW average[..] MsgRate[Mpps]` header.

Which peer: a loopback over the node's own compute rails. Rail i's HCA writes from GPU i's memory
to rail i+1's HCA and GPU i+1, in a ring, so each port sends once and receives once, through the
fabric's switches (rail i and rail i+1 sit on different leaves), with no other node involved —
verify runs each host on its own. The rails come from the design's port table (the inventory's
`infiniband_interfaces`: PCI address and rail; storage ports stay out); rail i beside GPU i is
NVIDIA's pairing on HGX boards (the DGX H100/H200 port table: GPU 0-7 = mlx5_0,3,4,5,6,9,10,11),
and `CUDA_DEVICE_ORDER=PCI_BUS_ID` numbers the GPUs as nvidia-smi does. Without a port table, the
fabric HCAs in PCI order stand for the rails (every published table lists its rails in PCI order).
A node with one rail has no loopback partner; a cross-node pair (the next node of the same SU) is
not built.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from nodeconfig.acceptance.burnin_facts import BurnInParseError
from nodeconfig.acceptance.findings import Finding, failed, passed

ALL_REDUCE_CHECK = "all_reduce_bw"
WRITE_BW_CHECK = "ib_write_bw"
ALL_REDUCE_SIZES = ("1G", "8G")  # -b/-e with -f 2: 1, 2, 4 and 8 GiB
WRITE_BW_MESSAGE = 1048576  # 1 MiB: past perftest's bandwidth knee
WRITE_BW_SECONDS = 5
WRITE_BW_BASE_PORT = 18515  # perftest's default; one port per pair so a lingering server never answers
HCA_PCI_PROBE = ('for d in /sys/class/infiniband/*; do [ -e "$d/device" ] && '
                 'echo "${d##*/} $(readlink -f "$d/device")"; done; true')

_RANK = re.compile(r"^#\s+Rank\s+\d+\b")
_ROW = re.compile(r"^\d+\s+\d+\s+\w+\s+\w+\s+-?\d+\s")  # size count type redop root ...
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*([0-9.eE+-]+)")
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)")
_BW_HEADER = re.compile(r"BW average\[(Gb/sec|MB/sec)\]")
_PAIR = re.compile(r"^### pair (\S+) gpu (\S+) -> (\S+) gpu (\S+)$")
_EXIT = re.compile(r"^### exit (\d+)$")
_BDF = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


# --- nccl-tests all_reduce_perf -------------------------------------------------------------


def all_reduce_command(tool: str, gpus: int) -> str:
    low, high = ALL_REDUCE_SIZES
    return f"{shlex.quote(tool)} -b {low} -e {high} -f 2 -g {gpus}"


@dataclass(frozen=True)
class AllReduceRun:
    ranks: int  # GPUs the run used ("# Using devices")
    sizes: int  # message sizes measured
    out_of_bounds: int | None  # wrong values; None: the run printed no summary
    avg_busbw: float | None  # GB/s; None: the run did not finish


def parse_all_reduce(text: str) -> AllReduceRun:
    ranks = sizes = 0
    out_of_bounds: int | None = None
    avg: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if _RANK.match(line):
            ranks += 1
        elif m := _OOB.match(line):
            out_of_bounds = int(m.group(1))
        elif m := _AVG.match(line):
            try:
                avg = float(m.group(1))
            except ValueError:
                raise BurnInParseError(f"'Avg bus bandwidth' is not a number: {line!r}") from None
        elif _ROW.match(line):
            sizes += 1  # other lines (NCCL's INFO/WARN, the host's own) are not the table's
    return AllReduceRun(ranks, sizes, out_of_bounds, avg)


def all_reduce_findings(run: AllReduceRun, rc: int, gpus: int, floor: float | None, last_line: str = "") -> list[Finding]:
    """Every GPU in the run, no wrong value, the mean bus bandwidth at the platform's floor."""
    if run.avg_busbw is None:
        why = last_line or f"exit status {rc}"
        return [failed(ALL_REDUCE_CHECK, f"all_reduce_perf did not finish ({why})")]
    problems = []
    if run.ranks != gpus:
        problems.append(f"ran on {run.ranks} GPU(s), the node has {gpus}")
    if run.out_of_bounds:
        problems.append(f"{run.out_of_bounds} wrong value(s): the reduction returned corrupted data")
    if floor is not None and run.avg_busbw < floor:
        problems.append(f"Avg bus bandwidth {run.avg_busbw:g} GB/s, the platform expects at least {floor:g} GB/s")
    if rc != 0 and not problems:
        problems.append(f"exit status {rc}")
    if problems:
        return [failed(ALL_REDUCE_CHECK, "; ".join(problems))]
    against = f"the platform expects at least {floor:g} GB/s" if floor is not None else "the design names no floor"
    return [passed(ALL_REDUCE_CHECK, f"{run.ranks} GPUs, {run.sizes} sizes of 1-8 GiB: Avg bus bandwidth "
                                     f"{run.avg_busbw:g} GB/s ({against}), no wrong values")]


# --- perftest ib_write_bw, GPU memory to GPU memory -------------------------------------------


@dataclass(frozen=True)
class WriteBwPair:
    client_hca: str
    client_gpu: int | None  # None: host memory (no GPU, or GPUDirect off by design)
    server_hca: str
    server_gpu: int | None
    port: int

    @property
    def label(self) -> str:
        return f"{_end(self.client_hca, self.client_gpu)} -> {_end(self.server_hca, self.server_gpu)}"


def _end(hca: str, gpu: int | None) -> str:
    return f"{hca} (GPU {gpu})" if gpu is not None else f"{hca} (host memory)"


def parse_hca_pci(text: str) -> dict[str, str]:
    """`<hca> <resolved device path>` lines (HCA_PCI_PROBE) -> HCA -> PCI address."""
    found = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        address = parts[-1].rstrip("/").rsplit("/", 1)[-1] if len(parts) == 2 else ""
        if not _BDF.match(address):
            raise BurnInParseError(f"expected '<hca> <sysfs device path>', got {line.strip()!r}")
        found[parts[0]] = address.lower()
    return found


def write_bw_pairs(
    hca_pci: dict[str, str], fabric_hcas: list[str], gpus: int, gpudirect: bool, rails: dict[str, int] | None = None
) -> list[WriteBwPair]:
    """The ring over the compute rails: with the design's rail table (`rails`: PCI address -> rail),
    its rails in order, rail r beside GPU r, other ports (storage) left out; without one, every
    fabric HCA in PCI order, the i-th beside GPU i (see the module's docstring)."""
    if rails:
        on_rails = [h for h in fabric_hcas if hca_pci.get(h) in rails]
        ordered = sorted(on_rails, key=lambda h: (rails[hca_pci[h]], h))
        slots = [rails[hca_pci[h]] for h in ordered]
    else:
        ordered = sorted(fabric_hcas, key=lambda h: (hca_pci.get(h, "~"), h))
        slots = list(range(len(ordered)))
    if len(ordered) < 2:
        return []

    def gpu(i: int) -> int | None:
        return slots[i] % gpus if gpudirect and gpus else None

    return [
        WriteBwPair(hca, gpu(i), ordered[(i + 1) % len(ordered)], gpu((i + 1) % len(ordered)), WRITE_BW_BASE_PORT + i)
        for i, hca in enumerate(ordered)
    ]


def write_bw_script(pairs: list[WriteBwPair], tool: str, dmabuf: bool) -> str:
    """One POSIX sh script: each pair's server in the background, then its client over localhost;
    `### pair` / `### exit` lines frame each client's output for parse_write_bw_runs."""
    exe = shlex.quote(tool)
    common = f"-s {WRITE_BW_MESSAGE} -D {WRITE_BW_SECONDS} -F --report_gbits"
    lines = [f"command -v {exe} >/dev/null 2>&1 || {{ echo '{tool}: command not found' >&2; exit 127; }}",
             "export CUDA_DEVICE_ORDER=PCI_BUS_ID"]

    def side(hca: str, gpu: int | None, port: int) -> str:
        cuda = f" --use_cuda={gpu}" + (" --use_cuda_dmabuf" if dmabuf else "") if gpu is not None else ""
        return f"timeout 120 {exe} -d {shlex.quote(hca)}{cuda} {common} -p {port}"

    for p in pairs:
        lines += [
            f"echo '### pair {p.client_hca} gpu {_gpu_text(p.client_gpu)} -> {p.server_hca} gpu {_gpu_text(p.server_gpu)}'",
            f"{side(p.server_hca, p.server_gpu, p.port)} >/dev/null 2>&1 &",
            "sleep 2",
            f"{side(p.client_hca, p.client_gpu, p.port)} localhost 2>&1",
            "echo \"### exit $?\"",
            "wait",
        ]
    return "\n".join(lines) + "\n"


def _gpu_text(gpu: int | None) -> str:
    return "host" if gpu is None else str(gpu)


@dataclass(frozen=True)
class WriteBwRun:
    label: str
    rc: int | None  # None: the output ended before the client's exit line
    avg_gbps: float | None
    last_line: str  # the client's last words, for a failure message
    output: str = field(default="", compare=False, repr=False)


def parse_write_bw_runs(text: str) -> list[WriteBwRun]:
    runs: list[WriteBwRun] = []
    label: str | None = None
    body: list[str] = []

    def close(rc: int | None) -> None:
        assert label is not None
        last = next((b.strip() for b in reversed(body) if b.strip()), "")
        runs.append(WriteBwRun(label, rc, write_bw_average(body), last, "\n".join(body)))

    for line in text.splitlines():
        if m := _PAIR.match(line.strip()):
            if label is not None:
                close(None)
            label = f"{_end(m.group(1), _gpu(m.group(2)))} -> {_end(m.group(3), _gpu(m.group(4)))}"
            body = []
        elif m := _EXIT.match(line.strip()):
            if label is None:
                raise BurnInParseError("'### exit' before any '### pair' line")
            close(int(m.group(1)))
            label = None
        elif label is not None:
            body.append(line)
    if label is not None:
        close(None)
    return runs


def _gpu(text: str) -> int | None:
    return None if text == "host" else int(text)


def write_bw_average(lines: list[str]) -> float | None:
    """`BW average` of the result row, in Gb/s; None when the client printed no result."""
    unit: str | None = None
    for line in lines:
        header = _BW_HEADER.search(line)
        if header:
            unit = header.group(1)
            continue
        cells = line.split()
        if unit and len(cells) >= 4 and cells[0].isdigit() and cells[1].isdigit():
            try:
                value = float(cells[3])
            except ValueError:
                raise BurnInParseError(f"ib_write_bw result row {line.strip()!r}: BW average is not a number") from None
            # MB/sec in perftest is 2^20 bytes per second (format_factor 0x100000).
            return value if unit == "Gb/sec" else value * 2**20 * 8 / 1e9
    return None


def write_bw_findings(runs: list[WriteBwRun], expected_pairs: int, floor: float | None, mode: str) -> list[Finding]:
    """Every pair ran and averaged at least the platform's per-port floor."""
    if not runs:
        return [failed(WRITE_BW_CHECK, "ib_write_bw produced no run")]
    problems = []
    for run in runs:
        if run.avg_gbps is None:
            problems.append(f"{run.label}: {_why(run)}")
        elif floor is not None and run.avg_gbps < floor:
            problems.append(f"{run.label}: {run.avg_gbps:.2f} Gb/s, the platform expects at least {floor:g} Gb/s")
    if len(runs) < expected_pairs:
        problems.append(f"{len(runs)} of {expected_pairs} runs reported (the script stopped early)")
    if problems:
        return [failed(WRITE_BW_CHECK, "; ".join(problems))]
    speeds = [r.avg_gbps for r in runs if r.avg_gbps is not None]
    against = f"the platform expects at least {floor:g} Gb/s" if floor is not None else "the design names no floor"
    return [passed(WRITE_BW_CHECK, f"{len(runs)} loopback runs over the fabric ports, {mode}: "
                                   f"{min(speeds):.2f}-{max(speeds):.2f} Gb/s average ({against})")]


def _why(run: WriteBwRun) -> str:
    text = run.last_line
    if re.search(r"(unrecognized|invalid) option.*use_cuda", run.output):
        return ("this ib_write_bw does not accept --use_cuda: perftest built without CUDA "
                "(GPUDirect needs perftest configured with CUDA_H_PATH)")
    if run.rc is None:
        return f"no result, the output ends with {text!r}" if text else "no result"
    return f"exit status {run.rc}" + (f": {text}" if text else "")

"""What the burn-in's functional tier must measure on each catalog platform, each figure with its source.

Two measurements (`sovereign verify --burn-in`, nodeconfig/acceptance/perf_facts.py):
- nccl-tests `all_reduce_perf` on one node's GPUs: its "Avg bus bandwidth" (GB/s). Bus bandwidth
  is nccl-tests' hardware-comparable figure (doc/PERFORMANCE.md: algorithm bandwidth times
  2(n-1)/n for all-reduce), so it is judged against the per-direction NVLink bandwidth of one GPU,
  which NVIDIA publishes as a bidirectional total per GPU;
- perftest `ib_write_bw` from GPU memory (GPUDirect RDMA) through one fabric port: its average
  (Gb/s), judged against the port's line rate from the catalog's fabric.

NVIDIA publishes the links' rates, not burn-in thresholds, so the floors are estimates, labelled
so: a fraction of the published rate that a healthy system clears with margin (protocol overhead,
message sizes that do not saturate), and that a degraded one (a link trained lower, an NVLink
down, GPUDirect falling back through host memory) does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.design.catalog import PLATFORMS, Figure, Platform

# NVLink bandwidth per GPU, both directions together, as NVIDIA's datasheets state it.
NVLINK_GBYTES: dict[str, Figure] = {
    "hgx-h100": Figure(900, "NVIDIA H100 Tensor Core GPU datasheet: NVLink 900 GB/s (H100 SXM)"),
    "hgx-h100-roce": Figure(900, "NVIDIA H100 Tensor Core GPU datasheet: NVLink 900 GB/s (H100 SXM)"),
    "hgx-h200": Figure(900, "NVIDIA H200 Tensor Core GPU datasheet: NVLink 900 GB/s (H200 SXM)"),
    "hgx-b200": Figure(1800, "NVIDIA HGX B200 datasheet: fifth-generation NVLink, 1.8 TB/s per GPU"),
    "gb200-nvl72": Figure(1800, "NVIDIA GB200 NVL72 datasheet: NVLink 5, 1.8 TB/s GPU-to-GPU per GPU"),
    "gb300-nvl72": Figure(1800, "NVIDIA GB300 NVL72 datasheet: NVLink 5, 1.8 TB/s GPU-to-GPU per GPU"),
}
# Fractions of the published rate the floors take (estimates, see the module's docstring).
ALL_REDUCE_FRACTION = Figure(
    0.8, "estimate: nccl-tests all-reduce bus bandwidth at 1-8 GiB on a healthy NVSwitch node exceeds "
         "80% of one direction of NVLink (NVLink SHARP can exceed 100%); a GPU with a link down falls well below")
WRITE_BW_FRACTION = Figure(
    0.9, "estimate: perftest RDMA-write averages at 1 MiB messages reach line rate less protocol overhead; "
         "GPUDirect through a PCIe switch at full width keeps above 90%")


@dataclass(frozen=True, slots=True)
class BurnInFigures:
    all_reduce_busbw_gbytes: Figure  # floor for all_reduce_perf's "Avg bus bandwidth", GB/s
    write_bw_gbps: Figure  # floor for ib_write_bw's average per fabric port, Gb/s


def burnin_figures(platform: Platform) -> BurnInFigures:
    """The floors for `platform`; KeyError for a platform without a published NVLink figure."""
    nvlink = NVLINK_GBYTES[platform.key]
    per_direction = nvlink.value / 2
    fabric = platform.fabric
    return BurnInFigures(
        all_reduce_busbw_gbytes=Figure(
            round(per_direction * ALL_REDUCE_FRACTION.value, 1),
            f"{ALL_REDUCE_FRACTION.value:.0%} of {per_direction:g} GB/s per direction ({nvlink.source}); "
            f"{ALL_REDUCE_FRACTION.source}",
        ),
        write_bw_gbps=Figure(
            round(fabric.link_gbps * WRITE_BW_FRACTION.value, 1),
            f"{WRITE_BW_FRACTION.value:.0%} of the {fabric.link_gbps} Gb/s port ({fabric.source}); "
            f"{WRITE_BW_FRACTION.source}",
        ),
    )


def all_burnin_figures() -> dict[str, BurnInFigures]:
    return {key: burnin_figures(platform) for key, platform in PLATFORMS.items()}

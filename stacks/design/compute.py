"""Published peak compute per GPU, for the report's executive summary (PFLOPS, dense FP8).

Dense (without sparsity) FP8 tensor throughput, as the vendors publish it; reports state the
precision beside the figure, since a ministry comparing offers must compare like with like.
Where a page publishes sparse figures only, the dense figure is half of it, as NVIDIA defines it.
"""

from __future__ import annotations

from stacks.design.catalog import Figure

PFLOPS_FP8_DENSE: dict[str, Figure] = {
    "hgx-h100": Figure(1.979, "NVIDIA H100 Tensor Core GPU datasheet: FP8 3,958 TFLOPS with sparsity (SXM)"),
    "hgx-h100-roce": Figure(1.979, "NVIDIA H100 Tensor Core GPU datasheet: FP8 3,958 TFLOPS with sparsity (SXM)"),
    "hgx-h200": Figure(1.979, "NVIDIA H200 Tensor Core GPU datasheet: FP8 3,958 TFLOPS with sparsity (SXM)"),
    "hgx-b200": Figure(4.5, "NVIDIA DGX B200 datasheet: 72 PFLOPS FP8 training for 8 GPUs (with sparsity)"),
    "gb200-nvl72": Figure(5.0, "NVIDIA GB200 NVL72 product page: 720 PFLOPS FP8 per 72-GPU rack (with sparsity)"),
    "gb300-nvl72": Figure(5.0, "NVIDIA GB300 NVL72 product page: 720 PFLOPS FP8 per 72-GPU rack (with sparsity)"),
}


def pflops(platform: str, gpus: int) -> float:
    return PFLOPS_FP8_DENSE[platform].value * gpus

"""The functional burn-in's floors per catalog platform: derived from NVIDIA's published link rates,
each with its source, the thresholds labelled as estimates."""

from __future__ import annotations

import pytest

from stacks.design.burnin_figures import NVLINK_GBYTES, all_burnin_figures, burnin_figures
from stacks.design.catalog import PLATFORMS


def test_every_catalog_platform_has_floors_with_sources():
    assert set(NVLINK_GBYTES) == set(PLATFORMS)
    for key, figures in all_burnin_figures().items():
        for figure in (figures.all_reduce_busbw_gbytes, figures.write_bw_gbps):
            assert figure.value > 0, key
            assert "NVIDIA" in figure.source or "InfiniBand" in figure.source or "RoCE" in figure.source, key
            assert "estimate:" in figure.source, key  # NVIDIA publishes rates, not burn-in thresholds


@pytest.mark.parametrize(("key", "all_reduce", "write_bw"), [
    ("hgx-h100", 360.0, 360.0),  # 80% of 450 GB/s per direction; 90% of NDR 400 Gb/s
    ("hgx-b200", 720.0, 360.0),
    ("gb300-nvl72", 720.0, 720.0),  # ConnectX-8 at 800 Gb/s
])
def test_floors_follow_the_published_rates(key, all_reduce, write_bw):
    figures = burnin_figures(PLATFORMS[key])
    assert (figures.all_reduce_busbw_gbytes.value, figures.write_bw_gbps.value) == (all_reduce, write_bw)
    assert f"{PLATFORMS[key].fabric.link_gbps} Gb/s port" in figures.write_bw_gbps.source

"""Burn-in parsers and judgements on fixtures written from NVIDIA's documented formats
(tests/fixtures/gpu/burnin/README.md: not recorded from hardware)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeconfig.acceptance import burnin_facts as bf

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gpu" / "burnin"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_healthy_ecc_passes_and_counts_corrected_errors() -> None:
    states = bf.parse_ecc(text("ecc-healthy.csv"))
    assert len(states) == 8 and states[1].corrected_aggregate == 12 and states[0].remap_pending is False
    (finding,) = bf.ecc_findings(states)
    assert finding.ok and "(3 corrected since boot)" in finding.message


def test_uncorrected_errors_and_row_remaps_fail_naming_each_gpu() -> None:
    (finding,) = bf.ecc_findings(bf.parse_ecc(text("ecc-degraded.csv")))
    assert not finding.ok
    assert finding.message == (
        "00000000:2A:00.0: 2 uncorrected ECC error(s) since boot; 00000000:3A:00.0: row remap pending (reset the GPU); "
        "00000000:5D:00.0: row remap failed (replace the GPU)"
    )


def test_na_fields_mean_not_reported_and_garbage_is_an_error() -> None:
    (state,) = bf.parse_ecc("00000000:18:00.0, [N/A], [N/A], [N/A], [N/A], [N/A], [N/A]\n")
    assert state.uncorrected_volatile is None and state.remap_failed is None
    with pytest.raises(bf.BurnInParseError, match="expected a count"):
        bf.parse_ecc("00000000:18:00.0, many, 0, 0, 0, No, No\n")
    with pytest.raises(bf.BurnInParseError, match="3 fields, expected 7"):
        bf.parse_ecc("00000000:18:00.0, 0, 0\n")


def test_pcie_width_must_be_full_generation_may_idle() -> None:
    links = bf.parse_pcie(text("pcie-degraded.csv"))
    (finding,) = bf.pcie_findings(links, expected_gen=5, expected_width=16)
    assert not finding.ok and finding.message == "00000000:2A:00.0: x8 of x16"
    (fine,) = bf.pcie_findings([links[0], links[2]], expected_gen=5, expected_width=16)
    assert fine.ok  # gen 1 at idle is power saving, not a fault
    (old,) = bf.pcie_findings([links[0]], expected_gen=6, expected_width=16)
    assert not old.ok and "platform expects Gen6" in old.message


def test_fatal_xids_fail_others_are_reported() -> None:
    xids = bf.parse_xids(text("xid-journal.txt"))
    assert [(x.bus, x.code) for x in xids] == [("0000:2a:00", 13), ("0000:5d:00", 79)]  # SXid lines are NVSwitch's
    (finding,) = bf.xid_findings(xids)
    assert not finding.ok
    assert finding.message == "0000:5d:00: Xid 79 (pid='<unknown>', name=<unknown>, GPU has fallen off the bus.)"
    (benign,) = bf.xid_findings(xids[:1])
    assert benign.ok and "codes 13" in benign.message
    assert bf.xid_findings([])[0].message == "no Xid errors since boot"

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from stacks.design.project import PROJECT_ENV

REPO = Path(__file__).resolve().parent.parent


def _greenfield() -> dict:
    return {
        "schema_version": 1,
        "name": "Testland AI Compute",
        "country": "KE",
        "languages": ["sw", "en"],
        "currency": "KES",
        "usd_rate": 129.0,
        "operating_authority": "Ministry of ICT",
        "mode": "greenfield",
        "funding": [
            {"party": "Government", "kind": "government", "share": 0.6},
            {"party": "Partner", "kind": "partner", "share": 0.4},
        ],
        "sovereignty": {
            "data_residency": ["KE"],
            "registries": [{"upstream": "nvcr.io", "mirror": "https://mirror.example.ke/nvcr"}],
        },
        "sites": [
            {
                "name": "site-a",
                "city": "Nairobi",
                "region": "Nairobi County",
                "power_budget_mw": 20,
                "pue": 1.3,
                "cooling": "air",
                "max_rack_kw": 45,
                "networks": {"data": "10.10.0.0/16", "storage": "10.11.0.0/16", "oob": "10.12.0.0/16"},
                "capacity": {"platform": "hgx-h100", "gpus": 1024},
            }
        ],
    }


@pytest.fixture(autouse=True)
def _project_choice_stays_in_its_test():
    """`--project DIR` sets $SOVEREIGN_PROJECT for the process (so subprocesses see it); under
    CliRunner that process is pytest's, so undo it after every test."""
    saved = os.environ.get(PROJECT_ENV)
    yield
    if saved is None:
        os.environ.pop(PROJECT_ENV, None)
    else:
        os.environ[PROJECT_ENV] = saved


@pytest.fixture
def partnership_dict() -> dict:
    return copy.deepcopy(_greenfield())


@pytest.fixture
def write_stack(tmp_path):
    """Write a partnership as a stack config file and return its path."""

    def write(data: dict, name: str = "Pulumi.tl-staging.yaml", raw: str | None = None) -> Path:
        path = tmp_path / name
        text = raw if raw is not None else yaml.safe_dump({"config": {"sovereign:partnership": data}}, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write

"""The policy pack's configuration for one stack, from its partnership (stacks/policy_pack/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import stacks
from stacks.design.atomic import write_file
from stacks.design.charts import allowed_image_prefixes
from stacks.design.partnership import Partnership

PACK_DIR = Path(stacks.__file__).resolve().parent / "policy_pack"


def policy_config(partnership: Partnership, chart_repository: str | None) -> dict[str, Any]:
    sov = partnership.sovereignty
    return {
        "images-from-mirrors": {"prefixes": allowed_image_prefixes(sov)},
        "charts-from-mirror": {"repository": chart_repository or sov.chart_mirror or ""},
        # A site lies in the partnership's country: the schema has no per-site country.
        "data-residency": {"residency": sov.data_residency,
                           "sites": [{"name": s.name, "country": partnership.country} for s in partnership.sites]},
    }


def write_policy_config(partnership: Partnership, chart_repository: str | None, directory: Path) -> Path:
    """The configuration as a JSON file for `--policy-pack-config`."""
    target = directory / "policy-config.json"
    write_file(target, json.dumps(policy_config(partnership, chart_repository), indent=2))
    return target

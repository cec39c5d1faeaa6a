"""Hypothesis strategies shared by the model's properties and the CLI fuzz."""

from __future__ import annotations

from hypothesis import strategies as st

from stacks.design.catalog import PLATFORMS


@st.composite
def partnerships(draw):
    sites = []
    for i in range(draw(st.integers(1, 3))):
        platform = draw(st.sampled_from(sorted(PLATFORMS)))
        liquid = PLATFORMS[platform].liquid_cooled or draw(st.booleans())
        prefix = draw(st.integers(16, 22))
        sites.append(
            {
                "name": f"site-{i}",
                "city": "City",
                "region": "Region",
                "power_budget_mw": draw(st.floats(0.5, 400)),
                "pue": draw(st.floats(1.05, 2.0)),
                "cooling": "liquid" if liquid else "air",
                "max_rack_kw": draw(st.floats(20, 160)),
                "networks": {
                    "data": f"10.{i * 3}.0.0/{prefix}",
                    "storage": f"10.{i * 3 + 1}.0.0/{prefix}",
                    "oob": f"10.{i * 3 + 2}.0.0/{prefix}",
                },
                "capacity": {"platform": platform, "gpus": draw(st.integers(1, 120_000))},
            }
        )
    share = draw(st.floats(0.05, 1.0))
    funding = [{"party": "Gov", "kind": "government", "share": share}]
    if share < 1.0:
        funding.append({"party": "Partner", "kind": "partner", "share": 1.0 - share})
    return {
        "schema_version": 1, "name": "T", "country": "BR", "languages": ["pt"], "currency": "BRL",
        "operating_authority": "MCTI", "mode": "greenfield", "funding": funding,
        "sovereignty": {"data_residency": ["BR"]}, "sites": sites,
    }


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)

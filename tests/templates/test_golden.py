"""Golden files for the stack config templates, and the promise every starter keeps: it validates.

Run with UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate template change, then
review the diff like any other change to a reviewed document.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pycountry
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stacks.design.loader import CONFIG_KEY, parse
from stacks.design.partnership import Partnership
from stacks.design.sizing import design
from stacks.design.starter import (
    TEMPLATES_DIR,
    build_starter,
    environment,
    render,
    render_stack_config,
)

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "greenfield-ke-staging": ("KE", "greenfield", "staging", ("konza-1",)),
    "expand-de-staging": ("DE", "expand", "staging", ()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden_file(case):
    text = render_stack_config(build_starter(*CASES[case]))
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}; run with UPDATE_GOLDEN=1 to write it"
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_file_validates_and_sizes(case):
    starter = build_starter(*CASES[case])
    partnership = parse(render_stack_config(starter), f"{case}.yaml")
    assert partnership == starter.partnership  # the template writes exactly the model it was given
    assert design(partnership).gpus > 0


def _validate_fast(text: str) -> Partnership:
    # loader.parse's pure-Python YAML passes cost ~0.1 s a file; libyaml reads the same YAML 1.1
    # (same resolvers: `NO` is still a boolean), so the broad sweeps below use it.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Partnership.model_validate(yaml.load(text, Loader=loader)["config"][CONFIG_KEY])


@pytest.mark.parametrize("template", ["greenfield", "expand"])
def test_every_country_gets_a_starter_that_validates(template):
    # Country names and CLDR data are where YAML surprises hide: "NO" (Norway) reads as false,
    # "Bonaire, Sint Eustatius and Saba" splits a flow mapping.
    for country in pycountry.countries:
        starter = build_starter(country.alpha_2, template)
        partnership = _validate_fast(render_stack_config(starter))
        assert partnership == starter.partnership, country.alpha_2
        design(partnership)


@settings(max_examples=30, deadline=None)
@given(
    template=st.sampled_from(["greenfield", "expand"]),
    env=st.from_regex(r"\A[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,5})?\Z"),
    sites=st.lists(st.from_regex(r"\A[a-z][a-z0-9-]{0,12}[a-z0-9]\Z"), unique=True, max_size=8),
)
def test_any_sites_and_env_render_a_valid_file(template, env, sites):
    starter = build_starter("BR", template, env, sites)
    partnership = _validate_fast(render_stack_config(starter))
    assert partnership == starter.partnership
    design(partnership)


def test_variants_ask_for_their_own_inputs():
    greenfield = render_stack_config(build_starter(*CASES["greenfield-ke-staging"]))
    expand = render_stack_config(build_starter(*CASES["expand-de-staging"]))
    assert "power envelope from the utility agreement" in greenfield
    assert "existing:" not in greenfield
    for ask in ("racks in use", "GPUs already installed", "API endpoint", "holding its kubeconfig"):
        assert ask in expand
    for shared in ("registry mirror", "funding party", "NTP servers", "CIDRs"):
        assert shared in greenfield and shared in expand


def test_variants_extend_the_base_instead_of_copying_it():
    for variant in ("greenfield", "expand"):
        source = (TEMPLATES_DIR / variant / "stack.yaml.j2").read_text(encoding="utf-8")
        assert '{% extends "base/stack.yaml.j2" %}' in source
        assert "sovereign:partnership" not in source and "registries" not in source


def test_a_country_without_cldr_data_gets_fill_in_fallbacks():
    text = render_stack_config(build_starter("AQ", "greenfield"))  # Antarctica: no languages, no currency
    assert "languages: [en]  # FILL IN" in text
    assert "currency: USD  # FILL IN" in text


def test_a_missing_template_variable_raises():
    starter = build_starter(*CASES["greenfield-ke-staging"])
    incomplete = SimpleNamespace(partnership=starter.partnership, stack=starter.stack, mode=starter.mode)
    with pytest.raises(jinja2.UndefinedError, match="country_name"):
        render("greenfield/stack.yaml.j2", incomplete)


def test_the_yaml_filter_does_not_swallow_undefined_values():
    with pytest.raises(jinja2.UndefinedError, match="missing"):
        environment().from_string("{{ missing|yaml }}").render()

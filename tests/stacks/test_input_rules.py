"""Regressions for the input classes of issue 7: YAML 1.2, strict types, every problem at its
own line, honest numbers and messages. Each test fails on the code before the fix."""

from __future__ import annotations

import copy
import re
import time

import pytest
import yaml

from stacks.design import yamldoc
from stacks.design.costs import funding_split
from stacks.design.loader import InputError, load_and_design, parse, validate_mapping
from stacks.design.partnership import FundingShare, PartyKind
from stacks.design.sizing import SizingErrors, design


def stack_text(data: dict) -> str:
    return yaml.safe_dump({"config": {"sovereign:partnership": data}}, sort_keys=False)


def problems(text: str) -> list:
    with pytest.raises(InputError) as info:
        parse(text, "p.yaml")
    return info.value.problems


def problems_of(data: dict) -> list:
    return problems(stack_text(data))


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# YAML 1.2 -------------------------------------------------------------------------------------


def test_a_duplicated_key_is_refused_not_silently_won(partnership_dict):
    text = re.sub(r"( *)pue: 1.3\n", r"\1pue: 1.4\n\1pue: 2.9\n", stack_text(partnership_dict))
    (problem,) = problems(text)
    assert problem.line == line_of(text, "pue: 2.9") and problem.field.endswith("sites[0].pue")
    assert "duplicate key 'pue'" in problem.message and f"line {line_of(text, 'pue: 1.4')}" in problem.message


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("010000", "leading zero"),  # YAML 1.1: octal 4096
        ("17:04", "valid integer"),  # YAML 1.1: sexagesimal 1024
        ("true", "valid integer"),  # YAML 1.1 and pydantic's lax mode: 1
        ("'1024'", "valid integer"),  # text is not a count
        ("1024.0", "valid integer"),
    ],
)
def test_a_count_is_a_plain_integer(partnership_dict, written, words):
    text = stack_text(partnership_dict).replace("gpus: 1024", f"gpus: {written}")
    (problem,) = problems(text)
    assert problem.field.endswith("capacity.gpus") and words in problem.message
    assert problem.line == line_of(text, f"gpus: {written}")


@pytest.mark.parametrize("written", ["true", "1.0", "'1'", "01"])
def test_schema_version_is_the_integer_1(partnership_dict, written):
    text = stack_text(partnership_dict).replace("schema_version: 1", f"schema_version: {written}")
    (problem,) = problems(text)
    assert problem.field.endswith("schema_version")


def test_no_is_text_in_yaml_1_2_as_the_engine_reads_it(partnership_dict):
    # Norway's code unquoted: YAML 1.1 read it as false; YAML 1.2 (Pulumi's reader) as 'NO'.
    partnership_dict.update(country="NO", currency="NOK", languages=["nb"])
    partnership_dict["sovereignty"]["data_residency"] = ["NO"]
    text = stack_text(partnership_dict).replace("'NO'", "NO")
    assert "country: NO\n" in text
    assert parse(text, "no.yaml").country == "NO"


def test_a_figure_may_be_an_int_but_not_text_or_a_flag(partnership_dict):
    partnership_dict["sites"][0].update(pue="1.4", max_rack_kw=True)
    fields = {p.field for p in problems_of(partnership_dict)}
    assert fields == {"config.sovereign:partnership.sites[0].pue", "config.sovereign:partnership.sites[0].max_rack_kw"}
    partnership_dict["sites"][0].update(pue=1, max_rack_kw=45)
    assert parse(stack_text(partnership_dict), "ok.yaml").sites[0].pue == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [*x]",  # an alias inside itself
        "a: !!python/object:os.system x",
        "<<: {a: 1}",
        "---\na: 1\n---\nb: 2\n",
        "%YAML 1.1\n---\ncountry: NO\n",  # would make NO false again
        "[" * 3000 + "]" * 3000,
        "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                  for p, c in zip("abcdefgh", "bcdefghi")),  # a billion laughs
    ],
)
def test_hostile_yaml_is_an_input_problem(text):
    started = time.process_time()
    assert problems(text)
    assert time.process_time() - started < 10


def test_yaml_reader_keeps_lines_and_reads_1_2_numbers():
    document = yamldoc.read("a:\n  b: [1, 0x1F, 0o17, 1_000, .inf]\n  c: yes\n")
    assert document.data == {"a": {"b": [1, 31, 15, 1000, float("inf")], "c": "yes"}}
    assert document.line(("a", "b", 1)) == 2 and document.line(("a", "c")) == 3


# Text fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Kenya\x00AI", "Kenya\x1b[31mAI", "Kenya\x9bAI", "Kenya\nAI", "Gov \u202eIA ayneK"])
def test_control_characters_are_refused(partnership_dict, bad):
    partnership_dict["funding"][0]["party"] = bad
    (problem,) = problems_of(partnership_dict)
    assert problem.field.endswith("funding[0].party") and "control character" in problem.message


def test_a_huge_value_is_cut_in_the_message(partnership_dict):
    partnership_dict["currency"] = "X" * 200_000
    partnership_dict["sites"][0]["networks"]["data"] = "Y" * 200_000
    partnership_dict["sites"][0]["Z" * 100_000] = 1
    found = problems_of(partnership_dict)
    assert len(found) == 3
    for problem in found:
        assert len(problem.message) < 500 and len(problem.field) < 200, problem


# Numbers that used to be wrong or crash --------------------------------------------------------


@pytest.mark.parametrize("rate", [float("inf"), 1e308, float("nan"), 0])
def test_usd_rate_is_finite_and_bounded(partnership_dict, rate):
    partnership_dict["usd_rate"] = rate
    (problem,) = problems_of(partnership_dict)
    assert problem.field.endswith("usd_rate")


def test_shares_must_sum_to_one_within_1e_9(partnership_dict):
    partnership_dict["funding"][1]["share"] = 0.4 + 1e-7
    (problem,) = problems_of(partnership_dict)
    assert problem.field.endswith("funding") and "sum to 1" in problem.message


def test_the_money_split_adds_up_to_the_capex_exactly():
    shares = [FundingShare(party=f"p{i}", kind=PartyKind.GOVERNMENT, share=1 / 3) for i in range(3)]
    for total in (1, 2, 815_612_345, 10**12 + 7):
        parts = [f["usd"] for f in funding_split(float(total), shares)]
        assert sum(parts) == total and max(parts) - min(parts) <= 1


def test_existing_gpus_of_another_platform_count_in_the_total_not_the_target():
    # Germany: 960 H100s in place, 8,064 GB200 to build.
    _, planned = load_and_design("de-staging")
    site = planned.sites[0]
    assert (site.existing_gpus, site.counted_gpus) == (960, 0)
    assert site.total_gpus == 960 + site.gpus


def test_existing_platform_must_be_in_the_catalog(partnership_dict):
    partnership_dict["mode"] = "expand"
    partnership_dict["sites"][0]["existing"] = {"racks": 1, "nodes": 4, "gpus": 32, "platform": "hgx-a100", "power_mw": 1}
    (problem,) = problems_of(partnership_dict)
    assert problem.field.endswith("existing.platform") and "unknown GPU platform" in problem.message


def test_existing_racks_cannot_exceed_the_floor(partnership_dict):
    partnership_dict["mode"] = "expand"
    partnership_dict["sites"][0]["rack_positions"] = 100
    partnership_dict["sites"][0]["existing"] = {"racks": 500, "nodes": 4, "gpus": 0, "power_mw": 1}
    (problem,) = problems_of(partnership_dict)
    assert problem.field.endswith("existing.racks") and "100 rack positions" in problem.message


@pytest.mark.parametrize("gpus", [1, 72, 73])
def test_rack_scale_platforms_are_built_in_whole_racks(partnership_dict, gpus):
    partnership_dict["sites"][0].update(cooling="liquid", max_rack_kw=140)
    partnership_dict["sites"][0]["capacity"] = {"platform": "gb200-nvl72", "gpus": gpus}
    site = design(validate_mapping(partnership_dict, "t")).sites[0]
    assert site.gpus % 72 == 0 and site.gpus >= gpus and site.nodes.gpu % 18 == 0
    assert site.rack_kw == pytest.approx(132)


def test_largest_fit_of_a_rack_scale_platform_is_whole_racks(partnership_dict):
    partnership_dict["sites"][0].update(cooling="liquid", max_rack_kw=140, power_budget_mw=1)
    partnership_dict["sites"][0]["capacity"] = {"platform": "gb200-nvl72", "gpus": 720}
    with pytest.raises(SizingErrors) as info:
        design(validate_mapping(partnership_dict, "t"))
    fit = int(re.search(r"at most ([\d,]+) GPUs", str(info.value)).group(1).replace(",", ""))
    assert fit % 72 == 0


def test_public_pools_need_saying_so(partnership_dict):
    partnership_dict["sites"][0]["networks"]["oob"] = "8.8.8.0/24"
    text = stack_text(partnership_dict)
    (problem,) = problems(text)
    assert problem.field.endswith("networks.oob") and problem.line == line_of(text, "8.8.8.0/24")
    partnership_dict["sites"][0]["networks"]["public"] = True
    assert validate_mapping(partnership_dict, "t").sites[0].networks.oob == "8.8.8.0/24"


def test_messages_never_show_nonsense_figures(partnership_dict):
    partnership_dict["sites"][0]["max_rack_kw"] = 0.001
    with pytest.raises(SizingErrors, match=r"the site's 0\.001 kW per rack"):
        design(validate_mapping(partnership_dict, "t"))
    partnership_dict["sites"][0]["max_rack_kw"] = 45
    partnership_dict["mode"] = "expand"
    partnership_dict["sites"][0]["existing"] = {"racks": 1, "nodes": 9_000_000, "gpus": 0, "power_mw": 1}
    with pytest.raises(SizingErrors) as info:  # the pool advice once read "use a /-35 or larger"
        design(validate_mapping(partnership_dict, "t"))
    assert "use a /8 or larger" in str(info.value) and "/-" not in str(info.value)


def test_largest_fit_names_whole_scalable_units(partnership_dict):
    # 95 nodes fit: that is 2 scalable units and 31 nodes, not "3.0 scalable units".
    partnership_dict["sites"][0]["rack_positions"] = 24 + 1  # 95 nodes = 24 racks + 1 for storage/mgmt
    partnership_dict["sites"][0]["capacity"]["gpus"] = 2048
    with pytest.raises(SizingErrors) as info:
        design(validate_mapping(partnership_dict, "t"))
    message = str(info.value)
    assert re.search(r"\d+ scalable units? \+ \d+ nodes? of a partial unit", message), message
    assert ".0 scalable units" not in message


# Every cross-site problem at once, at its own line ---------------------------------------------


def test_cross_site_problems_each_at_their_site(partnership_dict):
    site = partnership_dict["sites"][0]
    twin = copy.deepcopy(site)  # same name and the same pools
    other = copy.deepcopy(site) | {"name": "site-c"}
    other["networks"] = {"data": "10.40.0.0/16", "storage": "10.41.0.0/16", "oob": "10.10.128.0/17"}
    partnership_dict["sites"] += [twin, other]
    text = stack_text(partnership_dict)
    found = problems(text)
    fields = sorted(p.field.removeprefix("config.sovereign:partnership.") for p in found)
    assert fields == [
        "sites[1].name", "sites[1].networks.data", "sites[1].networks.oob", "sites[1].networks.storage",
        "sites[2].networks.oob",
    ]
    assert all(p.line and p.line > line_of(text, "- name: site-a") for p in found)
    oob = next(p for p in found if p.field.endswith("sites[2].networks.oob"))
    assert oob.line == line_of(text, "10.10.128.0/17") and "site 'site-a' pool data" in oob.message


def test_expand_without_existing_is_reported_per_site(partnership_dict):
    partnership_dict["mode"] = "expand"
    second = copy.deepcopy(partnership_dict["sites"][0]) | {"name": "site-b"}
    second["networks"] = {"data": "10.20.0.0/16", "storage": "10.21.0.0/16", "oob": "10.22.0.0/16"}
    partnership_dict["sites"].append(second)
    fields = {p.field for p in problems_of(partnership_dict)}
    assert fields == {"config.sovereign:partnership.sites[0]", "config.sovereign:partnership.sites[1]"}


def test_ten_thousand_sites_validate_in_under_two_seconds(partnership_dict):
    # The pairwise pool check took 18 s for 2,000 sites; sorted by address it is O(n log n).
    template = partnership_dict["sites"][0]
    sites = []
    for i in range(10_000):
        blocks = [3 * i + k for k in range(3)]
        nets = [f"10.{b // 256}.{b % 256}.0/24" for b in blocks]
        sites.append(template | {"name": f"site-{i}", "networks": dict(zip(("data", "storage", "oob"), nets))})
    partnership_dict["sites"] = sites
    started = time.process_time()  # CPU time: the shared CI machine's load does not count
    assert len(validate_mapping(partnership_dict, "t").sites) == 10_000
    assert time.process_time() - started < 2.0
    sites[9_999]["networks"] = sites[0]["networks"]
    with pytest.raises(InputError) as info:
        validate_mapping(partnership_dict, "t")
    assert len(info.value.problems) == 3

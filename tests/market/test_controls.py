"""Export-control classification from chip specs (the minimal rules of the market engine)."""

import dataclasses

import pytest

from market.catalog import load_catalog
from market.controls import classify, load_rules


@pytest.fixture(scope="module")
def chips():
    return load_catalog()


@pytest.mark.parametrize("chip", ["a100", "h100-sxm"])
def test_a100_and_h100_prohibited_for_china_under_oct2022(chips, chip):
    d = classify(chips[chip], "D5", "oct2022")
    assert d.controlled and d.treatment == "prohibited" and d.shippable_fraction == 0
    assert any("interconnect" in c for c in d.crossed)


@pytest.mark.parametrize("chip", ["a800", "h800"])
def test_china_variants_pass_oct2022_but_not_oct2023(chips, chip):
    assert not classify(chips[chip], "D5", "oct2022").controlled
    assert classify(chips[chip], "D5", "oct2023").treatment == "prohibited"


def test_h20_is_below_oct2023_thresholds(chips):
    assert not classify(chips["h20"], "D5", "oct2023").controlled


def test_allied_destinations_unrestricted_and_gulf_licensed(chips):
    assert classify(chips["h100-sxm"], "allied", "oct2023").shippable_fraction == 1.0
    gulf = classify(chips["h100-sxm"], "D4", "oct2023")
    assert gulf.treatment == "licence" and 0 < gulf.shippable_fraction < 1


def test_thresholds_are_inclusive_and_read_from_specs(chips):
    """A chip just under TPP 4,800 with 600 GB/s links is not controlled; at 4,800 it is."""
    base = chips["a100"]
    under = dataclasses.replace(base, dense_throughput={"bf16": 4799.9 / 16})
    at = dataclasses.replace(base, dense_throughput={"bf16": 4800 / 16})
    assert not classify(under, "D5", "oct2022").controlled
    assert classify(at, "D5", "oct2022").controlled


def test_no_rule_in_force_allows_everything(chips):
    assert classify(chips["h100-sxm"], "D5", None).shippable_fraction == 1.0
    assert set(load_rules()) >= {"oct2022", "oct2023"}

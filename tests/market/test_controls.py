"""Export-control rule engine: classification from chip specs, the real US rule history,
compliant variants, switches, and validation of rule data."""

import dataclasses
from pathlib import Path

import pytest

from market.catalog import load_catalog
from market.controls import (classify, compliant_variant, hbm_controlled, load_rules,
                             remote_access_open)
from market.errors import DataFileError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "controls"


@pytest.fixture(scope="module")
def chips():
    return load_catalog()


@pytest.fixture(scope="module")
def book():
    return load_rules()


def with_tpp(chip, tpp):
    """The chip with its throughput scaled to a given TPP (other specs unchanged)."""
    scale = tpp / chip.tpp
    return dataclasses.replace(chip, dense_throughput={p: v * scale for p, v in
                                                       chip.dense_throughput.items()})


@pytest.mark.parametrize("chip", ["a100", "h100-sxm"])
def test_a100_and_h100_prohibited_for_china_under_oct2022(chips, chip):
    d = classify(chips[chip], "D5", "oct2022")
    assert d.controlled and d.treatment == "prohibited" and d.shippable_fraction == 0
    assert any("I/O" in c for c in d.crossed) and any("TPP" in c for c in d.crossed)


@pytest.mark.parametrize("chip", ["a800", "h800"])
def test_china_variants_pass_oct2022_but_not_oct2023(chips, chip):
    """A800/H800 kept full compute but cut chip-to-chip I/O to 400 GB/s, under 600."""
    assert not classify(chips[chip], "D5", "oct2022").controlled
    d = classify(chips[chip], "D5", "oct2023")
    assert d.controlled and d.treatment == "prohibited" and d.action == "3A090.a"


def test_h20_below_oct2023_yet_licensed_from_april_2025_by_name(chips, book):
    h20 = chips["h20"]
    assert h20.tpp == pytest.approx(2368, rel=0.01)
    assert not classify(h20, "D5", "oct2023").controlled
    assert classify(h20, "D5", book.regime_at("2025-03")).treatment == "allowed"
    april = classify(h20, "D5", book.regime_at("2025-05"))
    assert april.treatment == "licence" and april.shippable_fraction == 0
    assert april.rule_id == "h20-apr2025" and "named product" in april.crossed[0]
    august = classify(h20, "D5", book.regime_at("2025-09"))
    assert august.treatment == "licence" and august.revenue_share == 0.15


@pytest.mark.parametrize("rule,group", [("oct2022", "D5"), ("oct2023", "D5")])
def test_hypothetical_chip_just_under_every_threshold_is_free_and_just_over_is_not(
        chips, book, rule, group):
    base = chips["h100-sxm"]
    for criterion in [c for a in book[rule].actions for c in a.any_of]:
        over = base
        for field in ("tpp", "performance_density", "interconnect_gbps"):
            threshold = getattr(criterion, f"{field}_min")
            if threshold is None:
                continue
            if field == "tpp":
                over = with_tpp(over, threshold * 1.001)
            elif field == "performance_density":
                over = dataclasses.replace(over, die_area_mm2=over.tpp / (threshold * 1.001))
            else:
                over = dataclasses.replace(over, interconnect_gbps=threshold * 1.001)
        assert classify(over, group, rule).controlled, criterion
    variant = compliant_variant(base, group, (rule,), book, "probe")
    assert variant is not None and classify(variant, group, rule).treatment == "allowed"
    # one more percent of TPP (or I/O) puts the design back over a threshold
    bumped = dataclasses.replace(variant, interconnect_gbps=variant.interconnect_gbps * 1.03)
    bumped = with_tpp(bumped, variant.tpp * 1.03)
    assert classify(bumped, group, rule).treatment != "allowed"


def test_thresholds_are_inclusive(chips):
    base = chips["a100"]
    assert not classify(with_tpp(base, 4799.9), "D5", "oct2022").controlled
    assert classify(with_tpp(base, 4800), "D5", "oct2022").controlled


def test_grey_zone_needs_notification(chips):
    chip = with_tpp(chips["h20"], 2500)          # TPP 2,500, density ~3.1: 3A090.b
    d = classify(chip, "D5", "oct2023")
    assert d.controlled and d.treatment == "notification" and d.shippable_fraction == 1.0


def test_destinations_under_oct2023(chips):
    assert classify(chips["h100-sxm"], "allied", "oct2023").shippable_fraction == 1.0
    gulf = classify(chips["h100-sxm"], "D4", "oct2023")
    assert gulf.treatment == "licence" and 0 < gulf.shippable_fraction < 1


def test_real_history_regimes(book):
    assert book.regime_at("2022-08") == ()
    assert book.regime_at("2022-09") == ("aug2022-letter",)
    assert book.regime_at("2022-10") == ("oct2022",)         # supersedes the letter
    assert book.regime_at("2023-11") == ("oct2023",)          # supersedes oct2022
    assert "dec2024-hbm" in book.regime_at("2025-01")
    assert "diffusion2025" not in book.regime_at("2025-05")   # rescinded before compliance
    assert "h20-apr2025" not in book.regime_at("2025-08")     # superseded by h20-aug2025
    assert book.regime_at("2026-02")[-1] == "jan2026-case-by-case"


def test_diffusion_rule_tiers_caps_and_exemption(chips):
    h100 = chips["h100-sxm"]
    regime = ("oct2023", "diffusion2025")
    assert classify(h100, "allied", regime).treatment == "allowed"
    tier2 = classify(h100, "other", regime)
    assert tier2.treatment == "licence" and tier2.cap_h100e == pytest.approx(49901)
    assert tier2.cap_months == 36 and tier2.exemption_h100e_per_customer_year == 1699
    assert classify(h100, "D5", regime).treatment == "prohibited"


def test_case_by_case_overlay_of_january_2026(chips, book):
    regime = book.regime_at("2026-02")
    h200 = classify(chips["h200"], "D5", regime)
    assert h200.treatment == "case_by_case" and h200.revenue_share == 0.25
    assert h200.volume_cap_vs_home == 0.5
    assert classify(chips["b200"], "D5", regime).treatment == "prohibited"   # TPP 36,000
    assert classify(chips["h200"], "allied", regime).treatment == "allowed"


def test_hbm_and_remote_access_switches(book):
    assert not hbm_controlled("D5", book.regime_at("2024-11"), book)
    assert hbm_controlled("D5", book.regime_at("2024-12"), book)
    assert remote_access_open("D5", book.regime_at("2026-02"), book)


def test_compliant_variants_land_where_the_real_ones_did(chips, book):
    h100 = chips["h100-sxm"]
    v2022 = compliant_variant(h100, "D5", ("oct2022",), book, "x")
    assert v2022.tpp == pytest.approx(h100.tpp) and v2022.interconnect_gbps < 600  # an H800
    v2023 = compliant_variant(h100, "D5", ("oct2023",), book, "y")
    assert 2300 < v2023.tpp < 2400                     # an H20 (TPP 2,368)
    assert v2023.unit_price_usd < h100.unit_price_usd


@pytest.mark.parametrize("fixture,message", [
    ("unknown_group.toml", "unknown destination group 'D9'"),
    ("wrong_unit.toml", "interconnect_gbps_min = 0.6: expected chip-to-chip I/O in GB/s"),
    ("dates_out_of_order.toml", "announced 2024-05 is after effective 2024-01"),
    ("expected_after_announced.toml", "expected 2024-03 is after announced 2024-02"),
    ("expected_not_a_month.toml", "rules.r: expected: 'March 2024' is not a month written YYYY-MM"),
    ("supersedes_later.toml", "takes effect 2025-01, after this rule"),
    ("unknown_product.toml", "unknown chip 'h999'"),
])
def test_bad_rule_files_are_refused(fixture, message):
    with pytest.raises(DataFileError) as err:
        load_rules(FIXTURES / fixture)
    assert message in str(err.value) and fixture in str(err.value)

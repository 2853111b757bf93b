"""The chip catalog: derived metrics from published figures, and refusal of bad data files."""

from pathlib import Path

import pytest

from market.catalog import H100_TPP, load_catalog, load_training_runs
from market.errors import DataFileError, UnknownNameError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "catalog"
REQUIRED = ["v100", "a100", "a800", "h100-sxm", "h800", "h20", "h200", "b200", "gb200", "mi300x",
            "mi325x", "ascend-910b", "ascend-910c", "tpu-v5e", "tpu-v5p", "tpu-v6e"]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_catalog_has_the_required_chips(catalog):
    assert set(REQUIRED) <= set(catalog)


@pytest.mark.parametrize("chip_id, tpp", [
    ("a100", 4_992), ("h100-sxm", 15_831), ("h800", 15_831), ("h20", 2_368), ("b200", 36_000),
    ("gb200", 40_000), ("tpu-v5e", 3_152), ("tpu-v5p", 7_344), ("tpu-v6e", 14_688),
    ("mi300x", 20_918)])
def test_tpp_is_max_over_precisions_of_dense_tops_times_bits(catalog, chip_id, tpp):
    """Values from docs/calibration.md sections 0-2: H100 ~15,830, H20 2,368, B200 36,000 (FP4 x 4)."""
    assert catalog[chip_id].tpp == pytest.approx(tpp, abs=1.5)


def test_h100_equivalents_and_density(catalog):
    h100 = catalog["h100-sxm"]
    assert h100.h100e == pytest.approx(1.0)
    assert h100.h100e_tpp == pytest.approx(1.0)
    assert catalog["a100"].h100e == pytest.approx(312 / 989.4)
    assert h100.performance_density == pytest.approx(H100_TPP / 814)
    assert catalog["mi300x"].performance_density is None  # die area not published
    # the 2025 diffusion rule's 790M TPP cap was described as ~49,901 H100s
    assert 790e6 / H100_TPP == pytest.approx(49_901, rel=0.001)


def test_catalog_holds_dense_not_sparse_figures(catalog):
    assert catalog["h100-sxm"].dense_bf16_tflops == pytest.approx(989.4)
    assert catalog["mi300x"].dense_bf16_tflops == pytest.approx(1307.4)  # not 2,615 sparse


def test_hardware_price_includes_server(catalog):
    assert catalog["h100-sxm"].hardware_price_usd == pytest.approx(33_750)
    assert catalog["tpu-v5e"].hardware_price_usd is None


def test_every_field_has_a_source(catalog):
    for chip in catalog.values():
        for name in ("launch", "dense_tflops_bf16", "memory_gb", "tdp_w", "interconnect_gbps"):
            assert chip.source_of(name).strip(), (chip.id, name)


def test_lookup_by_prefix_and_unknown_chip_lists_known(catalog):
    assert catalog.get_chip("H100").id == "h100-sxm"
    with pytest.raises(UnknownNameError, match="known: a100, a800"):
        catalog.get_chip("h1000")


def test_valid_fixture_loads():
    chips = load_catalog(FIXTURES / "valid.toml")
    assert chips["test-chip"].tpp == pytest.approx(1600)


@pytest.mark.parametrize("fixture, message", [
    ("sparse_figure.toml", r"chip 'test-chip', field 'dense_tflops_bf16': is a sparse figure"),
    ("dense_flag_missing.toml", r"chip 'test-chip', field 'dense_tflops_bf16.dense': Field required"),
    ("missing_source.toml", r"chip 'test-chip', field 'tdp_w.source': Field required"),
    ("negative_number.toml", r"chip 'test-chip', field 'memory_gb.value': must be positive"),
    ("unknown_source.toml", r"chip 'test-chip', field 'interconnect_gbps': unknown source 'blog-post'"),
    ("bad_date.toml", r"field 'launch.value': must be a month written YYYY-MM"),
    ("syntax_error.toml", r"TOML syntax error"),
])
def test_bad_catalog_files_are_refused_naming_file_and_entry(fixture, message):
    with pytest.raises(DataFileError, match=message) as info:
        load_catalog(FIXTURES / fixture)
    assert fixture in str(info.value)


def test_reference_runs_load_and_name_catalog_chips(catalog):
    runs = load_training_runs()
    assert {"gpt-3", "palm", "gpt-4", "llama-3.1-405b", "deepseek-v3"} <= set(runs)
    for run in runs.values():
        assert run.chip in catalog
        assert run.training_flop > 1e23
    assert runs["gpt-3"].chip == "v100"  # not A100
    assert runs["deepseek-v3"].reported_gpu_hours == pytest.approx(2.788e6)
    assert runs["gpt-4"].reported_gpu_hours == pytest.approx(25_000 * 95 * 24)

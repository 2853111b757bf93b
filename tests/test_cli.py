"""The `gpumarket` CLI through click's CliRunner: outputs, JSON keys and user errors."""

import json

import pytest
from click.testing import CliRunner

from market.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def run_json(*args):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_lists_commands():
    result = run("--help")
    assert result.exit_code == 0
    assert "chips" in result.stdout and "cost" in result.stdout


def test_chips_table_and_json():
    result = run("chips")
    assert result.exit_code == 0
    assert "h100-sxm" in result.stdout and "15,831" in result.stdout
    records = {r["id"]: r for r in run_json("chips")}
    assert records["b200"]["tpp"] == pytest.approx(36_000)
    assert records["h20"]["performance_density_tpp_per_mm2"] == pytest.approx(2368 / 814)
    assert records["a100"]["sources"]["tdp_w"].startswith("A100 vs H100")


def test_training_gpt3_makes_work_vs_gpu_time_plain():
    result = run("cost", "training", "--model", "gpt-3")
    assert result.exit_code == 0
    out = result.stdout
    assert "3,634 PFLOP/s-days (a unit of work, not GPU time)" in out
    assert "11,648 A100-days" in out
    assert "V100" in out and "not A100s" in out


def test_training_gpt3_json_keys_and_values():
    r = run_json("cost", "training", "--model", "gpt-3", "--chip", "a100", "--gpus", "1000")
    for key in ("training_flop", "gpu_hours", "wall_clock_days", "cloud_cost_usd",
                "amortized_cost_usd", "acquisition_cost_usd", "energy_mwh", "co2_t"):
        assert key in r
    assert r["gpu_days_at_full_utilization"] == pytest.approx(11_650, rel=0.002)
    assert r["pflop_s_days"] == pytest.approx(3_640, rel=0.002)
    # ad-hoc chip: GPU-hours at the default MFU plus the scale-out loss at 1,000 GPUs
    assert r["mfu"] == pytest.approx(0.375)
    assert r["scaling_efficiency"] == pytest.approx(0.90, abs=0.005)
    assert r["gpu_hours"] == pytest.approx(3.14e23 / (312e12 * 0.375) / 3600 / 0.9, rel=0.01)
    assert r["wall_clock_days"] == pytest.approx(r["gpu_hours"] / 1000 / 24)


def test_training_deepseek_reproduces_5_576m():
    r = run_json("cost", "training", "--model", "deepseek-v3")
    assert r["gpu_hours"] == pytest.approx(2.788e6)
    assert r["cloud_cost_usd"] == pytest.approx(5.576e6)
    assert r["basis"] == "reported chip-hours"


def test_training_gpt4_cloud_cost_near_ai_index():
    """The AI Index's USD 78.4M is chip-hours x an Azure 3-year A100 price [CAL 6.1]."""
    r = run_json("cost", "training", "--model", "gpt-4")
    assert r["cloud_cost_usd"] == pytest.approx(78.4e6, rel=0.02)
    assert r["acquisition_cost_usd"] == pytest.approx(778e6, rel=0.02)


def test_training_from_params_and_tokens():
    r = run_json("cost", "training", "--params", "70B", "--tokens", "15T", "--gpus", "4096",
                 "--price-usd-per-hour", "2", "--mfu", "0.4")
    assert r["training_flop"] == pytest.approx(6 * 70e9 * 15e12)
    assert r["cloud_cost_usd"] == pytest.approx(r["gpu_hours"] * 2)
    assert r["energy_mwh"] > 0 and r["co2_t"] == pytest.approx(r["energy_mwh"] * 0.367)


def test_inference_worked_example():
    r = run_json("cost", "inference", "--params", "175e9", "--requests-per-day", "1e8",
                 "--tokens-per-request", "50", "--chip", "a100", "--utilization", "1",
                 "--peak-factor", "1")
    assert r["flop_per_day"] == pytest.approx(1.75e21)
    assert r["gpus_compute_floor"] == 65
    assert r["gpus_memory_floor"] == 5
    r30 = run_json("cost", "inference", "--params", "175B", "--tokens-per-day", "5e9",
                   "--chip", "a100", "--utilization", "0.3", "--peak-factor", "1")
    assert r30["gpus_needed"] == pytest.approx(220, abs=5)
    assert r30["usd_per_million_tokens"] > 0


def test_serving_json_h20_against_h100():
    """The default workload (Llama 2 70B, BF16, 4k context, 50 ms per token): the H20 is
    compute-bound with the latency filling its batch, the H100 memory-bound with its memory
    full; tokens and USD per million tokens follow from each other at the price given."""
    h20 = run_json("cost", "serving", "--chip", "h20", "--price-usd-per-hour", "2")
    h100 = run_json("cost", "serving", "--price-usd-per-hour", "2")
    assert h100["chip"] == "h100-sxm" and h100["serving_h100e"] == pytest.approx(1.0)
    assert (h20["bound"], h20["batch_limit"]) == ("compute", "latency")
    assert (h100["bound"], h100["batch_limit"]) == ("memory", "memory capacity")
    assert h20["serving_h100e"] == pytest.approx(
        h20["tokens_per_chip_hour"] / h100["tokens_per_chip_hour"])
    assert h20["serving_h100e"] > 2 * h20["training_h100e"]
    assert h20["usd_per_million_tokens"] == pytest.approx(2 / h20["tokens_per_chip_hour"] * 1e6)
    assert h20["tokens_per_second_per_chip"] * 3600 == pytest.approx(h20["tokens_per_chip_hour"])
    assert h20["workload"]["max_step_seconds"] == pytest.approx(0.05)
    fp8 = run_json("cost", "serving", "--bytes-per-param", "1", "--kv-bytes-per-token", "163840",
                   "--precision", "fp8", "--max-step-ms", "40")
    assert fp8["tokens_per_chip_hour"] > h100["tokens_per_chip_hour"]
    assert fp8["step_seconds"] <= 0.04 + 1e-12


def test_serving_option_defaults_are_the_workload_defaults():
    """The CLI states its defaults for a quick --help; they must be ServingWorkload's."""
    from market.costs import ServingWorkload

    r = run_json("cost", "serving")
    defaults = ServingWorkload()
    assert r["workload"] == {k: getattr(defaults, k) for k in r["workload"]}
    assert set(r["workload"]) == set(ServingWorkload.__dataclass_fields__)


def test_serving_all_chips_table_and_json():
    from market.catalog import load_catalog

    ids = set(load_catalog())
    r = run_json("cost", "serving", "--all")
    assert {c["chip"] for c in r["chips"]} == ids
    unpriced = [c for c in r["chips"] if c["price_usd_per_gpu_hour"] is None]
    assert unpriced and all(c["usd_per_million_tokens"] is None for c in unpriced)
    result = run("cost", "serving", "--all")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "serving H100e" in lines[1] and "USD/M tok" in lines[1]
    assert {line.split()[0] for line in lines[2:2 + len(ids)]} == ids


def test_serving_human_output():
    result = run("cost", "serving", "--chip", "h20", "--price-usd-per-hour", "1.5")
    assert result.exit_code == 0
    for label in ("decode step", "compute-bound", "tokens per chip-hour", "serving H100e",
                  "cost per million tokens", "$1.50"):
        assert label in result.stdout, label


def test_inference_human_output():
    result = run("cost", "inference", "--params", "175B", "--tokens-per-day", "5e9", "--chip",
                 "a100")
    assert result.exit_code == 0
    assert "memory floor" in result.stdout and "cost per million tokens" in result.stdout


def test_cluster_json_keys_and_breakeven():
    r = run_json("cost", "cluster", "--gpus", "16384", "--chip", "h100-sxm",
                 "--rental-usd-per-hour", "2.5", "--staff", "50")
    for key in ("capex_usd", "opex_usd_per_year", "tco_usd", "power_mw", "energy_mwh_per_year",
                "breakeven_months", "interruptions_per_day", "checkpoint_interval_minutes",
                "goodput_fraction"):
        assert key in r
    assert r["interruptions_per_day"] == pytest.approx(419 / 54, rel=0.001)
    assert r["checkpoint_interval_minutes"] == pytest.approx(19, abs=0.6)
    assert r["tco_usd"] == pytest.approx(r["capex_usd"] + 5 * r["opex_usd_per_year"])
    cheaper = run_json("cost", "cluster", "--gpus", "16384", "--rental-usd-per-hour", "5",
                       "--staff", "50")
    assert cheaper["breakeven_months"] < r["breakeven_months"]


def test_cluster_never_breaks_even_prints_null_not_infinity():
    r = run_json("cost", "cluster", "--gpus", "100", "--rental-usd-per-hour", "0.01",
                 "--staff", "10")
    assert r["breakeven_months"] is None
    assert "never" in run("cost", "cluster", "--gpus", "100", "--rental-usd-per-hour", "0.01",
                          "--staff", "10").stdout


@pytest.mark.parametrize("args, message", [
    (["cost", "training", "--model", "gpt-5"], "unknown reference model 'gpt-5'; known: deepseek-v3"),
    (["cost", "training", "--flop", "1e24", "--chip", "h1000"], "unknown chip 'h1000'; known: a100"),
    (["cost", "training", "--model", "gpt-3", "--mfu", "1.5"], "--mfu must be in (0, 1]"),
    (["cost", "training", "--model", "gpt-3", "--mfu", "0"], "--mfu must be in (0, 1]"),
    (["cost", "training", "--flop", "nan"], "'--flop': 'nan' is not a finite number"),
    (["cost", "training", "--flop", "inf"], "'--flop': 'inf' is not a finite number"),
    (["cost", "training", "--flop", "-1e24"], "--flop must be a finite number > 0"),
    (["cost", "training", "--flop", "1e24", "--gpus", "0"], "--gpus must be a finite number > 0"),
    (["cost", "training", "--flop", "1e24", "--model", "gpt-3"], "give exactly one of"),
    (["cost", "training", "--params", "7B"], "--params and --tokens go together"),
    (["cost", "inference", "--params", "7B", "--tokens-per-day", "1e9", "--utilization", "1.2"],
     "--utilization must be in (0, 1]"),
    (["cost", "inference", "--params", "7B"], "give --tokens-per-day"),
    (["cost", "cluster", "--gpus", "-5"], "--gpus must be a finite number > 0"),
    (["cost", "cluster", "--gpus", "1.5"], "'--gpus': '1.5' is not a whole number"),
    (["cost", "cluster", "--gpus", "100", "--pue", "0.8"], "--pue must be >= 1"),
    (["cost", "cluster", "--gpus", "100", "--chip", "tpu-v5e"], "has no published unit price"),
    (["cost", "serving", "--chip", "h1000"], "unknown chip 'h1000'; known: a100"),
    (["cost", "serving", "--chip", "h20", "--all"], "give --chip or --all, not both"),
    (["cost", "serving", "--compute-efficiency", "1.5"], "--compute-efficiency must be in (0, 1]"),
    (["cost", "serving", "--max-step-ms", "0"], "--max-step-ms must be a finite number > 0, got 0"),
    (["cost", "serving", "--params", "-7B"], "--params must be a finite number > 0"),
    (["cost", "serving", "--chips-per-server", "0"], "--chips-per-server must be a whole number"),
    (["cost", "serving", "--precision", "fp4"], "'--precision': 'fp4' is not one of"),
    (["cost", "serving", "--price-usd-per-hour", "-2"], "--price-usd-per-hour must be a finite"),
])
def test_user_errors_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "market.cli", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "gpumarket, version" in out.stdout

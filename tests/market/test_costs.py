"""The cost core against worked examples (docs/calibration.md; issue #2) and its invariants."""

import math
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

from market import costs
from market.catalog import load_catalog
from market.errors import InputError

REL = 1e-3  # tolerance for exact arithmetic examples

positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
fraction = st.floats(min_value=1e-3, max_value=1.0, allow_nan=False)


def test_chip_power_energy_and_bill_for_10k_a100():
    """10,000 A100 x 400 W at USD 0.10/kWh, chip power only: 4 MW, USD 9,600/day, 1.73M in 180 d."""
    mw = costs.power_mw(10_000, 400)
    assert mw == pytest.approx(4.0, rel=REL)
    per_day = costs.energy_cost_usd(costs.energy_mwh(mw, 24) * 1000, 0.10)
    assert per_day == pytest.approx(9_600, rel=REL)
    assert costs.energy_cost_usd(costs.energy_mwh(mw, 180 * 24) * 1000, 0.10) == pytest.approx(
        1.728e6, rel=REL)


def test_1000_h100_at_pue_1_5():
    """1,000 H100 x 700 W x PUE 1.5: 1.05 MW, 9.2 GWh/yr, about USD 920k/yr at USD 0.10/kWh.

    The widely shared version rounds to 1 MW, 8.76 GWh and USD 876k: 5% low.
    """
    mw = costs.power_mw(1_000, 700, pue=1.5)
    assert mw == pytest.approx(1.05, rel=REL)
    mwh = costs.energy_mwh(mw, costs.HOURS_PER_YEAR)
    assert mwh / 1000 == pytest.approx(9.2, abs=0.01)
    assert costs.energy_cost_usd(mwh * 1000, 0.10) == pytest.approx(920_000, rel=0.005)
    assert mwh > 8_760 * 1.02  # the rounded figure is not what the arithmetic gives


def test_tco_600m_build_plus_3_years_opex():
    assert costs.tco_usd(600e6, 150e6, 3) == pytest.approx(1.05e9, rel=REL)


def test_tco_discounting_lowers_cost_and_zero_rate_matches():
    assert costs.tco_usd(600e6, 150e6, 3, 0.08) < costs.tco_usd(600e6, 150e6, 3)
    assert costs.tco_usd(0, 100, 1, 0.1) == pytest.approx(100 / 1.1)


def test_gpt3_work_is_not_gpu_time():
    """3.14e23 FLOP = ~3,640 PFLOP/s-days = ~11,650 A100-days at 100% (not 3,640 A100-days)."""
    flop = 3.14e23
    assert costs.pflop_s_days(flop) == pytest.approx(3_640, rel=0.002)
    a100_days = costs.gpu_hours(flop, 312e12, mfu=1.0) / 24
    assert a100_days == pytest.approx(11_650, rel=0.002)
    assert a100_days / 3_640 == pytest.approx(3.2, abs=0.05)


def test_training_flop_is_6nd_and_inference_2n():
    assert costs.training_flop(175e9, 300e9) == pytest.approx(3.15e23, rel=REL)
    assert costs.training_flop(405e9, 15.6e12) == pytest.approx(3.79e25, rel=REL)
    assert costs.inference_flop_per_token(175e9) == pytest.approx(350e9)


def test_inference_fleet_1e8_requests():
    """1e8 req/day x 50 tokens x 350 GFLOP = 1.75e21 FLOP/day = 20 PFLOP/s = 65 A100 at 100%,
    about 220 at 30%; the 64,000 in circulation is a 1,000x unit slip."""
    fleet = costs.inference_fleet(175e9, 1e8 * 50, 312e12, 80, utilization=1.0, peak_factor=1.0)
    assert fleet.flop_per_day == pytest.approx(1.75e21, rel=REL)
    assert fleet.flop_per_s == pytest.approx(2.03e16, rel=0.005)
    assert fleet.gpus_compute_floor == 65
    assert fleet.gpus_memory_floor == 5  # 350 GB of BF16 weights on 80 GB parts
    at30 = costs.inference_fleet(175e9, 1e8 * 50, 312e12, 80, utilization=0.3, peak_factor=1.0)
    assert at30.gpus_needed == pytest.approx(220, abs=5)
    assert 64_000 / at30.gpus_needed > 250
    assert 64_000 / fleet.gpus_compute_exact == pytest.approx(986, rel=0.01)  # the 1,000x slip


def test_idle_cost_of_a_5_dollar_gpu():
    hours = 30 * 24
    assert costs.rental_cost_usd(hours, 5.0) == pytest.approx(3_600)
    assert costs.idle_cost_usd(hours, 5.0, 0.3) == pytest.approx(2_520)


def test_owned_h100_epoch_method():
    """USD 33,750 with server, 19% interconnect, r = 0.322/yr, k = 1.82, u = 0.75, PUE 1.1,
    USD 0.0806/kWh: about USD 1.53 hardware + 0.085 energy = 1.62 per GPU-hour [CAL 7.6]."""
    cost = costs.owned_cost_per_gpu_hour(33_750, 700, 1.82, 0.75, pue=1.1,
                                         electricity_usd_per_kwh=0.0806)
    assert cost.hardware_usd_per_gpu_hour == pytest.approx(1.53, abs=0.01)
    assert cost.energy_usd_per_gpu_hour == pytest.approx(0.085, abs=0.001)
    assert cost.total_usd_per_gpu_hour == pytest.approx(1.62, abs=0.01)
    at70 = costs.owned_cost_per_gpu_hour(33_750, 700, 1.82, 0.75, 1.1, 0.0806, utilization=0.7)
    assert at70.total_usd_per_gpu_hour == pytest.approx(2.31, abs=0.01)
    assert costs.HARDWARE_VALUE_DECLINE_PER_YEAR == pytest.approx(0.322, abs=0.001)


def test_deepseek_v3_rental_equivalent():
    assert costs.rental_cost_usd(2.788e6, 2.0) == pytest.approx(5.576e6, rel=1e-9)


def test_llama3_reliability():
    """419 unexpected interruptions in 54 days on 16,384 GPUs: job MTBF ~3.1 h; with a 1-minute
    checkpoint write the Young/Daly interval is ~19 minutes."""
    mtbf = costs.mtbf_from_interruptions(419, 54 * 24)
    assert mtbf == pytest.approx(3.1, abs=0.02)
    assert costs.job_mtbf_hours(16_384) == pytest.approx(mtbf, rel=1e-9)
    assert costs.PER_GPU_MTBF_HOURS == pytest.approx(50_700, rel=0.002)
    assert costs.young_interval_hours(1 / 60, mtbf) * 60 == pytest.approx(19, abs=0.5)
    assert costs.checkpoint_interval_hours(1 / 60, mtbf) * 60 == pytest.approx(19, abs=0.6)
    assert costs.interruptions_per_day(mtbf) == pytest.approx(419 / 54, rel=1e-9)


def test_goodput_with_llama3_figures_near_85_percent():
    """M = 3.1 h, delta = 1 min, R = 10 min: ~5% + 5% + 5% lost [CAL 7.5]."""
    mtbf = 3.1
    tau = costs.young_interval_hours(1 / 60, mtbf)
    assert costs.goodput_fraction(tau, 1 / 60, 10 / 60, mtbf) == pytest.approx(0.85, abs=0.01)


def test_scaling_efficiency_calibration_points():
    assert costs.scaling_efficiency(1_000) == pytest.approx(0.90, abs=0.005)
    assert costs.scaling_efficiency(10_000) == pytest.approx(0.70, abs=0.005)
    assert costs.scaling_efficiency(8) > 0.99
    # Llama 3: 43% -> 40% MFU from 8,192 to 16,384 GPUs, a 7% loss; the curve gives ~12%
    ratio = costs.scaling_efficiency(16_384) / costs.scaling_efficiency(8_192)
    assert 0.85 < ratio < 0.95


def test_wall_clock_of_llama3():
    """30.84M H100-hours on 16,384 GPUs is 78 days of full-cluster time (not the 54-day snapshot)."""
    assert costs.wall_clock_days(30.84e6, 16_384) == pytest.approx(78.4, abs=0.1)


def test_acquisition_and_amortized_costs():
    assert costs.acquisition_cost_usd(25_000, 24_875) == pytest.approx(25_000 * 24_875 / 0.81)
    per_hour = costs.amortized_hardware_cost_usd(1.0, 33_750)
    assert per_hour == pytest.approx(33_750 / 0.81 * 0.322 / 8766, rel=0.002)


def test_capex_breakdown_adds_up_and_interconnect_is_19_percent_of_hardware():
    capex = costs.cluster_capex(1_000, 25_000, 1.35, facility_power_mw=1.6, facility_usd_per_mw=1e7)
    hardware = capex.accelerators_usd + capex.servers_usd + capex.interconnect_usd
    assert capex.interconnect_usd / hardware == pytest.approx(0.19)
    assert capex.total_usd == pytest.approx(hardware + 16e6)
    assert capex.accelerators_usd + capex.servers_usd == pytest.approx(1_000 * 33_750)


def test_breakeven_is_infinite_when_renting_is_cheaper_than_opex():
    assert math.isinf(costs.breakeven_months(1e6, 1e9, 10, 1.0))
    months = costs.breakeven_months(1e6, 0.0, 10, 2.0, utilization=1.0)
    assert months == pytest.approx(1e6 / (10 * 730.5 * 2.0))


def test_functions_accept_arrays():
    gpus = np.array([1_000, 10_000])
    eff = costs.scaling_efficiency(gpus)
    assert isinstance(eff, np.ndarray) and eff.shape == (2,)
    fleet = costs.inference_fleet(np.array([7e9, 70e9]), 1e9, 989e12, 80)
    assert fleet.gpus_needed.shape == (2,)
    assert isinstance(costs.power_mw(1_000, 700), float)


@given(flop=positive, peak=positive, m1=fraction, m2=fraction)
def test_more_mfu_fewer_hours(flop, peak, m1, m2):
    lo, hi = sorted((m1, m2))
    assert costs.gpu_hours(flop, peak, hi) <= costs.gpu_hours(flop, peak, lo) * (1 + 1e-12)


@given(hours=positive, price=positive, k=st.floats(min_value=0.01, max_value=100))
def test_cost_linear_in_price(hours, price, k):
    assert costs.rental_cost_usd(hours, price * k) == pytest.approx(
        k * costs.rental_cost_usd(hours, price), rel=1e-9)


@given(hours=positive, tdp=st.floats(min_value=10, max_value=2000), k=st.floats(0.01, 100),
       pue=st.floats(1.0, 3.0))
def test_energy_linear_in_hours(hours, tdp, k, pue):
    assert costs.energy_kwh(hours * k, tdp, 1.8, 0.75, pue) == pytest.approx(
        k * costs.energy_kwh(hours, tdp, 1.8, 0.75, pue), rel=1e-9)


@given(capex=st.floats(1e5, 1e10), opex=st.floats(0, 1e7), gpus=st.integers(1, 100_000),
       p1=st.floats(0.1, 20), p2=st.floats(0.1, 20), util=fraction)
def test_breakeven_falls_as_rental_price_rises(capex, opex, gpus, p1, p2, util):
    lo, hi = sorted((p1, p2))
    assert costs.breakeven_months(capex, opex, gpus, hi, util) <= costs.breakeven_months(
        capex, opex, gpus, lo, util) * (1 + 1e-12)


@given(n1=st.integers(1, 1_000_000), n2=st.integers(1, 1_000_000))
def test_scaling_efficiency_decreases_with_cluster_size(n1, n2):
    lo, hi = sorted((n1, n2))
    e_lo, e_hi = costs.scaling_efficiency(lo), costs.scaling_efficiency(hi)
    assert 0 < e_hi <= e_lo <= 1


@given(write=st.floats(1e-3, 1.0), mtbf=st.floats(0.1, 1e4), restart=st.floats(0, 1.0))
def test_goodput_is_a_fraction_and_daly_is_near_young(write, mtbf, restart):
    tau = costs.checkpoint_interval_hours(write, mtbf)
    assert 0 < tau <= mtbf * (1 + 1e-9)
    assert 0.0 <= costs.goodput_fraction(tau, write, restart, mtbf) <= 1.0
    if write < 0.01 * mtbf:
        assert tau == pytest.approx(costs.young_interval_hours(write, mtbf), rel=0.1)


# ----------------------------------------------------------------------------- serving ---

SERVING_CHIPS = ("v100", "a100", "h100-sxm", "h20", "h200", "b200", "mi300x", "ascend-910b",
                 "tpu-v5e")


def _chips(*ids):
    catalog = load_catalog()
    return [catalog[i] for i in ids]


def test_decode_step_is_the_roofline_of_weights_kv_and_flop():
    """N = 1e9 at 2 bytes, 10 sequences x 1,000 tokens x 100 kB of KV on one 1 TB/s, 100 TFLOP/s
    chip at full efficiency: 2 GB + 1 GB read in 3 ms; 10 x 2 GFLOP in 0.2 ms; memory-bound."""
    step = costs.decode_step(10, 1e9, 2.0, 1e5, 1_000, 1, 1_000, 1e14, 1.0, 1.0)
    assert step.memory_seconds == pytest.approx(3e-3)
    assert step.compute_seconds == pytest.approx(2e-4)
    assert step.step_seconds == pytest.approx(3e-3)  # the longer of the two: they overlap
    assert step.tokens_per_second == pytest.approx(10 / 3e-3)
    # splitting the replica over 4 chips divides both times by 4
    four = costs.decode_step(10, 1e9, 2.0, 1e5, 1_000, 4, 1_000, 1e14, 1.0, 1.0)
    assert four.step_seconds == pytest.approx(step.step_seconds / 4)
    # half the efficiency, twice the time
    slow = costs.decode_step(10, 1e9, 2.0, 1e5, 1_000, 1, 1_000, 1e14, 0.5, 1.0)
    assert slow.memory_seconds == pytest.approx(6e-3)
    # a mixture of experts reads all weights but computes with its active ones
    moe = costs.decode_step(10, 1e9, 2.0, 1e5, 1_000, 1, 1_000, 1e14, 1.0, 1.0, active_params=1e8)
    assert moe.memory_seconds == pytest.approx(step.memory_seconds)
    assert moe.compute_seconds == pytest.approx(step.compute_seconds / 10)


def test_70b_bf16_on_h100_replica_and_memory_batch():
    """140 GB of weights need 2 H100s at 90% of 80 GB (72 GB each), i.e. one 8-GPU server; the
    other 436 GB hold 324 sequences of 4,096 tokens x 327,680 bytes (1.34 GB each)."""
    w = costs.ServingWorkload()
    assert w.weight_bytes == pytest.approx(140e9)
    assert w.kv_bytes_per_sequence == pytest.approx(4_096 * 327_680)
    assert costs.replica_chips(w.weight_bytes, 80, 0.9) == 2
    assert costs.replica_chips(w.weight_bytes, 80, 0.9, chips_per_server=8) == 8
    assert costs.replica_chips(w.weight_bytes, 16, 0.9, chips_per_server=8) == 16  # TPU v5e
    assert costs.max_batch_in_memory(w.weight_bytes, w.kv_bytes_per_sequence, 80, 8, 0.9) == 324
    assert costs.max_batch_in_memory(w.weight_bytes, w.kv_bytes_per_sequence, 80, 2, 0.9) == 2
    assert costs.max_batch_in_memory(w.weight_bytes, w.kv_bytes_per_sequence, 80, 1, 0.9) == 0


def test_best_batch_is_the_largest_within_memory_and_latency():
    """Tokens/s never fall with the batch (the weight read is shared), so the chosen batch is
    the largest feasible one: one more sequence breaks the memory or the latency bound."""
    w = costs.ServingWorkload()
    for chip in _chips(*SERVING_CHIPS):
        t = costs.chip_serving_throughput(chip, w)
        peak = chip.peak_flop_per_s
        assert t.step_seconds <= w.max_step_seconds * (1 + 1e-9)
        assert t.batch <= t.batch_memory_max
        over = costs.decode_step(t.batch + 1, w.params, w.bytes_per_param, w.kv_bytes_per_token,
                                 w.context_tokens, t.chips_per_replica,
                                 chip.memory_bandwidth_gbps, peak, w.bandwidth_efficiency,
                                 w.compute_efficiency)
        assert (t.batch + 1 > t.batch_memory_max
                or over.step_seconds > w.max_step_seconds), chip.id
        rates = [costs.decode_step(b, w.params, w.bytes_per_param, w.kv_bytes_per_token,
                                   w.context_tokens, t.chips_per_replica,
                                   chip.memory_bandwidth_gbps, peak, w.bandwidth_efficiency,
                                   w.compute_efficiency).tokens_per_second
                 for b in range(1, int(t.batch) + 1, max(int(t.batch) // 7, 1))]
        assert rates == sorted(rates), chip.id
        assert t.tokens_per_chip_hour == pytest.approx(
            t.batch / t.step_seconds / t.chips_per_replica * 3_600)


def test_serving_h100e_of_the_default_workload():
    """Llama 2 70B in BF16 at 4k context and 50 ms per token: the H100 is 1 by construction,
    the H20 (148 TFLOP/s, 4.0 TB/s, 96 GB) serves at more than twice its 0.15 training H100e,
    the H200 and B200 beat the H100 on bandwidth and memory, and the V100 trails."""
    ids = ("h100-sxm", "h20", "h200", "b200", "v100")
    h100, h20, h200, b200, v100 = _chips(*ids)
    serving = dict(zip(ids, costs.serving_h100e([h100, h20, h200, b200, v100])))
    assert serving["h100-sxm"] == pytest.approx(1.0)
    assert costs.serving_h100e(h100) == pytest.approx(1.0)  # the catalog's H100 = the reference
    assert serving["h20"] > 2 * h20.h100e
    assert 0.25 < serving["h20"] < 0.6
    assert serving["h200"] > 1.3 and serving["b200"] > serving["h200"]
    assert serving["b200"] > b200.h100e  # 8 TB/s and 192 GB count for more than its FLOP
    assert serving["v100"] < 0.2
    # H200 = H100 compute with more bandwidth and memory: the gain is bandwidth, not FLOP
    assert serving["h200"] > h200.h100e


def test_h20_is_memory_bound_at_small_batch_and_compute_bound_when_filled():
    """The H20's ridge point is low (74 TFLOP/s achieved over 3.2 TB/s = 23 FLOP/byte): a few
    sequences are bandwidth-bound, the latency-filled batch is compute-bound, and memory-heavy
    work (longer contexts) raises its serving value while the H100's batch shrinks."""
    (h20,) = _chips("h20")
    w = costs.ServingWorkload()
    small = costs.decode_step(8, w.params, w.bytes_per_param, w.kv_bytes_per_token,
                              w.context_tokens, 8, h20.memory_bandwidth_gbps,
                              h20.peak_flop_per_s, w.bandwidth_efficiency, w.compute_efficiency)
    assert small.memory_seconds > small.compute_seconds
    t = costs.chip_serving_throughput(h20, w)
    assert t.bound == "compute" and t.batch_limit == "latency"
    h100_default = costs.chip_serving_throughput(_chips("h100-sxm")[0], w)
    assert h100_default.bound == "memory" and h100_default.batch_limit == "memory capacity"
    long = costs.ServingWorkload(context_tokens=8_192)
    assert costs.serving_h100e(h20, long) > costs.serving_h100e(h20, w)
    assert costs.serving_h100e(h20, long) > 0.5


def test_a_compute_starved_chip_is_compute_bound_at_large_batch():
    """A chip with 50 TFLOP/s and 4 TB/s: bandwidth-bound at batch 1, compute-bound once the
    batch fills; a FLOP-rich chip with little bandwidth stays memory-bound."""
    w = costs.ServingWorkload(max_step_seconds=1.0)  # let memory, not latency, set the batch
    starved = costs.ServingSpecs(memory_gb=96, memory_bandwidth_gbps=4_000, dense_tflops_bf16=50)
    rich = costs.ServingSpecs(memory_gb=96, memory_bandwidth_gbps=1_000, dense_tflops_bf16=5_000)
    t = costs.chip_serving_throughput(starved, w)
    assert t.bound == "compute" and t.batch == t.batch_memory_max
    one = costs.decode_step(1, w.params, w.bytes_per_param, w.kv_bytes_per_token,
                            w.context_tokens, 8, 4_000, 50e12, w.bandwidth_efficiency,
                            w.compute_efficiency)
    assert one.memory_seconds > one.compute_seconds
    assert costs.chip_serving_throughput(rich, w).bound == "memory"
    # compute-bound: tokens per chip-second are the achieved FLOP over 2N
    assert t.tokens_per_second_per_chip == pytest.approx(50e12 * 0.5 / (2 * 70e9))


def test_serving_is_vectorized_over_chips_and_matches_one_by_one():
    chips = _chips(*SERVING_CHIPS)
    w = costs.ServingWorkload()
    many = costs.chip_serving_throughput(chips, w)
    assert isinstance(many.tokens_per_chip_hour, np.ndarray)
    assert many.tokens_per_chip_hour.shape == (len(chips),) and many.bound.shape == (len(chips),)
    for i, chip in enumerate(chips):
        one = costs.serving_tokens_per_chip_hour(chip, w)
        assert isinstance(one, float)
        assert one == pytest.approx(many.tokens_per_chip_hour[i])
    specs = costs.serving_specs(chips)
    arrays = costs.serving_throughput(specs.memory_gb, specs.memory_bandwidth_gbps,
                                      specs.peak_flop_per_s("bf16"), w)
    np.testing.assert_allclose(arrays.tokens_per_chip_hour, many.tokens_per_chip_hour)


def test_h100_reference_specs_are_the_catalogs():
    (h100,) = _chips("h100-sxm")
    ref = costs.H100_SXM_SERVING_SPECS
    assert (ref.memory_gb, ref.memory_bandwidth_gbps, ref.dense_tflops_bf16,
            ref.dense_tflops_fp8) == (h100.memory_gb, h100.memory_bandwidth_gbps,
                                      h100.dense_throughput["bf16"], h100.dense_throughput["fp8"])


def test_fp8_work_runs_at_bf16_on_a_chip_without_fp8():
    a100, h100 = _chips("a100", "h100-sxm")
    specs = costs.serving_specs([a100, h100])
    np.testing.assert_allclose(specs.peak_flop_per_s("fp8"), [312e12, 1978.9e12])
    fp8 = costs.ServingWorkload(bytes_per_param=1.0, kv_bytes_per_token=163_840,
                                precision="fp8")
    # halving the bytes read more than doubles the H100's batch room and its throughput
    assert costs.serving_tokens_per_chip_hour(h100, fp8) > 2 * costs.serving_tokens_per_chip_hour(
        h100)
    with pytest.raises(InputError, match="unknown precision 'fp4'; known: bf16, fp8"):
        specs.peak_flop_per_s("fp4")


def test_nothing_fits_serves_nothing_and_costs_infinity():
    """A latency bound shorter than reading the weights leaves no batch at all."""
    (v100,) = _chips("v100")
    tight = costs.ServingWorkload(max_step_seconds=0.02)
    t = costs.chip_serving_throughput(v100, tight)
    assert t.batch == 0 and t.tokens_per_chip_hour == 0 and t.batch_limit == "nothing fits"
    assert math.isinf(costs.serving_usd_per_million_tokens(1.0, t.tokens_per_chip_hour))
    assert costs.serving_usd_per_million_tokens(2.0, 4e6) == pytest.approx(0.5)


@pytest.mark.parametrize("field, value, message", [
    ("compute_efficiency", 1.5, "compute_efficiency must be in (0, 1]"),
    ("bandwidth_efficiency", 0.0, "bandwidth_efficiency must be in (0, 1]"),
    ("memory_usable_share", float("nan"), "memory_usable_share must be in (0, 1]"),
    ("params", -1.0, "params must be a finite number > 0"),
    ("max_step_seconds", 0.0, "max_step_seconds must be a finite number > 0"),
    ("chips_per_server", 0, "chips_per_server must be a whole number >= 1"),
    ("active_params", 1e12, "active_params must be in (0, params]"),
    ("precision", "int4", "unknown precision 'int4'; known: bf16, fp8"),
])
def test_serving_workload_refuses_bad_inputs(field, value, message):
    with pytest.raises(InputError, match=re.escape(message)):
        costs.ServingWorkload(**{field: value})


@given(bw1=st.floats(100, 20_000), bw2=st.floats(100, 20_000), tf1=st.floats(10, 10_000),
       tf2=st.floats(10, 10_000), mem=st.floats(16, 300))
def test_more_bandwidth_or_flop_never_serves_fewer_tokens(bw1, bw2, tf1, tf2, mem):
    (bw_lo, bw_hi), (tf_lo, tf_hi) = sorted((bw1, bw2)), sorted((tf1, tf2))
    w = costs.ServingWorkload()
    base = costs.serving_throughput(mem, bw_lo, tf_lo * 1e12, w).tokens_per_chip_hour
    assert costs.serving_throughput(mem, bw_hi, tf_lo * 1e12, w).tokens_per_chip_hour >= base
    assert costs.serving_throughput(mem, bw_lo, tf_hi * 1e12, w).tokens_per_chip_hour >= base

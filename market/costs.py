"""Deterministic cost core: compute, GPU-hours, money, energy, carbon and reliability.

Pure functions of numbers or numpy arrays (broadcasting like numpy); a scalar in gives a
Python float out. No randomness, no I/O, no Mesa. Each quantity carries its unit in its name
and, in brackets, in the docstring. The agents and the CLI both call these functions.

Units used throughout: FLOP (floating-point operations), FLOP/s, hours [h], days [d],
USD, watts [W], megawatts [MW], kilowatt-hours [kWh], megawatt-hours [MWh], tonnes of CO2 [t].
A "GPU-hour" is one accelerator (GPU or TPU chip) held for one hour [GPU·h].

References
----------
[Kaplan2020] Kaplan et al., Scaling Laws for Neural Language Models, arXiv:2001.08361 (C = 6ND
    for training; 2N FLOP per token for a forward pass).
[Cottier2024] Cottier, Rahman, Fattorini, Maslej, Owen, The rising costs of training frontier
    AI models, arXiv:2405.21015, and its code github.com/epoch-research/training-cost-trends
    (cost_estimation.py, energy.py, constants.py): MFU 0.375, value decline 0.14 OOM/yr,
    interconnect 19% of cluster cost, server power multipliers, average draw, PUE.
[Young1974] J. W. Young, A first order approximation to the optimum checkpoint interval,
    Commun. ACM 17(9), 1974, doi:10.1145/361147.361115.
[Daly2006] J. T. Daly, A higher order estimate of the optimum checkpoint interval for restart
    dumps, Future Generation Computer Systems 22(3), 2006, doi:10.1016/j.future.2004.11.016.
[Dubey2024] Dubey et al., The Llama 3 Herd of Models, arXiv:2407.21783 (419 unexpected
    interruptions in 54 days on 16,384 H100).
[Williams2009] S. Williams, A. Waterman, D. Patterson, Roofline: an insightful visual performance
    model for multicore architectures, Commun. ACM 52(4), 2009, doi:10.1145/1498765.1498785
    (attainable FLOP/s = min(peak, arithmetic intensity x bandwidth)).
[Pope2022] Pope et al., Efficiently Scaling Transformer Inference, arXiv:2211.05102 (decode is
    bound by reading the weights and the KV cache at small batch, by FLOP at large batch;
    per-step cost of weight loading is shared by the batch).
[Touvron2023] Touvron et al., Llama 2: Open Foundation and Fine-Tuned Chat Models,
    arXiv:2307.09288 (70B: 80 layers, grouped-query attention with 8 KV heads of 128, 4,096
    tokens of context, weights released in BF16).
[MLPerf] MLCommons MLPerf Inference: v4.0 (2024) introduced the Llama 2 70B benchmark with a
    200 ms time-per-output-token limit in the server scenario; v5.0 (2025) added an interactive
    variant with a 5x shorter limit (40 ms). mlcommons.org/2025/04/llm-inference-v5.
[vLLM] Kwon et al., Efficient Memory Management for Large Language Model Serving with
    PagedAttention, SOSP 2023, arXiv:2309.06180; vLLM's engine argument
    `gpu_memory_utilization` defaults to 0.9 (the share of device memory the weights and KV
    cache may use; activations, runtime and fragmentation take the rest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from market.errors import InputError

# --------------------------------------------------------------------------- constants ---

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
#: Julian year [h], as Epoch's cost code uses (365.25 x 24).
HOURS_PER_YEAR = 8766.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0
#: One petaflop/s-day of work [FLOP]: 1e15 FLOP/s x 86,400 s.
FLOP_PER_PFLOP_S_DAY = 1e15 * 86_400.0

#: Model FLOP utilization imputed when unknown: median of 33 known runs [Cottier2024].
DEFAULT_MFU = 0.375
#: Hardware value decline [1/yr]: ML-GPU price-performance improves 0.14 orders of magnitude
#: per year, so r = 0.14 ln 10 = 0.322/yr [Cottier2024].
HARDWARE_VALUE_DECLINE_PER_YEAR = 0.14 * math.log(10.0)
#: Cluster interconnect as a share of total cluster hardware cost [fraction] [Cottier2024].
INTERCONNECT_SHARE = 0.19
#: Average fraction of server TDP drawn by GPU servers [fraction] [Cottier2024].
AVG_POWER_FRACTION_GPU = 0.75
#: Average fraction of server TDP drawn by TPU servers [fraction] [Cottier2024].
AVG_POWER_FRACTION_TPU = 0.43
#: PUE of hyperscaler datacenters (Google, Microsoft, Amazon, Meta) [Cottier2024].
PUE_HYPERSCALER = 1.1
#: PUE of other AI datacenters [Cottier2024]; the all-datacenter average is ~1.58
#: (Uptime Institute 2023).
PUE_OTHER = 1.25
#: US average industrial electricity price, 2023 [USD/kWh] (EIA, as used by [Cottier2024]).
ELECTRICITY_USD_PER_KWH_US_2023 = 0.0806
#: US grid average carbon intensity [kg CO2/kWh]: EIA, about 0.81 lb CO2/kWh in 2023.
GRID_KG_CO2_PER_KWH_US = 0.367

#: Llama 3 405B reliability snapshot [Dubey2024]: 419 unexpected interruptions in 54 days on
#: 16,384 H100s, i.e. a job MTBF of 3.09 h.
LLAMA3_INTERRUPTIONS = 419
LLAMA3_SNAPSHOT_HOURS = 54 * 24.0
LLAMA3_GPUS = 16_384
#: Per-GPU mean time between job-interrupting failures [GPU·h]: 3.09 h x 16,384 = 50,700
#: (about 5.8 years), from the Llama 3 snapshot above.
PER_GPU_MTBF_HOURS = LLAMA3_SNAPSHOT_HOURS / LLAMA3_INTERRUPTIONS * LLAMA3_GPUS

#: Loaded annual cost of one datacenter staff member [USD/yr]: the low end of Cottier et al.'s
#: compensation range (USD 200k) times their lowest overhead factor (1.25) [Cottier2024].
STAFF_COST_USD_PER_YEAR = 200_000.0 * 1.25
#: Datacenter shell, power and cooling build cost per MW of facility power [USD/MW]. Industry
#: cost guides (JLL, Cushman & Wakefield, 2024) report roughly USD 10-12M per MW; low confidence.
FACILITY_USD_PER_MW = 10e6

#: Points the scaling-efficiency curve passes through: (GPUs, throughput per GPU relative to a
#: single node). About 90% at 1,000 GPUs and 70% at 10,000; Llama 3's 43% -> 40% MFU from 8,192
#: to 16,384 H100s (a 7% loss, [CAL 7.6]) falls close to the curve's 12%.
SCALING_CALIBRATION_POINTS = ((1_000, 0.90), (10_000, 0.70))


def _out(x):
    """Return a Python float for 0-d results, the array otherwise."""
    arr = np.asarray(x, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


# ----------------------------------------------------------------------------- compute ---

def training_flop(params: ArrayLike, tokens: ArrayLike) -> float | np.ndarray:
    """Training compute of a dense transformer, C = 6 N D [FLOP].

    Parameters
    ----------
    params : parameters N (activated parameters per token for mixture-of-experts) [-]
    tokens : training tokens D [-]

    References: [Kaplan2020] section 2.1 (2N forward + 4N backward FLOP per token).
    """
    return _out(6.0 * _arr(params) * _arr(tokens))


def inference_flop_per_token(params: ArrayLike) -> float | np.ndarray:
    """Forward-pass compute per generated token, 2 N [FLOP/token] [Kaplan2020]."""
    return _out(2.0 * _arr(params))


def pflop_s_days(flop: ArrayLike) -> float | np.ndarray:
    """Work expressed in petaflop/s-days [PFLOP/s·d]: flop / (1e15 x 86,400).

    A petaflop/s-day is a unit of *work*, not of GPU time: GPT-3's 3,640 PFLOP/s-days is
    3.14e23 FLOP, i.e. about 11,650 A100-days at 100% utilization.
    """
    return _out(_arr(flop) / FLOP_PER_PFLOP_S_DAY)


def gpu_hours(flop: ArrayLike, peak_flop_per_s: ArrayLike,
              mfu: ArrayLike = DEFAULT_MFU) -> float | np.ndarray:
    """Accelerator time to perform `flop` at a model FLOP utilization [GPU·h].

    gpu_hours = flop / (peak_flop_per_s x mfu) / 3,600   [Cottier2024, chip-hours method]

    Parameters
    ----------
    flop : work [FLOP]
    peak_flop_per_s : dense peak of one accelerator at the training precision [FLOP/s]
    mfu : achieved fraction of that peak, in (0, 1]; default 0.375, Epoch's median [-]
    """
    return _out(_arr(flop) / (_arr(peak_flop_per_s) * _arr(mfu)) / SECONDS_PER_HOUR)


def _scaling_curve() -> tuple[float, float]:
    """Solve eta(n) = 1 / (1 + (n / n0)^alpha) through the two calibration points."""
    (n1, e1), (n2, e2) = SCALING_CALIBRATION_POINTS
    odds1, odds2 = 1.0 / e1 - 1.0, 1.0 / e2 - 1.0
    alpha = math.log(odds2 / odds1) / math.log(n2 / n1)
    n0 = n1 / odds1 ** (1.0 / alpha)
    return n0, alpha


SCALING_N0_GPUS, SCALING_ALPHA = _scaling_curve()


def scaling_efficiency(gpus: ArrayLike) -> float | np.ndarray:
    """Throughput per GPU at `gpus` relative to one node, eta(n) = 1 / (1 + (n/n0)^alpha) [-].

    A logistic-in-log-n curve (Amdahl-like loss that grows with the communication share),
    fitted through SCALING_CALIBRATION_POINTS: 90% at 1,000 GPUs, 70% at 10,000 GPUs
    (n0 = 42,400 GPUs, alpha = 0.586). It tends to 1 for one node and falls slowly beyond
    100k GPUs (38%), where real clusters change parallelism strategy.
    """
    n = _arr(gpus)
    return _out(1.0 / (1.0 + (n / SCALING_N0_GPUS) ** SCALING_ALPHA))


def cluster_gpu_hours(gpu_hours_at_mfu: ArrayLike, gpus: ArrayLike) -> float | np.ndarray:
    """GPU-hours a cluster of `gpus` is held to deliver `gpu_hours_at_mfu` of work [GPU·h].

    cluster_gpu_hours = gpu_hours_at_mfu / scaling_efficiency(gpus): the MFU is taken as the
    single-node figure and the scale-out loss comes on top.
    """
    return _out(_arr(gpu_hours_at_mfu) / _arr(scaling_efficiency(gpus)))


def wall_clock_days(held_gpu_hours: ArrayLike, gpus: ArrayLike) -> float | np.ndarray:
    """Calendar time for `gpus` accelerators to accumulate `held_gpu_hours` [d]."""
    return _out(_arr(held_gpu_hours) / _arr(gpus) / HOURS_PER_DAY)


# ------------------------------------------------------------------------------ money ---

def rental_cost_usd(gpu_hours_rented: ArrayLike,
                    price_usd_per_gpu_hour: ArrayLike) -> float | np.ndarray:
    """Cloud rental cost [USD] = GPU-hours rented [GPU·h] x price [USD/(GPU·h)].

    Epoch's cloud method [Cottier2024] uses the 3-year committed-use price; on-demand list
    prices are 2-4x higher [CAL 3] (docs/calibration.md).
    """
    return _out(_arr(gpu_hours_rented) * _arr(price_usd_per_gpu_hour))


def idle_cost_usd(gpu_hours_rented: ArrayLike, price_usd_per_gpu_hour: ArrayLike,
                  utilization: ArrayLike) -> float | np.ndarray:
    """Part of a rental bill that pays for idle time [USD] = hours x price x (1 - utilization).

    Example: USD 5/h for 30 days is USD 3,600; at 30% utilization USD 2,520 of it is idle.
    """
    return _out(_arr(gpu_hours_rented) * _arr(price_usd_per_gpu_hour) * (1.0 - _arr(utilization)))


def acquisition_cost_usd(n_chips: ArrayLike, hardware_price_usd: ArrayLike,
                         interconnect_share: ArrayLike = INTERCONNECT_SHARE
                         ) -> float | np.ndarray:
    """Purchase cost of a cluster including interconnect [USD] = N x P_hw / (1 - share).

    Parameters
    ----------
    n_chips : accelerators [-]
    hardware_price_usd : price per accelerator including its server share [USD]
    interconnect_share : interconnect as a share of total cluster cost [-], default 0.19

    References: [Cottier2024] method 6.
    """
    return _out(_arr(n_chips) * _arr(hardware_price_usd) / (1.0 - _arr(interconnect_share)))


def amortized_hardware_cost_usd(chip_hours: ArrayLike, hardware_price_usd: ArrayLike,
                                value_decline_per_year: ArrayLike = HARDWARE_VALUE_DECLINE_PER_YEAR,
                                interconnect_share: ArrayLike = INTERCONNECT_SHARE
                                ) -> float | np.ndarray:
    """Hardware value used up by `chip_hours` of use, interconnect included [USD].

    cost = chip_hours x P_hw / (1 - share) x r / 8,766, with r the exponential decline of
    hardware value per year (0.322 = 0.14 orders of magnitude) [Cottier2024, methods 2-3].
    """
    per_chip = _arr(hardware_price_usd) / (1.0 - _arr(interconnect_share))
    return _out(_arr(chip_hours) * per_chip * _arr(value_decline_per_year) / HOURS_PER_YEAR)


def energy_kwh(chip_hours: ArrayLike, tdp_w: ArrayLike, server_power_multiplier: ArrayLike = 1.0,
               avg_power_fraction: ArrayLike = 1.0, pue: ArrayLike = 1.0) -> float | np.ndarray:
    """Facility energy for `chip_hours` of accelerator use [kWh].

    E = chip_hours x TDP x k_server x u x PUE / 1,000 [Cottier2024, method 4], with k_server
    the server power per chip over chip TDP (H100 1.82), u the average fraction of server
    TDP drawn (0.75 GPUs, 0.43 TPUs) and PUE the facility overhead (1.1 hyperscaler).
    """
    return _out(_arr(chip_hours) * _arr(tdp_w) * _arr(server_power_multiplier)
                * _arr(avg_power_fraction) * _arr(pue) / 1000.0)


def energy_cost_usd(energy_kwh_used: ArrayLike,
                    electricity_usd_per_kwh: ArrayLike) -> float | np.ndarray:
    """Electricity bill [USD] = energy [kWh] x price [USD/kWh]."""
    return _out(_arr(energy_kwh_used) * _arr(electricity_usd_per_kwh))


def carbon_t_co2(energy_kwh_used: ArrayLike, grid_kg_co2_per_kwh: ArrayLike) -> float | np.ndarray:
    """Operational emissions [t CO2] = energy [kWh] x grid intensity [kg CO2/kWh] / 1,000."""
    return _out(_arr(energy_kwh_used) * _arr(grid_kg_co2_per_kwh) / 1000.0)


@dataclass(frozen=True)
class OwnedHourCost:
    """Cost of one useful hour of an owned accelerator [USD/(GPU·h)], by component."""

    hardware_usd_per_gpu_hour: float | np.ndarray
    energy_usd_per_gpu_hour: float | np.ndarray

    @property
    def total_usd_per_gpu_hour(self) -> float | np.ndarray:
        return _out(_arr(self.hardware_usd_per_gpu_hour) + _arr(self.energy_usd_per_gpu_hour))


def owned_cost_per_gpu_hour(hardware_price_usd: ArrayLike, tdp_w: ArrayLike,
                            server_power_multiplier: ArrayLike, avg_power_fraction: ArrayLike,
                            pue: ArrayLike = PUE_HYPERSCALER,
                            electricity_usd_per_kwh: ArrayLike = ELECTRICITY_USD_PER_KWH_US_2023,
                            utilization: ArrayLike = 1.0,
                            value_decline_per_year: ArrayLike = HARDWARE_VALUE_DECLINE_PER_YEAR,
                            interconnect_share: ArrayLike = INTERCONNECT_SHARE) -> OwnedHourCost:
    """Amortized hardware plus energy per *useful* accelerator-hour (Epoch method) [USD/(GPU·h)].

    Both components of one held hour are divided by `utilization`, as Cottier et al. scale
    their cost when a cluster is not fully used. An H100 at USD 33,750 with server, 19%
    interconnect, r = 0.322/yr, k = 1.82, u = 0.75, PUE 1.1 and USD 0.0806/kWh costs about
    USD 1.53 + 0.085 = 1.62 per hour at full utilization and USD 2.31 at 70%.
    """
    util = _arr(utilization)
    hw = amortized_hardware_cost_usd(1.0, hardware_price_usd, value_decline_per_year,
                                     interconnect_share)
    kwh = energy_kwh(1.0, tdp_w, server_power_multiplier, avg_power_fraction, pue)
    return OwnedHourCost(_out(_arr(hw) / util),
                         _out(_arr(energy_cost_usd(kwh, electricity_usd_per_kwh)) / util))


# ------------------------------------------------------------------------------ power ---

def power_mw(gpus: ArrayLike, tdp_w: ArrayLike, server_power_multiplier: ArrayLike = 1.0,
             avg_power_fraction: ArrayLike = 1.0, pue: ArrayLike = 1.0) -> float | np.ndarray:
    """Power draw of a fleet [MW] = GPUs x TDP x k_server x u x PUE / 1e6.

    With the defaults it is chip power only (10,000 A100 x 400 W = 4 MW); pass the server
    multiplier and PUE for the grid connection a site needs, and the average draw fraction for
    the mean load.
    """
    return _out(_arr(gpus) * _arr(tdp_w) * _arr(server_power_multiplier)
                * _arr(avg_power_fraction) * _arr(pue) / 1e6)


def energy_mwh(power_mw_drawn: ArrayLike, hours: ArrayLike) -> float | np.ndarray:
    """Energy [MWh] = power [MW] x duration [h] (1,000 H100 x 700 W x PUE 1.5 for a year:
    1.05 MW x 8,766 h = 9,204 MWh)."""
    return _out(_arr(power_mw_drawn) * _arr(hours))


# ------------------------------------------------------------------ cluster economics ---

@dataclass(frozen=True)
class CapexBreakdown:
    """One-off cost of building a cluster [USD], by component."""

    accelerators_usd: float | np.ndarray
    servers_usd: float | np.ndarray
    interconnect_usd: float | np.ndarray
    facility_usd: float | np.ndarray

    @property
    def total_usd(self) -> float | np.ndarray:
        return _out(_arr(self.accelerators_usd) + _arr(self.servers_usd)
                    + _arr(self.interconnect_usd) + _arr(self.facility_usd))


def cluster_capex(gpus: ArrayLike, unit_price_usd: ArrayLike, server_price_multiplier: ArrayLike,
                  facility_power_mw: ArrayLike, facility_usd_per_mw: ArrayLike = FACILITY_USD_PER_MW,
                  interconnect_share: ArrayLike = INTERCONNECT_SHARE) -> CapexBreakdown:
    """Capital cost of a cluster [USD]: accelerators, rest of the servers, interconnect, facility.

    accelerators = N x chip price; servers = N x chip price x (k_price - 1); interconnect =
    share / (1 - share) of the two [Cottier2024, method 3]; facility = facility MW x cost per
    MW (pass 0 when the cluster is placed in leased colocation space).
    """
    chips = _arr(gpus) * _arr(unit_price_usd)
    servers = chips * (_arr(server_price_multiplier) - 1.0)
    share = _arr(interconnect_share)
    interconnect = (chips + servers) * share / (1.0 - share)
    facility = _arr(facility_power_mw) * _arr(facility_usd_per_mw)
    return CapexBreakdown(_out(chips), _out(servers), _out(interconnect), _out(facility))


@dataclass(frozen=True)
class OpexBreakdown:
    """Recurring cost of running a cluster [USD/yr], by component."""

    energy_usd_per_year: float | np.ndarray
    staff_usd_per_year: float | np.ndarray

    @property
    def total_usd_per_year(self) -> float | np.ndarray:
        return _out(_arr(self.energy_usd_per_year) + _arr(self.staff_usd_per_year))


def cluster_opex_per_year(average_power_mw: ArrayLike, electricity_usd_per_kwh: ArrayLike,
                          staff: ArrayLike = 0.0,
                          staff_cost_usd_per_year: ArrayLike = STAFF_COST_USD_PER_YEAR
                          ) -> OpexBreakdown:
    """Annual running cost [USD/yr]: energy at the average facility draw, plus staff.

    energy = average MW x 8,766 h x 1,000 kWh/MWh x price; staff = headcount x loaded cost.
    """
    kwh = _arr(energy_mwh(average_power_mw, HOURS_PER_YEAR)) * 1000.0
    return OpexBreakdown(_out(kwh * _arr(electricity_usd_per_kwh)),
                         _out(_arr(staff) * _arr(staff_cost_usd_per_year)))


def tco_usd(capex_usd: ArrayLike, opex_usd_per_year: ArrayLike, years: ArrayLike,
            discount_rate: ArrayLike = 0.0) -> float | np.ndarray:
    """Total cost of ownership over `years` [USD] = capex + sum of discounted annual opex.

    With discount_rate 0 it is capex + years x opex (USD 600M + 3 x 150M = 1.05B). Opex is
    paid at the end of each year: sum_{t=1..years} opex / (1 + rate)^t (whole years only).
    """
    rate, yrs = _arr(discount_rate), _arr(years)
    if np.any(yrs != np.floor(yrs)):
        raise ValueError("years must be whole years")
    annuity = np.where(rate == 0, yrs,
                       (1.0 - (1.0 + rate) ** -yrs) / np.where(rate == 0, 1.0, rate))
    return _out(_arr(capex_usd) + _arr(opex_usd_per_year) * annuity)


def breakeven_months(capex_usd: ArrayLike, opex_usd_per_month: ArrayLike, gpus: ArrayLike,
                     rental_usd_per_gpu_hour: ArrayLike, utilization: ArrayLike = 1.0
                     ) -> float | np.ndarray:
    """Months after which building is cheaper than renting the same useful hours [months].

    Renting the hours the owned cluster would actually use costs
    gpus x 730.5 h x utilization x rental price per month; building costs capex up front plus
    opex per month. Breakeven = capex / (monthly rental - monthly opex); infinite when renting
    costs no more than running one's own cluster.
    """
    rent = _arr(gpus) * HOURS_PER_MONTH * _arr(utilization) * _arr(rental_usd_per_gpu_hour)
    saving = rent - _arr(opex_usd_per_month)
    with np.errstate(divide="ignore", invalid="ignore"):
        months = np.where(saving > 0, _arr(capex_usd) / np.where(saving > 0, saving, 1.0), np.inf)
    return _out(months)


# ------------------------------------------------------------------------ reliability ---

def mtbf_from_interruptions(interruptions: ArrayLike, hours: ArrayLike) -> float | np.ndarray:
    """Mean time between interruptions observed over `hours` [h] (419 in 54 days: 3.09 h)."""
    return _out(_arr(hours) / _arr(interruptions))


def job_mtbf_hours(gpus: ArrayLike,
                   per_gpu_mtbf_hours: ArrayLike = PER_GPU_MTBF_HOURS) -> float | np.ndarray:
    """Mean time between failures of a job spanning `gpus` accelerators [h].

    Failures are independent and any one stops the job, so M_job = M_gpu / n. With the
    Llama 3 per-GPU figure (50,700 GPU·h) a 16,384-GPU job fails every 3.1 h [Dubey2024].
    """
    return _out(_arr(per_gpu_mtbf_hours) / _arr(gpus))


def interruptions_per_day(job_mtbf: ArrayLike) -> float | np.ndarray:
    """Expected job interruptions per day [1/d] = 24 / MTBF."""
    return _out(HOURS_PER_DAY / _arr(job_mtbf))


def checkpoint_interval_hours(checkpoint_write_hours: ArrayLike,
                              job_mtbf: ArrayLike) -> float | np.ndarray:
    """Optimal time between checkpoints [h] (Daly's higher-order form of Young's sqrt(2 delta M)).

    tau = sqrt(2 delta M) [1 + sqrt(delta / 2M) / 3 + delta / (18 M)] - delta for delta < 2M,
    else M [Daly2006, eq. 37]; the leading term is Young's first-order optimum [Young1974].
    Llama 3 (M = 3.09 h) with a 1-minute write: 19.3 min by Young, 18.6 min by Daly.
    """
    d, m = _arr(checkpoint_write_hours), _arr(job_mtbf)
    x = d / (2.0 * m)
    tau = np.sqrt(2.0 * d * m) * (1.0 + np.sqrt(x) / 3.0 + x / 9.0) - d
    return _out(np.where(d < 2.0 * m, tau, m))


def young_interval_hours(checkpoint_write_hours: ArrayLike, job_mtbf: ArrayLike
                         ) -> float | np.ndarray:
    """Young's first-order optimal checkpoint interval sqrt(2 delta M) [h] [Young1974]."""
    return _out(np.sqrt(2.0 * _arr(checkpoint_write_hours) * _arr(job_mtbf)))


def goodput_fraction(checkpoint_interval: ArrayLike, checkpoint_write_hours: ArrayLike,
                     restart_hours: ArrayLike, job_mtbf: ArrayLike) -> float | np.ndarray:
    """Fraction of held time doing useful training [-], first-order model.

    lost = delta / tau (writing checkpoints) + (tau / 2 + R) / M (recomputing half an interval
    and restarting after each failure); goodput = 1 - lost, clipped to [0, 1]
    [Young1974; Daly2006]. Llama 3 figures (M = 3.1 h, delta = 1 min, R = 10 min) give ~85%.
    """
    tau, d = _arr(checkpoint_interval), _arr(checkpoint_write_hours)
    lost = d / tau + (tau / 2.0 + _arr(restart_hours)) / _arr(job_mtbf)
    return _out(np.clip(1.0 - lost, 0.0, 1.0))


# -------------------------------------------------------------------------- inference ---

@dataclass(frozen=True)
class InferenceFleet:
    """Accelerators needed to serve a token stream, and why."""

    flop_per_day: float | np.ndarray
    flop_per_s: float | np.ndarray
    gpus_compute_exact: float | np.ndarray  #: fractional GPUs the FLOP rate needs at `utilization`
    gpus_compute_floor: float | np.ndarray  #: whole GPUs for the average FLOP rate
    gpus_memory_floor: float | np.ndarray   #: GPUs to hold one copy of the weights
    gpus_needed: float | np.ndarray         #: whole replicas covering peak load


def inference_fleet(params: ArrayLike, tokens_per_day: ArrayLike, peak_flop_per_s: ArrayLike,
                    memory_gb_per_gpu: ArrayLike, utilization: ArrayLike = 0.3,
                    peak_factor: ArrayLike = 2.0, bytes_per_param: ArrayLike = 2.0,
                    memory_overhead_fraction: ArrayLike = 0.0) -> InferenceFleet:
    """Size an inference fleet from compute and memory floors [GPUs].

    flop/s = 2N x tokens/day / 86,400 [Kaplan2020]; compute floor = ceil(flop/s / (peak x u));
    memory floor = ceil(N x bytes x (1 + overhead) / memory) GPUs per model replica;
    needed = whole replicas covering compute floor x peak factor (at least one replica).

    Example [CAL 8.2]: 1e8 requests x 50 tokens x 350 GFLOP = 1.75e21 FLOP/day =
    20 PFLOP/s = 65 A100s at 100% and ~220 at 30%; the weights (350 GB) need 5 A100-80GB.
    Serving load peaks at 2-3x its average, hence the default peak factor of 2.
    """
    flop_day = _arr(params) * 2.0 * _arr(tokens_per_day)
    flop_s = flop_day / 86_400.0
    exact = flop_s / (_arr(peak_flop_per_s) * _arr(utilization))
    compute_floor = np.ceil(exact - 1e-9)
    weights_gb = _arr(params) * _arr(bytes_per_param) * (1.0 + _arr(memory_overhead_fraction)) / 1e9
    memory_floor = np.maximum(np.ceil(weights_gb / _arr(memory_gb_per_gpu) - 1e-9), 1.0)
    replicas = np.maximum(np.ceil(exact * _arr(peak_factor) / memory_floor - 1e-9), 1.0)
    return InferenceFleet(_out(flop_day), _out(flop_s), _out(exact), _out(compute_floor),
                          _out(memory_floor), _out(replicas * memory_floor))


def usd_per_million_tokens(gpus: ArrayLike, usd_per_gpu_hour: ArrayLike,
                           tokens_per_day: ArrayLike) -> float | np.ndarray:
    """Serving cost [USD per 1e6 tokens] = GPUs x 24 h x price / tokens per day x 1e6."""
    return _out(_arr(gpus) * HOURS_PER_DAY * _arr(usd_per_gpu_hour) / _arr(tokens_per_day) * 1e6)


# ----------------------------------------------------------------------------- serving ---
#
# A roofline model of decoding a dense transformer [Williams2009; Pope2022]. One decode step
# produces one token for each of the B sequences of a batch. It reads every weight once and the
# KV cache of every sequence once (memory traffic), and does 2N FLOP per token [Kaplan2020]
# (compute). A replica of the model is tensor-parallel over `chips` chips, which split both the
# traffic and the FLOP evenly. The step takes the longer of the two times: kernels stream weights
# while the tensor cores work, so the two overlap, as the roofline assumes; the efficiency
# factors carry what the overlap and the kernels lose. Their sum would count every step as if
# nothing overlapped: a pessimistic bound, off by at most a factor of 2, and not the roofline's
# assumption [Williams2009].
#
# Left out: the attention-score FLOP (2 n_layer n_ctx d_attn per token [Kaplan2020], ~4% of 2N
# for a 70B model at 4k context), tensor-parallel all-reduces (carried by bandwidth_efficiency)
# and prefill (the prompt pass, compute-bound; this model prices generated tokens only).

#: Precisions whose dense peak a serving workload may compute at; a chip without a figure for
#: the precision computes at BF16 (weight-only quantization: weights stored narrow, math in BF16).
SERVING_PRECISIONS = ("bf16", "fp8")


@dataclass(frozen=True)
class ServingWorkload:
    """A model being served and the operating point of the server (the serving scenario inputs).

    Defaults: Llama 2 70B, MLPerf Inference v4.0's 2024 serving benchmark [MLPerf], in BF16.

    Fields
    ------
    params : parameters N [-]; 70e9, the nominal 70B (68.98e9 counted) [Touvron2023].
    bytes_per_param : weight precision [bytes/param]; 2 (BF16 as released) [Touvron2023]; 1 for
        FP8/INT8 serving, common on H100 by 2024.
    kv_bytes_per_token : KV cache per token of context [bytes]; 2 (K and V) x 80 layers x 8 KV
        heads x 128 x 2 bytes = 327,680 [Touvron2023]; half with an FP8 cache.
    context_tokens : tokens each sequence holds in its KV cache [-]; 4,096, Llama 2's window
        [Touvron2023], [A] range 1,000-32,000 (a chat turn ~1-2k; long-context RAG 32k+).
    max_step_seconds : latency bound, longest time per decode step (time per output token)
        [s]; 0.05 (20 tokens/s per user), [A] range 0.04-0.2: MLPerf's interactive limit 40 ms
        and its v4.0 server limit 200 ms [MLPerf].
    precision : math precision of the matmuls, "bf16" or "fp8" [-]; "bf16" with the weights.
    bandwidth_efficiency : achieved share of peak memory bandwidth in decode kernels [-]; 0.8,
        [A] range 0.6-0.9 (streaming kernels reach 80-90% of HBM peak; the rest is kernel
        launch, attention and all-reduce time).
    compute_efficiency : achieved share of the dense peak in decode matmuls [-]; 0.5, [A] range
        0.3-0.7 (above Epoch's 0.375 median training MFU [Cottier2024], which carries
        communication and recomputation, below the ~0.7 large GEMMs reach).
    memory_usable_share : share of device memory for weights and KV cache [-]; 0.9, vLLM's
        `gpu_memory_utilization` default [vLLM], [A] range 0.8-0.95.
    chips_per_server : chips of one server (scale-up domain) [-]; a replica is tensor-parallel
        over the fewest whole servers that hold the weights; 8, the NVLink domain of an HGX/DGX
        server, [A] range 1-8 (4-16 for TPU v5e slices, 72 on NVL72). Per-chip throughput
        cannot fall with more chips in this model (communication is not modelled), so a replica
        fills its servers rather than using the bare minimum of chips.
    active_params : parameters active per token, for the FLOP [-]; None for a dense model (all
        N). A mixture-of-experts model reads all N weights per step at serving batch sizes but
        does 2 x active FLOP per token (DeepSeek-V3: 671e9 total, 37e9 active).
    """

    params: float = 70e9
    bytes_per_param: float = 2.0
    kv_bytes_per_token: float = 2 * 80 * 8 * 128 * 2.0
    context_tokens: float = 4096.0
    max_step_seconds: float = 0.05
    precision: str = "bf16"
    bandwidth_efficiency: float = 0.8
    compute_efficiency: float = 0.5
    memory_usable_share: float = 0.9
    chips_per_server: int = 8
    active_params: float | None = None

    def __post_init__(self) -> None:
        for name in ("params", "bytes_per_param", "kv_bytes_per_token", "context_tokens",
                     "max_step_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"serving workload: {name} must be a finite number > 0, "
                                 f"got {value}")
        for name in ("bandwidth_efficiency", "compute_efficiency", "memory_usable_share"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1):
                raise InputError(f"serving workload: {name} must be in (0, 1], got {value}")
        if self.chips_per_server < 1 or self.chips_per_server != int(self.chips_per_server):
            raise InputError("serving workload: chips_per_server must be a whole number >= 1, "
                             f"got {self.chips_per_server}")
        if self.active_params is not None and not (
                math.isfinite(self.active_params) and 0 < self.active_params <= self.params):
            raise InputError("serving workload: active_params must be in (0, params], got "
                             f"{self.active_params}")
        if self.precision not in SERVING_PRECISIONS:
            raise InputError(f"serving workload: unknown precision {self.precision!r}; known: "
                             f"{', '.join(SERVING_PRECISIONS)}")

    @property
    def flop_params(self) -> float:
        """Parameters doing FLOP per token [-]: active_params, or all of them (dense)."""
        return self.params if self.active_params is None else self.active_params

    @property
    def weight_bytes(self) -> float:
        """Bytes of one copy of the weights [bytes] = N x bytes per parameter."""
        return self.params * self.bytes_per_param

    @property
    def kv_bytes_per_sequence(self) -> float:
        """KV cache of one sequence at full context [bytes] = k x C."""
        return self.kv_bytes_per_token * self.context_tokens


def replica_chips(weight_bytes: ArrayLike, memory_gb: ArrayLike,
                  memory_usable_share: ArrayLike = ServingWorkload.memory_usable_share,
                  chips_per_server: ArrayLike = 1) -> float | np.ndarray:
    """Chips a model replica is tensor-parallel over [chips].

    fewest = ceil(weights / (memory x usable share)), the fewest chips whose usable memory
    holds one copy of the weights (at least one); n = ceil(fewest / s) x s, the whole servers of
    s chips they take (s = 1: the fewest chips). memory_gb is decimal GB (1e9 bytes), as
    datasheets give it.
    """
    usable = _arr(memory_gb) * 1e9 * _arr(memory_usable_share)
    fewest = np.maximum(np.ceil(_arr(weight_bytes) / usable - 1e-9), 1.0)
    per_server = _arr(chips_per_server)
    return _out(np.ceil(fewest / per_server - 1e-9) * per_server)


def max_batch_in_memory(weight_bytes: ArrayLike, kv_bytes_per_sequence: ArrayLike,
                        memory_gb: ArrayLike, chips: ArrayLike,
                        memory_usable_share: ArrayLike = ServingWorkload.memory_usable_share
                        ) -> float | np.ndarray:
    """Largest batch whose KV caches fit the memory the weights leave [sequences].

    B_mem = floor((n x memory x usable share - weights) / (k x C)), at least 0 [Pope2022].
    """
    free = _arr(chips) * _arr(memory_gb) * 1e9 * _arr(memory_usable_share) - _arr(weight_bytes)
    return _out(np.maximum(np.floor(free / _arr(kv_bytes_per_sequence) + 1e-9), 0.0))


@dataclass(frozen=True)
class DecodeStep:
    """Times of one decode step of a replica [s] and its output rate."""

    memory_seconds: float | np.ndarray   #: reading weights + KV caches at achieved bandwidth
    compute_seconds: float | np.ndarray  #: B x 2N FLOP at achieved FLOP/s
    step_seconds: float | np.ndarray     #: max of the two (they overlap)
    tokens_per_second: float | np.ndarray  #: B / step, for the whole replica


def decode_step(batch: ArrayLike, params: ArrayLike, bytes_per_param: ArrayLike,
                kv_bytes_per_token: ArrayLike, context_tokens: ArrayLike, chips: ArrayLike,
                memory_bandwidth_gbps: ArrayLike, peak_flop_per_s: ArrayLike,
                bandwidth_efficiency: ArrayLike = ServingWorkload.bandwidth_efficiency,
                compute_efficiency: ArrayLike = ServingWorkload.compute_efficiency,
                active_params: ArrayLike | None = None) -> DecodeStep:
    """One decode step of a batch on a tensor-parallel replica [Williams2009; Pope2022].

    memory time  = (N b + B C k) / (n x bandwidth x e_bw)
    compute time = B x 2N_a / (n x peak x e_c)                      [Kaplan2020: 2N FLOP/token]
    step time    = max(memory, compute); tokens/s = B / step (whole replica, n chips)

    Parameters: batch B [sequences]; N [-]; b [bytes/param]; k [bytes per token]; C [tokens];
    n [chips]; bandwidth per chip [GB/s, 1e9 bytes/s]; peak per chip at the math precision
    [FLOP/s]; e_bw, e_c achieved shares in (0, 1] (see ServingWorkload for their ranges);
    N_a active parameters (None: N, a dense model).
    """
    b, n = _arr(batch), _arr(chips)
    bytes_read = _arr(params) * _arr(bytes_per_param) + b * _arr(context_tokens) * _arr(
        kv_bytes_per_token)
    memory_s = bytes_read / (n * _arr(memory_bandwidth_gbps) * 1e9 * _arr(bandwidth_efficiency))
    flop_params = _arr(params if active_params is None else active_params)
    compute_s = b * 2.0 * flop_params / (n * _arr(peak_flop_per_s) * _arr(compute_efficiency))
    step_s = np.maximum(memory_s, compute_s)
    return DecodeStep(_out(memory_s), _out(compute_s), _out(step_s), _out(b / step_s))


@dataclass(frozen=True)
class ServingThroughput:
    """Decode throughput of a chip at the best batch within memory and the latency bound."""

    chips_per_replica: float | np.ndarray   #: tensor-parallel chips of one replica
    batch: float | np.ndarray               #: sequences per step (0: nothing fits the bounds)
    batch_memory_max: float | np.ndarray    #: largest batch the free memory holds
    batch_latency_max: float | np.ndarray   #: largest batch within the latency bound
    memory_seconds: float | np.ndarray      #: memory time of the chosen step [s]
    compute_seconds: float | np.ndarray     #: compute time of the chosen step [s]
    step_seconds: float | np.ndarray        #: time per decode step [s]
    tokens_per_second_per_chip: float | np.ndarray
    tokens_per_chip_hour: float | np.ndarray

    @property
    def bound(self) -> str | np.ndarray:
        """Which roofline bound sets the step time: "compute" or "memory" (bandwidth)."""
        out = np.where(_arr(self.compute_seconds) > _arr(self.memory_seconds), "compute",
                       "memory")
        return str(out) if out.ndim == 0 else out

    @property
    def batch_limit(self) -> str | np.ndarray:
        """What caps the batch: "memory capacity", "latency", or "nothing fits" (not even one
        sequence fits the memory left or the latency bound)."""
        out = np.where(_arr(self.batch) < 1, "nothing fits",
                       np.where(_arr(self.batch_memory_max) <= _arr(self.batch_latency_max),
                                "memory capacity", "latency"))
        return str(out) if out.ndim == 0 else out


def serving_throughput(memory_gb: ArrayLike, memory_bandwidth_gbps: ArrayLike,
                       peak_flop_per_s: ArrayLike,
                       workload: ServingWorkload | None = None) -> ServingThroughput:
    """Tokens per second and per chip-hour of a chip serving `workload` [Pope2022].

    The replica spans n = replica_chips(...) chips. Tokens/s rises with the batch (the weight
    read is shared), so the best batch is the largest one that (a) fits the memory the weights
    leave, B_mem, and (b) keeps the step within the latency bound L:
        B_lat = min((L n BW e_bw - N b) / (C k),  L n peak e_c / (2 N_a)),
        B = floor(min(B_mem, B_lat)).
    tokens per chip-hour = B / step / n x 3,600. A chip whose replica cannot read its weights
    within L, or has no memory left for one sequence, serves 0 tokens.
    """
    w = workload or ServingWorkload()
    n = _arr(replica_chips(w.weight_bytes, memory_gb, w.memory_usable_share,
                           w.chips_per_server))
    b_mem = _arr(max_batch_in_memory(w.weight_bytes, w.kv_bytes_per_sequence, memory_gb, n,
                                     w.memory_usable_share))
    bw = n * _arr(memory_bandwidth_gbps) * 1e9 * w.bandwidth_efficiency
    flop_s = n * _arr(peak_flop_per_s) * w.compute_efficiency
    b_lat_mem = (w.max_step_seconds * bw - w.weight_bytes) / w.kv_bytes_per_sequence
    b_lat_comp = w.max_step_seconds * flop_s / (2.0 * w.flop_params)
    b_lat = np.maximum(np.floor(np.minimum(b_lat_mem, b_lat_comp) + 1e-9), 0.0)
    batch = np.minimum(b_mem, b_lat)
    step = decode_step(batch, w.params, w.bytes_per_param, w.kv_bytes_per_token,
                       w.context_tokens, n, memory_bandwidth_gbps, peak_flop_per_s,
                       w.bandwidth_efficiency, w.compute_efficiency, w.active_params)
    per_chip = _arr(step.tokens_per_second) / n
    return ServingThroughput(_out(n), _out(batch), _out(b_mem), _out(b_lat),
                             step.memory_seconds, step.compute_seconds, step.step_seconds,
                             _out(per_chip), _out(per_chip * SECONDS_PER_HOUR))


@dataclass(frozen=True)
class ServingSpecs:
    """The chip figures the serving model reads, as arrays (one entry per chip)."""

    memory_gb: ArrayLike
    memory_bandwidth_gbps: ArrayLike
    dense_tflops_bf16: ArrayLike
    #: dense FP8 [TFLOP/s]; NaN where the chip has none (it then computes FP8 work at BF16)
    dense_tflops_fp8: ArrayLike = float("nan")

    def peak_flop_per_s(self, precision: str) -> float | np.ndarray:
        """Dense peak at `precision` [FLOP/s], BF16 where the chip has no figure for it."""
        if precision not in SERVING_PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; known: "
                             f"{', '.join(SERVING_PRECISIONS)}")
        bf16 = _arr(self.dense_tflops_bf16)
        if precision == "bf16":
            return _out(bf16 * 1e12)
        fp8 = _arr(self.dense_tflops_fp8) * np.ones_like(bf16)
        return _out(np.where(np.isnan(fp8), bf16, fp8) * 1e12)


#: H100 SXM figures (market/data/chips.toml, klockwood-h100), the reference of `serving_h100e`.
H100_SXM_SERVING_SPECS = ServingSpecs(memory_gb=80.0, memory_bandwidth_gbps=3350.0,
                                      dense_tflops_bf16=989.4, dense_tflops_fp8=1978.9)


def serving_specs(chips) -> ServingSpecs:
    """ServingSpecs of catalog chips (`market.catalog.Chip`: one, or a sequence of them)."""
    if isinstance(chips, ServingSpecs):
        return chips
    many = isinstance(chips, (list, tuple))
    seq = list(chips) if many else [chips]
    specs = ServingSpecs(
        np.array([c.memory_gb for c in seq], dtype=float),
        np.array([c.memory_bandwidth_gbps for c in seq], dtype=float),
        np.array([c.dense_throughput["bf16"] for c in seq], dtype=float),
        np.array([c.dense_throughput.get("fp8", np.nan) for c in seq], dtype=float))
    if many:
        return specs
    return ServingSpecs(*(float(np.asarray(v)[0]) for v in (
        specs.memory_gb, specs.memory_bandwidth_gbps, specs.dense_tflops_bf16,
        specs.dense_tflops_fp8)))


def chip_serving_throughput(chips, workload: ServingWorkload | None = None
                            ) -> ServingThroughput:
    """`serving_throughput` of catalog chips (one or a sequence) or of `ServingSpecs`."""
    w = workload or ServingWorkload()
    s = serving_specs(chips)
    return serving_throughput(s.memory_gb, s.memory_bandwidth_gbps,
                              s.peak_flop_per_s(w.precision), w)


def serving_tokens_per_chip_hour(chips, workload: ServingWorkload | None = None
                                 ) -> float | np.ndarray:
    """Generated tokens per chip-hour [tokens/(chip·h)] at the best batch within memory and
    the latency bound; one value per chip (a float for one chip)."""
    return chip_serving_throughput(chips, workload).tokens_per_chip_hour


def serving_h100e(chips, workload: ServingWorkload | None = None,
                  reference: ServingSpecs = H100_SXM_SERVING_SPECS) -> float | np.ndarray:
    """Inference H100-equivalents of a chip [H100e]: its tokens per chip-hour on `workload`
    over the H100 SXM's. 1 for the H100 by construction; compare the training H100e (dense
    BF16 / 989.4 TFLOP/s), which ignores memory bandwidth and capacity."""
    ref = _arr(serving_tokens_per_chip_hour(reference, workload))
    return _out(_arr(serving_tokens_per_chip_hour(chips, workload)) / ref)


def serving_usd_per_million_tokens(usd_per_chip_hour: ArrayLike,
                                   tokens_per_chip_hour: ArrayLike) -> float | np.ndarray:
    """Price per generated token [USD per 1e6 tokens] = price per chip-hour / tokens per
    chip-hour x 1e6; infinite for a chip that serves nothing."""
    tokens = _arr(tokens_per_chip_hour)
    with np.errstate(divide="ignore"):
        return _out(np.where(tokens > 0, _arr(usd_per_chip_hour) * 1e6 / np.where(
            tokens > 0, tokens, 1.0), np.inf))

"""Worked estimates that join the chip catalog, the reference runs and the cost core.

These are what `gpumarket cost training|inference|cluster` print. Each returns a flat dict
whose keys carry their units, so the same object serves the JSON output, the human table and
the tests. All arithmetic is in `market.costs`; this module only chooses inputs and defaults.
"""

from __future__ import annotations

import math
from typing import Any

from market import costs
from market.catalog import Chip, load_catalog, get_training_run
from market.errors import InputError

#: Chip used when neither the user nor a reference run names one.
DEFAULT_CHIP = "h100-sxm"
#: Cluster size for an ad-hoc training estimate when --gpus is not given [GPUs].
DEFAULT_TRAINING_GPUS = 1024


def _check_positive(name: str, value: float | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be a finite number {bound}, got {value}")


def _check_fraction(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0 < value <= 1):
        raise InputError(f"{name} must be in (0, 1], got {value}")


def _energy_and_money(chip: Chip, held_gpu_hours: float, pue: float, electricity: float,
                      grid: float) -> dict[str, Any]:
    kwh = costs.energy_kwh(held_gpu_hours, chip.tdp_w, chip.server_power_multiplier,
                           chip.avg_power_fraction, pue)
    out = {
        "energy_mwh": kwh / 1000.0,
        "energy_cost_usd": costs.energy_cost_usd(kwh, electricity),
        "co2_t": costs.carbon_t_co2(kwh, grid),
        "hardware_price_usd": chip.hardware_price_usd,
        "amortized_hardware_usd": None,
        "amortized_cost_usd": None,
    }
    if chip.hardware_price_usd is not None:
        hw = costs.amortized_hardware_cost_usd(held_gpu_hours, chip.hardware_price_usd)
        out["amortized_hardware_usd"] = hw
        out["amortized_cost_usd"] = hw + out["energy_cost_usd"]
    return out


def estimate_training(*, model: str | None = None, flop: float | None = None,
                      params: float | None = None, tokens: float | None = None,
                      chip: str | None = None, mfu: float | None = None, gpus: int | None = None,
                      price_usd_per_hour: float | None = None, pue: float | None = None,
                      electricity_usd_per_kwh: float = costs.ELECTRICITY_USD_PER_KWH_US_2023,
                      grid_kg_co2_per_kwh: float = costs.GRID_KG_CO2_PER_KWH_US
                      ) -> dict[str, Any]:
    """Compute, time, money, energy and carbon of one training run.

    The compute comes from a reference run (`model`), from `flop`, or from 6 x params x tokens.
    When a reference run is reproduced on its own chip with no --mfu or --gpus, its published
    chip-hours (or chips x duration, or its published MFU) are used as they are: they were
    measured at scale, so no scaling loss is added. Otherwise the GPU-hours follow from the MFU
    (a single-node figure) and the held hours add the scale-out loss of `costs.scaling_efficiency`.
    """
    given = [x is not None for x in (model, flop)] + [params is not None or tokens is not None]
    if sum(given) != 1:
        raise InputError("give exactly one of --model, --flop, or --params with --tokens")
    if (params is None) != (tokens is None):
        raise InputError("--params and --tokens go together")
    for name, value in (("--flop", flop), ("--params", params), ("--tokens", tokens),
                        ("--gpus", gpus), ("--price-usd-per-hour", price_usd_per_hour),
                        ("--pue", pue), ("--electricity-usd-per-kwh", electricity_usd_per_kwh)):
        _check_positive(name, value)
    _check_positive("--grid-kg-co2-per-kwh", grid_kg_co2_per_kwh, allow_zero=True)
    _check_fraction("--mfu", mfu)
    if pue is not None and pue < 1:
        raise InputError(f"--pue must be >= 1 (facility power over IT power), got {pue}")

    catalog = load_catalog()
    ref = get_training_run(model) if model is not None else None
    chip_obj = catalog.get_chip(chip or (ref.chip if ref else DEFAULT_CHIP))
    if ref is not None:
        training = ref.training_flop
    elif flop is not None:
        training = flop
    else:
        training = costs.training_flop(params, tokens)

    reproduces_ref = ref is not None and chip_obj.id == ref.chip and mfu is None and gpus is None
    n_gpus = gpus or (ref.chips if ref is not None else DEFAULT_TRAINING_GPUS)
    peak = chip_obj.peak_flop_per_s
    efficiency: float | None
    if reproduces_ref and ref.reported_gpu_hours is not None:
        held = ref.reported_gpu_hours
        basis = "reported chip-hours" if ref.gpu_hours else "reported chips x duration"
        efficiency, used_mfu = None, training / (held * peak * costs.SECONDS_PER_HOUR)
    elif reproduces_ref and ref.mfu is not None:
        held = costs.gpu_hours(training, peak, ref.mfu)
        basis, efficiency, used_mfu = "reported MFU at scale", None, ref.mfu
    else:
        used_mfu = mfu if mfu is not None else costs.DEFAULT_MFU
        efficiency = costs.scaling_efficiency(n_gpus)
        held = costs.cluster_gpu_hours(costs.gpu_hours(training, peak, used_mfu), n_gpus)
        basis = "MFU with scaling efficiency"

    if price_usd_per_hour is None and reproduces_ref:
        price_usd_per_hour = ref.rental_usd_per_gpu_hour
    if pue is None:
        hyperscale = ref is not None and ref.operator == "hyperscaler"
        pue = costs.PUE_HYPERSCALER if hyperscale else costs.PUE_OTHER

    a100, h100 = catalog.get_chip("a100"), catalog.get_chip("h100-sxm")
    full_days = lambda c: training / c.peak_flop_per_s / 86_400.0  # noqa: E731
    result: dict[str, Any] = {
        "model": ref.id if ref else None,
        "model_name": ref.name if ref else None,
        "training_flop": training,
        "pflop_s_days": costs.pflop_s_days(training),
        "chip": chip_obj.id,
        "chip_name": chip_obj.name,
        "gpus": n_gpus,
        "basis": basis,
        "mfu": used_mfu,
        "scaling_efficiency": efficiency,
        "gpu_days_at_full_utilization": full_days(chip_obj),
        "a100_days_at_full_utilization": full_days(a100),
        "h100_days_at_full_utilization": full_days(h100),
        "gpu_hours": held,
        "wall_clock_days": costs.wall_clock_days(held, n_gpus),
        "price_usd_per_gpu_hour": price_usd_per_hour,
        "cloud_cost_usd": (costs.rental_cost_usd(held, price_usd_per_hour)
                           if price_usd_per_hour is not None else None),
        "acquisition_cost_usd": (costs.acquisition_cost_usd(n_gpus, chip_obj.hardware_price_usd)
                                 if chip_obj.hardware_price_usd is not None else None),
        "pue": pue,
        "electricity_usd_per_kwh": electricity_usd_per_kwh,
        "grid_kg_co2_per_kwh": grid_kg_co2_per_kwh,
    }
    result.update(_energy_and_money(chip_obj, held, pue, electricity_usd_per_kwh,
                                    grid_kg_co2_per_kwh))
    result["note"] = ref.note if ref else None
    return result


def estimate_inference(*, params: float, requests_per_day: float | None = None,
                       tokens_per_request: float | None = None,
                       tokens_per_day: float | None = None, chip: str = DEFAULT_CHIP,
                       utilization: float = 0.3, peak_factor: float = 2.0,
                       bytes_per_param: float = 2.0, memory_overhead_fraction: float = 0.0,
                       price_usd_per_hour: float | None = None,
                       pue: float = costs.PUE_OTHER,
                       electricity_usd_per_kwh: float = costs.ELECTRICITY_USD_PER_KWH_US_2023
                       ) -> dict[str, Any]:
    """GPUs, energy and USD per million tokens to serve a dense model's token stream.

    Without a rental price, the price per GPU-hour is the Epoch-method ownership cost of the
    chip at full use: idle capacity is already counted in the peak-factor fleet size.
    """
    if tokens_per_day is None:
        if requests_per_day is None or tokens_per_request is None:
            raise InputError("give --tokens-per-day, or --requests-per-day with --tokens-per-request")
        tokens_per_day = requests_per_day * tokens_per_request
    elif requests_per_day is not None or tokens_per_request is not None:
        raise InputError("give --tokens-per-day or --requests-per-day with --tokens-per-request, "
                         "not both")
    for name, value in (("--params", params), ("--requests-per-day", requests_per_day),
                        ("--tokens-per-request", tokens_per_request),
                        ("--tokens-per-day", tokens_per_day), ("--peak-factor", peak_factor),
                        ("--bytes-per-param", bytes_per_param), ("--pue", pue),
                        ("--price-usd-per-hour", price_usd_per_hour),
                        ("--electricity-usd-per-kwh", electricity_usd_per_kwh)):
        _check_positive(name, value)
    _check_positive("--memory-overhead", memory_overhead_fraction, allow_zero=True)
    _check_fraction("--utilization", utilization)
    if peak_factor < 1:
        raise InputError(f"--peak-factor must be >= 1 (peak over average load), got {peak_factor}")

    chip_obj = load_catalog().get_chip(chip)
    fleet = costs.inference_fleet(params, tokens_per_day, chip_obj.peak_flop_per_s,
                                  chip_obj.memory_gb, utilization, peak_factor, bytes_per_param,
                                  memory_overhead_fraction)
    kwh_per_day = costs.energy_kwh(fleet.gpus_needed * 24.0, chip_obj.tdp_w,
                                   chip_obj.server_power_multiplier, chip_obj.avg_power_fraction,
                                   pue)
    if price_usd_per_hour is not None:
        price, basis = price_usd_per_hour, "rental price given"
    elif chip_obj.hardware_price_usd is not None:
        price = costs.owned_cost_per_gpu_hour(
            chip_obj.hardware_price_usd, chip_obj.tdp_w, chip_obj.server_power_multiplier,
            chip_obj.avg_power_fraction, pue, electricity_usd_per_kwh).total_usd_per_gpu_hour
        basis = "owned (Epoch method, amortized hardware + energy)"
    else:
        price, basis = None, f"no price: {chip_obj.id} is unpriced; pass --price-usd-per-hour"
    return {
        "params": params,
        "chip": chip_obj.id,
        "chip_name": chip_obj.name,
        "tokens_per_day": tokens_per_day,
        "flop_per_token": costs.inference_flop_per_token(params),
        "flop_per_day": fleet.flop_per_day,
        "flop_per_s": fleet.flop_per_s,
        "utilization": utilization,
        "peak_factor": peak_factor,
        "gpus_at_full_utilization": fleet.flop_per_s / chip_obj.peak_flop_per_s,
        "gpus_compute_exact": fleet.gpus_compute_exact,
        "gpus_compute_floor": int(fleet.gpus_compute_floor),
        "gpus_memory_floor": int(fleet.gpus_memory_floor),
        "gpus_needed": int(fleet.gpus_needed),
        "power_mw": costs.power_mw(fleet.gpus_needed, chip_obj.tdp_w,
                                   chip_obj.server_power_multiplier, chip_obj.avg_power_fraction,
                                   pue),
        "energy_mwh_per_day": kwh_per_day / 1000.0,
        "price_usd_per_gpu_hour": price,
        "price_basis": basis,
        "usd_per_day": None if price is None else fleet.gpus_needed * 24.0 * price,
        "usd_per_million_tokens": (None if price is None else costs.usd_per_million_tokens(
            fleet.gpus_needed, price, tokens_per_day)),
    }


def estimate_cluster(*, gpus: int, chip: str = DEFAULT_CHIP, pue: float = costs.PUE_OTHER,
                     electricity_usd_per_kwh: float = costs.ELECTRICITY_USD_PER_KWH_US_2023,
                     staff: int = 0, staff_cost_usd_per_year: float = costs.STAFF_COST_USD_PER_YEAR,
                     years: int = 5, rental_usd_per_hour: float | None = None,
                     utilization: float = 0.7,
                     facility_usd_per_mw: float = costs.FACILITY_USD_PER_MW,
                     discount_rate: float = 0.0,
                     per_gpu_mtbf_hours: float = costs.PER_GPU_MTBF_HOURS,
                     checkpoint_write_minutes: float = 1.0, restart_minutes: float = 10.0,
                     grid_kg_co2_per_kwh: float = costs.GRID_KG_CO2_PER_KWH_US
                     ) -> dict[str, Any]:
    """Capex, opex, TCO, power, breakeven against renting, and reliability of an owned cluster."""
    for name, value in (("--gpus", gpus), ("--pue", pue),
                        ("--electricity-usd-per-kwh", electricity_usd_per_kwh),
                        ("--years", years), ("--rental-usd-per-hour", rental_usd_per_hour),
                        ("--per-gpu-mtbf-hours", per_gpu_mtbf_hours),
                        ("--checkpoint-write-minutes", checkpoint_write_minutes),
                        ("--staff-cost-usd-per-year", staff_cost_usd_per_year)):
        _check_positive(name, value)
    for name, value in (("--staff", staff), ("--facility-usd-per-mw", facility_usd_per_mw),
                        ("--discount-rate", discount_rate), ("--restart-minutes", restart_minutes),
                        ("--grid-kg-co2-per-kwh", grid_kg_co2_per_kwh)):
        _check_positive(name, value, allow_zero=True)
    _check_fraction("--utilization", utilization)
    if pue < 1:
        raise InputError(f"--pue must be >= 1 (facility power over IT power), got {pue}")

    c = load_catalog().get_chip(chip)
    if c.unit_price_usd is None:
        raise InputError(f"chip {c.id!r} has no published unit price, so its capex is unknown; "
                         "priced chips: " + ", ".join(
                             sorted(k for k, v in load_catalog().items() if v.unit_price_usd)))
    peak_mw = costs.power_mw(gpus, c.tdp_w, c.server_power_multiplier, 1.0, pue)
    avg_mw = costs.power_mw(gpus, c.tdp_w, c.server_power_multiplier, c.avg_power_fraction, pue)
    capex = costs.cluster_capex(gpus, c.unit_price_usd, c.server_price_multiplier, peak_mw,
                                facility_usd_per_mw)
    opex = costs.cluster_opex_per_year(avg_mw, electricity_usd_per_kwh, staff,
                                       staff_cost_usd_per_year)
    owned = costs.owned_cost_per_gpu_hour(c.hardware_price_usd, c.tdp_w,
                                          c.server_power_multiplier, c.avg_power_fraction, pue,
                                          electricity_usd_per_kwh, utilization)
    job_mtbf = costs.job_mtbf_hours(gpus, per_gpu_mtbf_hours)
    write_h, restart_h = checkpoint_write_minutes / 60.0, restart_minutes / 60.0
    interval_h = costs.checkpoint_interval_hours(write_h, job_mtbf)
    energy_mwh_year = costs.energy_mwh(avg_mw, costs.HOURS_PER_YEAR)
    breakeven = None
    if rental_usd_per_hour is not None:
        breakeven = costs.breakeven_months(capex.total_usd, opex.total_usd_per_year / 12.0, gpus,
                                           rental_usd_per_hour, utilization)
        if not math.isfinite(breakeven):  # renting is never dearer than running the cluster
            breakeven = None
    return {
        "gpus": gpus,
        "chip": c.id,
        "chip_name": c.name,
        "years": years,
        "utilization": utilization,
        "capex_accelerators_usd": capex.accelerators_usd,
        "capex_servers_usd": capex.servers_usd,
        "capex_interconnect_usd": capex.interconnect_usd,
        "capex_facility_usd": capex.facility_usd,
        "capex_usd": capex.total_usd,
        "opex_energy_usd_per_year": opex.energy_usd_per_year,
        "opex_staff_usd_per_year": opex.staff_usd_per_year,
        "opex_usd_per_year": opex.total_usd_per_year,
        "tco_usd": costs.tco_usd(capex.total_usd, opex.total_usd_per_year, years, discount_rate),
        "discount_rate": discount_rate,
        "power_mw": peak_mw,
        "average_power_mw": avg_mw,
        "energy_mwh_per_year": energy_mwh_year,
        "co2_t_per_year": costs.carbon_t_co2(energy_mwh_year * 1000.0, grid_kg_co2_per_kwh),
        "owned_usd_per_gpu_hour": owned.total_usd_per_gpu_hour,
        "rental_usd_per_gpu_hour": rental_usd_per_hour,
        "breakeven_months": breakeven,
        "job_mtbf_hours": job_mtbf,
        "interruptions_per_day": costs.interruptions_per_day(job_mtbf),
        "checkpoint_interval_minutes": interval_h * 60.0,
        "goodput_fraction": costs.goodput_fraction(interval_h, write_h, restart_h, job_mtbf),
    }

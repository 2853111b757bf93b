"""`gpumarket cost training|inference|cluster|serving`: the deterministic cost core."""

from __future__ import annotations

from typing import Any, Callable

import click

from market.cli.base import (INTEGER, NUMBER, _emit_json, _num, _rows,
                             _usd, cli)


# ------------------------------------------------------------------------------- cost ---

@cli.group()
def cost() -> None:
    """Deterministic cost core: training, inference, cluster and serving economics."""


def _common_energy_options(fn: Callable) -> Callable:
    fn = click.option("--pue", type=NUMBER, default=None,
                      help="Power usage effectiveness [-] (default 1.1 hyperscaler, 1.25 other).")(fn)
    fn = click.option("--electricity-usd-per-kwh", type=NUMBER, default=0.0806, show_default=True,
                      help="Electricity price [USD/kWh] (US industrial average 2023, EIA).")(fn)
    return fn


@cost.command("training")
@click.option("--model", help="A reference training run (gpt-3, palm, gpt-4, llama-3.1-405b, "
                              "deepseek-v3).")
@click.option("--flop", type=NUMBER, help="Training compute [FLOP], e.g. 3.14e23.")
@click.option("--params", type=NUMBER, help="Parameters N (with --tokens: C = 6ND), e.g. 70B.")
@click.option("--tokens", type=NUMBER, help="Training tokens D, e.g. 15T.")
@click.option("--chip", help="Chip id from `gpumarket chips` (default: the run's, else h100-sxm).")
@click.option("--mfu", type=NUMBER, help="Model FLOP utilization in (0, 1] (default 0.375, "
                                         "Epoch AI's median).")
@click.option("--gpus", type=INTEGER, help="Cluster size [GPUs] (default: the run's, else 1,024).")
@click.option("--price-usd-per-hour", type=NUMBER, help="Rental price [USD per GPU-hour].")
@_common_energy_options
@click.option("--grid-kg-co2-per-kwh", type=NUMBER, default=0.367, show_default=True,
              help="Grid carbon intensity [kg CO2/kWh] (US average 2023, EIA).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def cost_training(as_json: bool, **kwargs: Any) -> None:
    """Compute, GPU time, cost, energy and CO2 of a training run."""
    from market.estimates import estimate_training

    r = estimate_training(**kwargs)
    if as_json:
        _emit_json(r)
        return
    title = (f"{r['model_name'] or 'Training run'} on {r['chip_name']} x {r['gpus']:,}")
    eff = ("measured at scale" if r["scaling_efficiency"] is None
           else f"scaling efficiency {r['scaling_efficiency']:.0%} at {r['gpus']:,} GPUs")
    cloud = (_usd(r["cloud_cost_usd"]) + f" at ${r['price_usd_per_gpu_hour']:.2f}/GPU-h"
             if r["cloud_cost_usd"] is not None else "n/a (pass --price-usd-per-hour)")
    amort = ("n/a (chip has no published price)" if r["amortized_cost_usd"] is None else
             f"{_usd(r['amortized_cost_usd'])} (hardware {_usd(r['amortized_hardware_usd'])}, "
             f"energy {_usd(r['energy_cost_usd'])})")
    rows = [
        ("training compute", f"{r['training_flop']:.3g} FLOP"),
        ("", f"= {r['pflop_s_days']:,.0f} PFLOP/s-days (a unit of work, not GPU time)"),
        ("GPU-days at 100% utilization", f"{r['gpu_days_at_full_utilization']:,.0f} "
                                         f"{r['chip'].upper()}-days"),
        ("", f"(= {r['a100_days_at_full_utilization']:,.0f} A100-days "
             f"= {r['h100_days_at_full_utilization']:,.0f} H100-days)"),
        ("GPU-hours held", f"{_num(r['gpu_hours'])} GPU-h ({r['basis']}; MFU {r['mfu']:.1%}, "
                           f"{eff})"),
        ("wall-clock", f"{r['wall_clock_days']:,.1f} days on {r['gpus']:,} GPUs"),
        ("cloud rental cost", cloud),
        ("amortized hardware + energy", amort),
        ("cluster acquisition cost", _usd(r["acquisition_cost_usd"])),
        ("energy", f"{r['energy_mwh']:,.0f} MWh at PUE {r['pue']:.2f}"),
        ("CO2", f"{r['co2_t']:,.0f} t at {r['grid_kg_co2_per_kwh']} kg/kWh"),
    ]
    _rows(title, rows, [r["note"]] if r["note"] else None)


@cost.command("inference")
@click.option("--params", type=NUMBER, required=True, help="Model parameters N, e.g. 175B.")
@click.option("--requests-per-day", type=NUMBER, help="Requests per day.")
@click.option("--tokens-per-request", type=NUMBER, help="Tokens generated per request.")
@click.option("--tokens-per-day", type=NUMBER, help="Tokens per day (instead of requests x tokens).")
@click.option("--chip", default="h100-sxm", show_default=True, help="Chip id.")
@click.option("--utilization", type=NUMBER, default=0.3, show_default=True,
              help="Achieved fraction of dense peak while serving, in (0, 1].")
@click.option("--peak-factor", type=NUMBER, default=2.0, show_default=True,
              help="Peak over average load [-] (2-3 is typical).")
@click.option("--bytes-per-param", type=NUMBER, default=2.0, show_default=True,
              help="Weight precision [bytes/parameter] (2 for BF16, 1 for FP8).")
@click.option("--memory-overhead", "memory_overhead_fraction", type=NUMBER, default=0.0,
              show_default=True, help="KV cache and activations as a fraction of weight memory.")
@click.option("--price-usd-per-hour", type=NUMBER,
              help="Rental price [USD per GPU-hour] (default: owned cost, Epoch method).")
@click.option("--pue", type=NUMBER, default=1.25, show_default=True, help="Power usage effectiveness.")
@click.option("--electricity-usd-per-kwh", type=NUMBER, default=0.0806, show_default=True,
              help="Electricity price [USD/kWh].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def cost_inference(as_json: bool, **kwargs: Any) -> None:
    """GPUs (compute and memory floors), energy and USD per million tokens to serve a model."""
    from market.estimates import estimate_inference

    r = estimate_inference(**kwargs)
    if as_json:
        _emit_json(r)
        return
    rows = [
        ("tokens per day", _num(r["tokens_per_day"])),
        ("compute per token", f"{r['flop_per_token']:.3g} FLOP (2N)"),
        ("compute per day", f"{r['flop_per_day']:.3g} FLOP = {r['flop_per_s'] / 1e15:,.1f} PFLOP/s"),
        ("GPUs at 100% utilization", f"{r['gpus_at_full_utilization']:,.1f}"),
        (f"compute floor at {r['utilization']:.0%}", f"{r['gpus_compute_floor']:,} GPUs"),
        ("memory floor (one replica)", f"{r['gpus_memory_floor']:,} GPUs"),
        (f"GPUs needed (peak x{r['peak_factor']:g})", f"{r['gpus_needed']:,}"),
        ("power", f"{r['power_mw']:,.2f} MW"),
        ("energy", f"{r['energy_mwh_per_day']:,.1f} MWh/day"),
        ("price per GPU-hour", ("n/a" if r["price_usd_per_gpu_hour"] is None
                                else f"${r['price_usd_per_gpu_hour']:.2f}") + f" ({r['price_basis']})"),
        ("cost per day", _usd(r["usd_per_day"])),
        ("cost per million tokens", "n/a" if r["usd_per_million_tokens"] is None
         else f"${r['usd_per_million_tokens']:.3f}"),
    ]
    _rows(f"Serving {r['params']:.3g} parameters on {r['chip_name']}", rows)


@cost.command("cluster")
@click.option("--gpus", type=INTEGER, required=True, help="Accelerators in the cluster.")
@click.option("--chip", default="h100-sxm", show_default=True, help="Chip id.")
@click.option("--pue", type=NUMBER, default=1.25, show_default=True, help="Power usage effectiveness.")
@click.option("--electricity-usd-per-kwh", type=NUMBER, default=0.0806, show_default=True,
              help="Electricity price [USD/kWh].")
@click.option("--staff", type=INTEGER, default=0, show_default=True, help="Operations headcount.")
@click.option("--staff-cost-usd-per-year", type=NUMBER, default=250_000, show_default=True,
              help="Loaded cost per staff member [USD/yr].")
@click.option("--years", type=INTEGER, default=5, show_default=True,
              help="TCO horizon [years] (hyperscalers depreciate servers over 5-6).")
@click.option("--rental-usd-per-hour", type=NUMBER,
              help="Rental price to compare against [USD per GPU-hour], for the breakeven.")
@click.option("--utilization", type=NUMBER, default=0.7, show_default=True,
              help="Fraction of hours the owned cluster does useful work, in (0, 1].")
@click.option("--facility-usd-per-mw", type=NUMBER, default=10e6, show_default=True,
              help="Datacenter build cost per MW of facility power (0 for colocation).")
@click.option("--discount-rate", type=NUMBER, default=0.0, show_default=True,
              help="Annual discount rate for opex in the TCO.")
@click.option("--checkpoint-write-minutes", type=NUMBER, default=1.0, show_default=True,
              help="Time to write one checkpoint [min].")
@click.option("--restart-minutes", type=NUMBER, default=10.0, show_default=True,
              help="Time to restart a job after a failure [min].")
@click.option("--grid-kg-co2-per-kwh", type=NUMBER, default=0.367, show_default=True,
              help="Grid carbon intensity [kg CO2/kWh].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def cost_cluster(as_json: bool, **kwargs: Any) -> None:
    """Capex, opex, TCO, power, cloud-vs-build breakeven and reliability of an owned cluster."""
    from market.estimates import estimate_cluster

    r = estimate_cluster(**kwargs)
    if as_json:
        _emit_json(r)
        return
    if r["rental_usd_per_gpu_hour"] is None:
        breakeven = "n/a (pass --rental-usd-per-hour)"
    elif r["breakeven_months"] is None:
        breakeven = f"never: renting at ${r['rental_usd_per_gpu_hour']:.2f}/h costs less than opex"
    else:
        breakeven = (f"{r['breakeven_months']:,.1f} months vs renting at "
                     f"${r['rental_usd_per_gpu_hour']:.2f}/GPU-h")
    rows = [
        ("capex", f"{_usd(r['capex_usd'])} = accelerators {_usd(r['capex_accelerators_usd'])} + "
                  f"servers {_usd(r['capex_servers_usd'])} + interconnect "
                  f"{_usd(r['capex_interconnect_usd'])} + facility {_usd(r['capex_facility_usd'])}"),
        ("opex", f"{_usd(r['opex_usd_per_year'])}/yr = energy {_usd(r['opex_energy_usd_per_year'])}"
                 f" + staff {_usd(r['opex_staff_usd_per_year'])}"),
        (f"TCO over {r['years']} years", _usd(r["tco_usd"])),
        ("power", f"{r['power_mw']:,.2f} MW peak, {r['average_power_mw']:,.2f} MW average"),
        ("energy", f"{r['energy_mwh_per_year']:,.0f} MWh/yr, {r['co2_t_per_year']:,.0f} t CO2/yr"),
        (f"owned cost at {r['utilization']:.0%} use", f"${r['owned_usd_per_gpu_hour']:.2f} per "
                                                      "useful GPU-hour (Epoch method)"),
        ("cloud-vs-build breakeven", breakeven),
        ("job MTBF", f"{r['job_mtbf_hours']:,.2f} h ({r['interruptions_per_day']:,.1f} "
                     "interruptions/day)"),
        ("checkpoint interval", f"{r['checkpoint_interval_minutes']:,.1f} min (Young/Daly)"),
        ("goodput", f"{r['goodput_fraction']:.1%}"),
    ]
    _rows(f"Cluster of {r['gpus']:,} x {r['chip_name']}", rows)


#: ServingWorkload field -> the `cost serving` option that sets it (for error messages).
_SERVING_OPTIONS = {"params": "--params", "active_params": "--active-params",
                    "bytes_per_param": "--bytes-per-param",
                    "kv_bytes_per_token": "--kv-bytes-per-token",
                    "context_tokens": "--context-tokens", "max_step_seconds": "--max-step-ms",
                    "precision": "--precision", "bandwidth_efficiency": "--bandwidth-efficiency",
                    "compute_efficiency": "--compute-efficiency",
                    "memory_usable_share": "--memory-usable-share",
                    "chips_per_server": "--chips-per-server"}


def _serving_workload(max_step_ms: float, **fields: Any):
    """The ServingWorkload of the options; a bad value is one line naming its option."""
    from market.costs import ServingWorkload
    from market.errors import InputError

    try:
        return ServingWorkload(max_step_seconds=max_step_ms / 1000.0, **fields)
    except InputError as exc:
        message = str(exc).removeprefix("serving workload: ")
        for name, option in sorted(_SERVING_OPTIONS.items(), key=lambda kv: -len(kv[0])):
            if message.startswith(name + " "):
                if name == "max_step_seconds":
                    message = message.replace(f"got {max_step_ms / 1000.0}", f"got {max_step_ms}")
                message = option + message[len(name):]
                break
        raise InputError(message) from None


def _serving_records(chips: list, workload, price_usd_per_hour: float | None) -> list[dict]:
    """One record per chip: throughput at the best batch, inference H100e and USD per 1e6."""
    from market import costs

    t = costs.chip_serving_throughput(chips, workload)
    h100e = costs.serving_h100e(chips, workload)
    records = []
    for i, chip in enumerate(chips):
        if price_usd_per_hour is not None:
            price, basis = price_usd_per_hour, "rental price given"
        elif chip.hardware_price_usd is not None:
            price = costs.owned_cost_per_gpu_hour(
                chip.hardware_price_usd, chip.tdp_w, chip.server_power_multiplier,
                chip.avg_power_fraction, costs.PUE_OTHER,
                costs.ELECTRICITY_USD_PER_KWH_US_2023).total_usd_per_gpu_hour
            basis = "owned (Epoch method, amortized hardware + energy)"
        else:
            price, basis = None, f"no price: {chip.id} is unpriced; pass --price-usd-per-hour"
        tokens = float(t.tokens_per_chip_hour[i])
        records.append({
            "chip": chip.id, "chip_name": chip.name,
            "chips_per_replica": int(t.chips_per_replica[i]), "batch": int(t.batch[i]),
            "batch_memory_max": int(t.batch_memory_max[i]),
            "batch_latency_max": int(t.batch_latency_max[i]),
            "batch_limit": str(t.batch_limit[i]), "bound": str(t.bound[i]),
            "step_seconds": float(t.step_seconds[i]),
            "memory_seconds": float(t.memory_seconds[i]),
            "compute_seconds": float(t.compute_seconds[i]),
            "tokens_per_second_per_chip": float(t.tokens_per_second_per_chip[i]),
            "tokens_per_chip_hour": tokens,
            "serving_h100e": float(h100e[i]), "training_h100e": chip.h100e,
            "price_usd_per_gpu_hour": price, "price_basis": basis,
            "usd_per_million_tokens": (None if price is None or tokens <= 0 else
                                       costs.serving_usd_per_million_tokens(price, tokens)),
        })
    return records


@cost.command("serving")
@click.option("--chip", help="Chip id from `gpumarket chips` (default h100-sxm).")
@click.option("--all", "all_chips", is_flag=True, help="Every chip of the catalog, as a table.")
@click.option("--params", type=NUMBER, default=70e9, show_default=True,
              help="Model parameters N (Llama 2 70B, MLPerf Inference v4.0's model).")
@click.option("--active-params", type=NUMBER,
              help="Parameters active per token, for a mixture-of-experts model (default: all).")
@click.option("--bytes-per-param", type=NUMBER, default=2.0, show_default=True,
              help="Weight precision [bytes/parameter] (2 BF16, 1 FP8).")
@click.option("--kv-bytes-per-token", type=NUMBER, default=327_680, show_default=True,
              help="KV cache per token of context [bytes] (Llama 2 70B in BF16: 2 x 80 layers "
                   "x 8 KV heads x 128 x 2).")
@click.option("--context-tokens", type=NUMBER, default=4096, show_default=True,
              help="Tokens each sequence holds in its KV cache.")
@click.option("--max-step-ms", type=NUMBER, default=50.0, show_default=True,
              help="Latency bound: longest time per decode step (per output token) [ms].")
@click.option("--precision", type=click.Choice(["bf16", "fp8"]), default="bf16",
              show_default=True, help="Math precision (a chip without FP8 computes at BF16).")
@click.option("--bandwidth-efficiency", type=NUMBER, default=0.8, show_default=True,
              help="Achieved share of peak memory bandwidth, in (0, 1].")
@click.option("--compute-efficiency", type=NUMBER, default=0.5, show_default=True,
              help="Achieved share of dense peak FLOP/s, in (0, 1].")
@click.option("--memory-usable-share", type=NUMBER, default=0.9, show_default=True,
              help="Share of memory for weights and KV cache, in (0, 1] (vLLM's default).")
@click.option("--chips-per-server", type=INTEGER, default=8, show_default=True,
              help="Chips of one server; a replica spans the fewest whole servers holding "
                   "the weights.")
@click.option("--price-usd-per-hour", type=NUMBER,
              help="GPU-hour price [USD] (default: each chip's owned cost, Epoch method).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def cost_serving(chip: str | None, all_chips: bool, price_usd_per_hour: float | None,
                 as_json: bool, **fields: Any) -> None:
    """Decode throughput (roofline: memory- or compute-bound), tokens per chip-hour, inference
    H100e and USD per million tokens of a model served on a chip."""
    from market.catalog import load_catalog
    from market.errors import InputError

    if chip is not None and all_chips:
        raise InputError("give --chip or --all, not both")
    if price_usd_per_hour is not None and price_usd_per_hour <= 0:
        raise InputError(f"--price-usd-per-hour must be a finite number > 0, "
                         f"got {price_usd_per_hour}")
    workload = _serving_workload(**fields)
    catalog = load_catalog()
    chips = list(catalog.values()) if all_chips else [catalog.get_chip(chip or "h100-sxm")]
    records = _serving_records(chips, workload, price_usd_per_hour)
    w = workload
    title = (f"Serving {w.params / 1e9:,.4g}B parameters ({w.bytes_per_param:g} bytes/param, "
             f"{w.precision.upper()} math, {w.context_tokens:,.0f} tokens of context, "
             f"<= {w.max_step_seconds * 1000:g} ms per token)")
    if as_json:
        workload_record = {f"{k}": getattr(w, k) for k in _SERVING_OPTIONS}
        _emit_json({"workload": workload_record, "chips": records} if all_chips
                   else {"workload": workload_record, **records[0]})
        return
    if all_chips:
        _serving_table(title, records)
        return
    r = records[0]
    usd = ("n/a" if r["usd_per_million_tokens"] is None
           else f"${r['usd_per_million_tokens']:.3f}")
    batch = (f"{r['batch']:,} sequences (limit: {r['batch_limit']}; memory holds "
             f"{r['batch_memory_max']:,}, latency allows {r['batch_latency_max']:,})")
    step = (f"{r['step_seconds'] * 1000:.1f} ms (memory {r['memory_seconds'] * 1000:.1f} ms, "
            f"compute {r['compute_seconds'] * 1000:.1f} ms): {r['bound']}-bound")
    rows = [
        ("replica", f"{r['chips_per_replica']} chips (tensor-parallel)"),
        ("batch", batch),
        ("decode step", step),
        ("tokens per second per chip", _num(r["tokens_per_second_per_chip"])),
        ("tokens per chip-hour", _num(r["tokens_per_chip_hour"])),
        ("serving H100e", f"{r['serving_h100e']:.2f} (training H100e {r['training_h100e']:.2f})"),
        ("price per GPU-hour", ("n/a" if r["price_usd_per_gpu_hour"] is None
                                else f"${r['price_usd_per_gpu_hour']:.2f}")
         + f" ({r['price_basis']})"),
        ("cost per million tokens", usd),
    ]
    _rows(f"{title} on {r['chip_name']}", rows)


def _serving_table(title: str, records: list[dict]) -> None:
    header = ("id", "chips", "batch", "limit", "step ms", "bound", "tok/s/chip", "tok/chip-h",
              "serving H100e", "training H100e", "USD/GPU-h", "USD/M tok")
    table = [(r["chip"], str(r["chips_per_replica"]), f"{r['batch']:,}",
              r["batch_limit"], f"{r['step_seconds'] * 1000:.1f}", r["bound"],
              _num(r["tokens_per_second_per_chip"]), _num(r["tokens_per_chip_hour"]),
              f"{r['serving_h100e']:.2f}", f"{r['training_h100e']:.2f}",
              "n/a" if r["price_usd_per_gpu_hour"] is None
              else f"{r['price_usd_per_gpu_hour']:.2f}",
              "n/a" if r["usd_per_million_tokens"] is None
              else f"{r['usd_per_million_tokens']:.3f}") for r in records]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    click.echo(title)
    for row in [header, *table]:
        click.echo("  ".join(v.ljust(wd) if i in (0, 3, 5) else v.rjust(wd)
                             for i, (v, wd) in enumerate(zip(row, widths))))
    click.echo("Roofline decode model (market/costs.py): step = max(memory, compute time); the "
               "batch is the largest the free memory and the latency bound allow. USD/GPU-h: "
               "--price-usd-per-hour, else each chip's owned cost (Epoch method).")

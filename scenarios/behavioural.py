"""Which scenario fields are behavioural parameters, the only fields `[calibrate]` may name.

Calibration estimates how agents behave (how fast they respond, how much they care about a
price, how far back they remember), never what the world hands them. So a `[calibrate]` path
must end on a field listed here; chip specs, rule thresholds, capacities, costs, potential
demand and financing paths, dates and policy levers are data or inputs and are refused with
the reason (`classify_path`). A field is listed when it is a decision rule's parameter with an
[A] value in the built-in scenarios and no direct measurement; the list grows with the model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from scenarios import schema

#: Per schema model, its behavioural fields (docs/model.md names the rule each belongs to).
BEHAVIOURAL: dict[type[BaseModel], frozenset[str]] = {
    schema.Market: frozenset({
        # demand: how labs value and substitute compute
        "value_sigma", "serving_elasticity", "training_elasticity", "elasticity_sigma",
        "short_run_elasticity_share", "demand_adjustment_months", "serving_markup",
        "experiment_share", "hyperscaler_wtp_premium",
        # how buyers choose among clouds and contracts
        "choice_price_sensitivity", "switching_cost", "choice_revision_share",
        "contract_term_premium", "contract_capacity_share", "hyperscaler_spot_share",
        "uncontracted_spot_share", "expectation_memory_months",
        # hyperscalers' list prices
        "list_revision_threshold", "margin_response", "markup_share_response",
        "list_demand_spread",
        # labs that build, and everyone's chip orders
        "lab_cost_of_capital", "build_gap_closure_per_month", "power_planning_memory_months",
        "order_price_elasticity", "vendor_switching_cost", "vendor_choice_sensitivity",
        "line_dissimilarity",
    }),
    schema.CloudInvestment: frozenset({
        "expectation_memory_months", "expected_price_decline_per_year",
        "growth_response_per_year", "trend_damping_per_month", "supply_line_weight",
        "demand_uncertainty",
    }),
    schema.Cloud: frozenset({"min_margin", "max_margin", "target_utilization",
                             "debt_to_revenue"}),
    schema.Vendor: frozenset({
        "scarcity_markup_per_backlog_month", "max_price_multiple",
        "glut_discount_per_stock_month", "floor_margin", "rival_premium", "rival_response",
        "price_adjustment_per_month", "target_inventory_months", "variant_trigger",
        "variant_price_base_share",
    }),
    schema.Foundry: frozenset({"expansion_threshold", "expansion_response",
                               "demand_memory_months", "expansion_trend_damping_per_month"}),
    schema.Leakage: frozenset({"diversion_max_share", "diversion_gap_sensitivity",
                               "smuggling_premium", "stockpile_months",
                               "usual_orders_memory_months"}),
}

#: Why a field outside the list is not calibrated, by the block it lives in.
_DATA_BLOCKS = {
    "events": "a dated event (a rule, shock or policy and its date) is an input, not a "
              "behavioural parameter",
    "rules": "a rule's thresholds are data (the published regulation)",
    "nations": "a nation's power, prices and policies are inputs",
    "labs": "a lab's potential demand, financing and sites are inputs",
    "long_tail": "the long tail's size and demand are inputs",
    "uncertain": "the [uncertain] block is not a parameter",
    "levers": "the [levers] block is not a parameter",
    "calibrate": "the [calibrate] block is not a parameter",
}


def classify_path(path: str) -> str | None:
    """None when `path` names a behavioural parameter, else why it may not be calibrated."""
    top = path.split(".", 1)[0]
    if top in _DATA_BLOCKS:
        return _DATA_BLOCKS[top]
    owner, name, _ = schema.field_at(tuple(int(k) if k.isdigit() else k
                                           for k in path.split(".")))
    if owner is not None and name in BEHAVIOURAL.get(owner, frozenset()):
        return None
    if owner is None:
        return ("it names no behavioural parameter (unknown names and a dated path's points "
                "are refused; scenarios/behavioural.py lists the parameters)")
    return (f"{owner.__name__}.{name} is data or an input (a spec, cost, capacity, date, path "
            "or policy), not a behavioural parameter; scenarios/behavioural.py lists those")


def behavioural_paths(scenario) -> list[str]:
    """Every behavioural path the scenario has, in a fixed order (for messages and docs)."""
    out = []
    for model, names in BEHAVIOURAL.items():
        for prefix, node in _instances(scenario, model):
            out += [f"{prefix}{n}" for n in sorted(names)]
    return out


def _instances(scenario, model: type[BaseModel]) -> list[tuple[str, Any]]:
    if model is schema.Market:
        return [("market.", scenario.market)]
    if model is schema.CloudInvestment:
        return [("cloud_investment.", scenario.cloud_investment)]
    if model is schema.Leakage:
        return [("leakage.", scenario.leakage)]
    block = {schema.Cloud: "clouds", schema.Vendor: "vendors", schema.Foundry: "foundries"}[model]
    return [(f"{block}.{key}.", value) for key, value in getattr(scenario, block).items()]
